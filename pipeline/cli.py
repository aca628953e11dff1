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
from collections.abc import Callable, Sequence
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


def validate_inputs(ctx: Any, stages: Sequence[str]) -> None:
    """Check the output folder and every input ``stages`` read, before any stage writes.

    Bad input then stops the run with one message and the output folder untouched
    (absent, or as the previous run left it). Layers read here are kept in ``ctx``
    for the stages. The depth rasters' values are checked by the hazard stage, which
    runs first.

    Parameters
    ----------
    ctx : pipeline.runner.Context
    stages : sequence of str
        The stages about to run.
    """
    from pipeline import access, envelope, hazard
    from pipeline.layers import check_raster_extent

    study = ctx.study
    _check_output(study)
    dem = study.layers.dem.path
    _ = ctx.parcels
    if dem.is_dir() or dem.suffix.lower() == ".xml":
        _ = ctx.dem  # GSI tiles: mosaicked (into the state folder) and checked
    else:
        check_raster_extent(dem, name="dem", crs=ctx.crs, study_area=ctx.area)
    for sc in study.scenario:
        if sc.depth is not None:
            check_raster_extent(sc.depth, name=sc.name, crs=ctx.crs, study_area=ctx.area)
        if sc.ranks is not None:
            hazard.rank_polygons(ctx, sc)
    if "envelope" in stages:
        envelope.check_inputs(ctx)
    if "access" in stages:
        access.check_inputs(ctx)
    if "score" in stages:
        _check_criteria(study, ctx.parcels.columns)


def _check_output(study: Any) -> None:
    """The output folder is, or can be made, a writable folder (checked without writing)."""
    import os

    from pipeline.errors import OutputError

    out = study.output
    probe = out
    while not probe.exists() and probe.parent != probe:  # under a file, exists() is False too
        probe = probe.parent
    if not probe.is_dir():
        raise OutputError(f"cannot create the output folder {out}: {probe} is a file, not a "
                          f"folder; choose another [study] output in {study.path}")
    if not os.access(probe, os.W_OK):
        raise OutputError(f"cannot write the output folder {out}: {probe} is read-only; choose "
                          f"an output folder you can write to ([study] output in {study.path})")


def _check_criteria(study: Any, parcel_columns: Sequence[str]) -> None:
    """Every criterion rates a column the sites table will have; ConfigError naming the others."""
    import difflib
    import re

    from pipeline.columns import COLUMNS
    from pipeline.errors import ConfigError, raise_all

    names = [s.name for s in study.scenario]
    known = {str(c) for c in parcel_columns} | {"site_id"}
    patterns = []
    for col in COLUMNS:
        for concrete in ([col.replace("{s}", n) for n in names] if "{s}" in col else [col]):
            if "{" in concrete:
                parts = re.split(r"(\{[a-z]\})", concrete)
                patterns.append(re.compile("".join(".+" if p.startswith("{") else re.escape(p)
                                                   for p in parts)))
            else:
                known.add(concrete)
    problems = []
    for i, c in enumerate(study.criterion):
        if c.metric in known or any(p.fullmatch(c.metric) for p in patterns):
            continue
        close = difflib.get_close_matches(c.metric, sorted(known), n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        problems.append(f"criterion[{i}].metric = {c.metric!r} is not a column of the sites "
                        f"table; {hint}name an output column (README, 'Output columns') or a "
                        "parcel attribute")
    raise_all(problems, ConfigError, f"study file {study.path}")


def _execute(study_path: Path | None, stages: list[str], **opts: Any) -> None:
    from pipeline.runner import Options, Runner
    from pipeline.stages import STAGES

    study = _load(study_path)
    if opts["scheduler"] and opts["engine"] != "dask":
        raise click.UsageError("--scheduler needs --engine dask")
    options = Options(force=opts["force"], overwrite=opts["overwrite"], offline=opts["offline"],
                      lang=opts["lang"], progress=not opts["no_progress"],
                      engine=opts["engine"], workers=opts["workers"], scheduler=opts["scheduler"])
    runner = Runner(study, STAGES, options)
    if runner.stale(stages):
        validate_inputs(runner.ctx, runner.order(stages))
    results = runner.run(stages)
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
    from pipeline.errors import RasterError
    from pipeline.raster import check_depth_raster
    from pipeline.runner import Context
    from pipeline.stages import STAGES

    loaded = _load(study)
    ctx = Context(loaded)
    validate_inputs(ctx, list(STAGES))
    problems = [p for sc in loaded.scenario if sc.depth is not None
                for p in check_depth_raster(sc.depth, layer=sc.name)]
    if problems:
        raise RasterError("; ".join(problems))
    logger.info("%s: study file and layers are valid (%d parcels, CRS %s)", loaded.study.name,
                len(ctx.parcels), ctx.crs.to_string())


@cli.command()
@click.argument("districts", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("facilities", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("output", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--roads", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Road centre lines (GeoPackage, GeoJSON, Shapefile, GeoParquet).")
@click.option("--threshold", required=True, type=click.FloatRange(min=0, min_open=True),
              help="Reach in metres along the roads.")
@click.option("--label", default=None, help="Column naming the facilities.")
@click.option("--crs", default="auto", show_default=True, help="Metric CRS of the analysis.")
@click.option("--overwrite", is_flag=True, help="Replace OUTPUT if it exists.")
def coverage(districts: Path, facilities: Path, output: Path, roads: Path, threshold: float,
             label: str | None, crs: str, overwrite: bool) -> None:
    """Nearest facility of each district over the roads, and the districts beyond reach.

    \b
    $ siteplan coverage associations.gpkg centres.gpkg coverage.gpkg \\
          --roads roads.gpkg --threshold 1000 --label name
    """
    from pipeline._io import write_frame
    from pipeline.coverage import coverage_from_files
    from pipeline.errors import OutputError

    inputs = {p.resolve() for p in (districts, facilities, roads)}
    if output.resolve() in inputs:
        raise OutputError(f"{output} is an input; write the result to another file")
    if output.suffix.lower() not in (".gpkg", ".csv", ".parquet"):
        raise click.BadParameter("OUTPUT must end in .gpkg, .csv or .parquet", param_hint="OUTPUT")
    if output.exists() and not overwrite:
        raise OutputError(f"{output} exists; pass --overwrite to replace it")
    table = coverage_from_files(districts, facilities, roads, threshold=threshold, crs=crs,
                                facility_label=label)
    if output.suffix.lower() == ".csv":
        table = table.drop(columns=table.geometry.name)
    write_frame(output, table)
    logger.info("coverage: %d of %d districts beyond %g m; written to %s",
                int(table["beyond"].sum()), len(table), threshold, output)


def main() -> None:
    """Entry point of the ``siteplan`` console script."""
    cli(prog_name="siteplan")
