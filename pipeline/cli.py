"""The ``siteplan`` command line.

::

    $ siteplan run                      # the bundled default study -> maps/
    $ siteplan run path/to/study.toml   # your own study
    $ siteplan hazard STUDY             # one stage (and what it needs upstream)
    $ siteplan demo FOLDER              # write the synthetic default study somewhere
    $ siteplan check STUDY              # validate the study file and its layers

Errors print one readable message and exit with status 2; ``-v`` adds the
traceback. Logging is configured here and nowhere else.
"""

from __future__ import annotations

import logging
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from pipeline.errors import SiteplanError

logger = logging.getLogger("pipeline")

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_STUDY = REPO_ROOT / "layers" / "study.toml"


def _configure_logging(verbosity: int) -> None:
    level = {-1: logging.WARNING, 0: logging.INFO}.get(verbosity, logging.DEBUG)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(
        "%(levelname)s %(name)s: %(message)s" if verbosity > 0 else "%(message)s"))
    root = logging.getLogger("pipeline")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False


class _Group(click.Group):
    """Turns siteplan errors into one message and exit status 2."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except SiteplanError as err:
            verbose = (ctx.obj or {}).get("verbosity", 0) > 0
            if verbose:
                traceback.print_exc()
            click.echo(f"Error: {err}", err=True)
            ctx.exit(2)


@click.group(cls=_Group)
@click.option("-v", "--verbose", count=True, help="More detail (-v debug and tracebacks).")
@click.option("-q", "--quiet", is_flag=True, help="Only warnings and errors.")
@click.version_option(package_name="siteplan")
@click.pass_context
def cli(ctx: click.Context, verbose: int, quiet: bool) -> None:
    """siteplan: rate candidate sites for public buildings under tsunami and flood hazard."""
    verbosity = -1 if quiet else verbose
    ctx.obj = {"verbosity": verbosity}
    _configure_logging(verbosity)


def _study_argument(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.argument("study", required=False,
                          type=click.Path(dir_okay=False, path_type=Path))(f)


def _run_options(f: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.option("--force", is_flag=True, help="Rerun the stage even when up to date."),
        click.option("--overwrite", is_flag=True,
                     help="Replace output files that siteplan did not write."),
        click.option("--offline/--online", default=None,
                     help="Self-contained map with every script inlined (default: the "
                          "study's [maps] offline, true unless set)."),
        click.option("--lang", type=click.Choice(["en", "ja"]), default=None,
                     help="Labels of tables and maps (default: the study's [study] lang)."),
        click.option("--no-progress", is_flag=True, help="No progress bars."),
        click.option("--engine", type=click.Choice(["local", "dask"]), default="local",
                     show_default=True, help="Run the raster and network work in this process, "
                     "or on a Dask cluster."),
        click.option("--workers", type=click.IntRange(min=1), default=2, show_default=True,
                     help="With --engine dask: workers of the local cluster."),
        click.option("--scheduler", metavar="ADDRESS", default=None,
                     help="With --engine dask: an existing Dask scheduler (tcp://host:port) "
                          "instead of a local cluster."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def _load(study_path: Path | None) -> Any:
    from pipeline.config import load_study
    from pipeline.demo import ensure_demo_layers

    path = study_path or DEFAULT_STUDY
    if study_path is None and not path.exists():
        from pipeline.demo import write_demo_study

        logger.info("default study missing: generating it in %s", path.parent)
        write_demo_study(path.parent)
    study = load_study(path)
    ensure_demo_layers(study)
    return study


def _execute(study_path: Path | None, stages: list[str], **opts: Any) -> None:
    from pipeline.runner import Options, Runner
    from pipeline.stages import STAGES

    study = _load(study_path)
    if opts["scheduler"] and opts["engine"] != "dask":
        raise click.UsageError("--scheduler needs --engine dask")
    options = Options(force=opts["force"], overwrite=opts["overwrite"], offline=opts["offline"],
                      lang=opts["lang"], progress=not opts["no_progress"],
                      engine=opts["engine"], workers=opts["workers"], scheduler=opts["scheduler"])
    results = Runner(study, STAGES, options).run(stages)
    ran = sum(r.ran for r in results)
    logger.info("%s: %d stage(s) run, %d up to date; outputs in %s", study.study.name, ran,
                len(results) - ran, study.output)


@cli.command()
@_study_argument
@_run_options
def run(study: Path | None, **opts: Any) -> None:
    """Run every stage on STUDY (default: the bundled study, generated when missing)."""
    from pipeline.stages import STAGES

    _execute(study, list(STAGES), **opts)


def _stage_command(name: str, doc: str) -> None:
    @_study_argument
    @_run_options
    def command(study: Path | None, **opts: Any) -> None:
        _execute(study, [name], **opts)

    command.__doc__ = doc
    cli.command(name=name)(command)


for _name, _doc in [
    ("hazard", "Ground elevation, inundation and elevation margins per parcel and scenario."),
    ("envelope", "Zoning caps, programme, storeys, parking and earthwork per parcel."),
    ("access", "Network distances, routes and their grades, walking reach."),
    ("score", "The ◎ ○ △ × rating table."),
    ("maps", "The interactive map, the sites table (CSV, GeoPackage) and figures."),
]:
    _stage_command(_name, _doc)


@cli.command()
@click.argument("folder", required=False, type=click.Path(file_okay=False, path_type=Path))
@click.option("--overwrite", is_flag=True, help="Replace the demo files already in FOLDER.")
def demo(folder: Path | None, overwrite: bool) -> None:
    """Write the synthetic default study (layers and study.toml) into FOLDER (default: layers/)."""
    from pipeline.demo import write_demo_study

    target = folder or DEFAULT_STUDY.parent
    path = write_demo_study(target, overwrite=overwrite)
    logger.info("demo study written: %s", path)


@cli.command()
@_study_argument
def check(study: Path | None) -> None:
    """Validate STUDY's file and layers without running anything."""
    from pipeline.runner import Context

    loaded = _load(study)
    ctx = Context(loaded)
    parcels = ctx.parcels
    for name, family in (("roads", "line"), ("poi", "point"), ("population", "point")):
        ctx.vector(name, family)
    _ = ctx.dem
    for sc in loaded.scenario:
        if sc.depth is not None:
            ctx.raster(sc.depth, sc.name)
    logger.info("%s: study file and layers are valid (%d parcels, CRS %s)", loaded.study.name,
                len(parcels), ctx.crs.to_string())


def main() -> None:
    """Entry point of the ``siteplan`` console script."""
    cli(prog_name="siteplan")
