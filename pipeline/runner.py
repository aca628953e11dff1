"""Running stages: fingerprints, skipping, and the shared study context.

A stage reads input files and upstream outputs, and writes outputs into the
study's output folder. Its *fingerprint* hashes the content of the files it
reads, the study-file sections it uses, its upstream outputs and the package
version. A stage whose fingerprint is unchanged and whose outputs are intact
is skipped; a changed input reruns exactly the stages that depend on it.

State lives in ``<output>/.siteplan/state.json``, rewritten atomically after
each stage, so a run killed mid-stage leaves the earlier outputs readable and
the next run redoes only what had not finished.
"""

from __future__ import annotations

import functools
import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
from pyproj import CRS

import pipeline
from pipeline import layers
from pipeline._io import file_digest, text_digest, write_json
from pipeline.config import RasterSpec, Study, section_json
from pipeline.errors import OutputError

logger = logging.getLogger(__name__)

STATE_DIR = ".siteplan"
STATE_FORMAT = 2
"""Version of ``state.json``; a state of another version is ignored (every stage reruns)."""
STAGES_DIR = "stages"


@dataclass(frozen=True)
class Options:
    """Run options from the command line (not part of the study)."""

    force: bool = False
    overwrite: bool = False
    offline: bool | None = None
    lang: str | None = None
    progress: bool = True
    engine: str = "local"
    workers: int = 2
    scheduler: str | None = None


@dataclass(frozen=True)
class Stage:
    """One pipeline stage.

    Attributes
    ----------
    name : str
        CLI name of the stage.
    upstream : tuple of str
        Stages whose outputs it reads.
    sections : tuple of str
        Study-file sections that change its result.
    inputs : callable
        ``inputs(study) -> list of Path or str``: the input files it reads (``str``:
        ``"postgis:<table>"`` for a database table).
    run : callable
        ``run(ctx) -> (outputs, summary)``: writes outputs (atomically) and returns
        ``{key: path}`` and a one-line summary.
    options : tuple of str
        Names of :class:`Options` fields that change its result.
    """

    name: str
    upstream: tuple[str, ...]
    sections: tuple[str, ...]
    inputs: Callable[[Study], list[Path | str]]
    run: Callable[[Context], tuple[dict[str, Path], str]]
    options: tuple[str, ...] = ()


@dataclass
class Context:
    """What a stage works with: the study, its CRS, its layers (read once), its folders."""

    study: Study
    options: Options = field(default_factory=Options)

    @property
    def output(self) -> Path:
        return self.study.output

    @property
    def state_dir(self) -> Path:
        return self.output / STATE_DIR

    def stage_path(self, stage: str, suffix: str = ".parquet") -> Path:
        """Where a stage keeps its table, ``<output>/stages/<stage>.parquet``."""
        return self.output / STAGES_DIR / f"{stage}{suffix}"

    def stage_frame(self, stage: str) -> pd.DataFrame:
        """Read an upstream stage's table (indexed by site id)."""
        return pd.read_parquet(self.stage_path(stage))

    @functools.cached_property
    def crs(self) -> CRS:
        return layers.study_crs(self.study)

    @functools.cached_property
    def parcels(self) -> gpd.GeoDataFrame:
        return layers.read_parcels(self.study, self.crs)

    @functools.cached_property
    def area(self) -> Any:
        """The study area: parcels' extent buffered by ``[study] area_margin``."""
        return layers.study_area(self.parcels, self.study.study.area_margin)

    def vector(self, name: str, family: str, columns: Sequence[str] = ()) -> gpd.GeoDataFrame | None:
        """An optional vector layer (roads, poi, population), checked, in the study CRS."""
        spec = getattr(self.study.layers, name)
        if spec is None:
            return None
        return self.cached(f"vector:{name}", lambda: layers.read_vector(
            spec, name=name, crs=self.crs, family=family, columns=columns, study_area=self.area,
            url_env=self.study.database.url_env))

    @property
    def dem(self) -> Path:
        """The DEM in the study CRS; GSI JPGIS XML tiles (a .xml file or a folder of them)
        are first mosaicked into a GeoTIFF in the state folder."""
        spec = self.study.layers.dem
        path = spec.path
        if path.is_dir() or path.suffix.lower() == ".xml":
            return self.cached("dem", lambda: self.raster(self._gsi_mosaic(path), "dem"))
        return self.cached("dem", lambda: self.raster(spec, "dem"))

    def _gsi_mosaic(self, path: Path) -> Path:
        from pipeline.errors import InputNotFoundError
        from pipeline.gsi import gsi_to_geotiff

        tiles = sorted(path.glob("*.xml")) if path.is_dir() else [path]
        if not tiles or not all(t.exists() for t in tiles):
            raise InputNotFoundError(f"layer 'dem' ({path}): no GSI DEM XML tile found; point "
                                     "[layers.dem] path at a GeoTIFF, a .xml tile or a folder "
                                     "of .xml tiles")
        digest = text_digest("".join(file_digest(t, self._digest_cache) for t in tiles))[:16]
        target = self.state_dir / "gsi" / f"dem-{digest}.tif"
        if not target.exists():
            logger.info("layer 'dem': mosaicking %d GSI DEM tile(s) into %s", len(tiles), target)
            target.parent.mkdir(parents=True, exist_ok=True)
            gsi_to_geotiff(tiles, target)
        return target

    @property
    def roads(self) -> gpd.GeoDataFrame | None:
        """The road layer in the study CRS: a vector layer, or an OpenStreetMap file."""
        spec = self.study.layers.roads
        if spec is None:
            return None
        path = spec.path
        if path is not None and path.name.lower().endswith((".osm", ".osm.bz2", ".pbf")):
            from pipeline.osm import read_osm_roads

            return self.cached("vector:roads", lambda: read_osm_roads(path).to_crs(self.crs))
        return self.vector("roads", "line")

    def cached(self, key: str, factory: Callable[[], Any]) -> Any:
        """``factory()``, computed once per run and kept under ``key``."""
        cache = self.__dict__.setdefault("_cache", {})
        if key not in cache:
            cache[key] = factory()
        return cache[key]

    def raster(self, spec: RasterSpec | Path, name: str, *, like: Path | None = None) -> Path:
        """A raster in the study CRS: the file itself, or a warped copy in the state folder.

        With ``like`` (the DEM), a raster that must be warped anyway is warped onto that
        raster's grid, so zonal statistics compute each parcel's coverage once for both.
        """
        from pipeline.raster import open_raster_checked, warp_raster

        path = spec.path if isinstance(spec, RasterSpec) else spec
        info = open_raster_checked(path, layer=name)
        if CRS.from_user_input(info.crs.to_wkt()).equals(self.crs, ignore_axis_order=True):
            return path
        digest = file_digest(path, self._digest_cache)[:16]
        grid = f"-on-{file_digest(like, self._digest_cache)[:12]}" if like is not None else ""
        target = self.state_dir / "warped" / f"{name}-{digest}-{self.crs.to_epsg()}{grid}.tif"
        if not target.exists():
            logger.info("layer %r (%s): warping from %s to %s%s", name, path,
                        info.crs.to_string(), self.crs.to_string(),
                        " on the DEM's grid" if like is not None else "")
            if like is not None:
                warp_raster(path, target, like=like, layer=name)
            else:
                warp_raster(path, target, crs=self.crs, layer=name)
        return target

    @functools.cached_property
    def _digest_cache(self) -> dict[str, Any]:
        return {}


@dataclass(frozen=True)
class StageResult:
    """What happened to one stage in a run."""

    name: str
    ran: bool
    outputs: Mapping[str, Path]
    summary: str
    seconds: float


class Runner:
    """Runs stages in dependency order, skipping those that are up to date.

    Parameters
    ----------
    study : Study
        The parsed study.
    stages : mapping of str to Stage
        The available stages (see :data:`pipeline.stages.STAGES`).
    options : Options
        Command-line options.
    """

    def __init__(self, study: Study, stages: Mapping[str, Stage], options: Options = Options()):
        self.stages = dict(stages)
        self.ctx = Context(study, options)
        self.state_file = self.ctx.state_dir / "state.json"
        self.state = self._load_state()

    def _load_state(self) -> dict[str, Any]:
        try:
            state = json.loads(self.state_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {"format": STATE_FORMAT, "stages": {}, "digests": {}}
        if state.get("format") != STATE_FORMAT:
            return {"format": STATE_FORMAT, "stages": {}, "digests": {}}
        return state

    def _save_state(self) -> None:
        write_json(self.state_file, self.state)

    def order(self, wanted: Sequence[str]) -> list[str]:
        """The wanted stages and everything upstream of them, in dependency order."""
        seen: list[str] = []

        def visit(name: str) -> None:
            if name in seen:
                return
            for up in self.stages[name].upstream:
                visit(up)
            seen.append(name)

        for name in wanted:
            visit(name)
        return seen

    def fingerprint(self, name: str) -> str:
        """Hash of everything the stage's result depends on."""
        stage = self.stages[name]
        study = self.ctx.study
        cache = self.state["digests"]
        inputs = stage.inputs(study)
        paths = [p for p in inputs if isinstance(p, Path)]
        files = {str(p): file_digest(p, cache) for p in paths if p.exists()}
        missing = [str(p) for p in paths if not p.exists()]
        tables = [t for t in inputs if isinstance(t, str)]
        if tables:
            from pipeline.postgis import database_url, table_digest

            url = database_url(study)
            known = self.__dict__.setdefault("_table_digests", {})  # one query a table a run
            for t in tables:
                if t not in known:
                    known[t] = table_digest(url, t.removeprefix("postgis:"))
                files[t] = known[t]
        upstream = {up: {k: v["digest"] for k, v in self._outputs(up).items()}
                    for up in stage.upstream}
        opts = {o: getattr(self.ctx.options, o) for o in stage.options}
        payload = json.dumps({"version": pipeline.__version__, "stage": name,
                              "config": section_json(study, stage.sections),
                              "files": files, "missing": missing, "upstream": upstream,
                              "options": opts}, sort_keys=True, default=str)
        return text_digest(payload)

    def stale(self, wanted: Sequence[str]) -> list[str]:
        """The stages (``wanted`` and upstream) a :meth:`run` would not skip, as far as can be
        told before running: a stage whose upstream reruns may turn stale too."""
        forced = set(wanted) if self.ctx.options.force else set()
        return [n for n in self.order(wanted)
                if n in forced or not self._fresh(n, self.fingerprint(n))]

    def _outputs(self, name: str) -> dict[str, dict[str, str]]:
        """``{key: {"path": ..., "digest": ...}}`` of a stage's last run (empty if none)."""
        return self.state["stages"].get(name, {}).get("outputs", {})

    def _fresh(self, name: str, fingerprint: str) -> bool:
        record = self.state["stages"].get(name)
        if not record or record.get("fingerprint") != fingerprint:
            return False
        cache = self.state["digests"]
        return all(Path(o["path"]).exists() and file_digest(Path(o["path"]), cache) == o["digest"]
                   for o in self._outputs(name).values())

    def _guard_outputs(self, name: str) -> None:
        """Refuse to replace files siteplan did not write, and never write over an input."""
        inputs = {p.resolve() for stage in self.stages.values() for p in stage.inputs(self.ctx.study)
                  if isinstance(p, Path)}
        out = self.ctx.output.resolve()
        holding = sorted(str(p) for p in inputs if p == out or out in p.parents)
        if holding:
            raise OutputError(f"output folder {out} holds input {holding[0]} of the study: "
                              "siteplan never writes beside a user's inputs; choose a separate "
                              "[study] output folder")
        owned = {o["path"] for stage in self.state["stages"] for o in self._outputs(stage).values()}
        for target in _declared_outputs(self.ctx, name):
            resolved = target.resolve()
            if resolved in inputs:
                raise OutputError(f"stage {name!r} would write {resolved}, which is an input of the "
                                  "study; choose another [study] output folder")
            if resolved.exists() and str(resolved) not in owned and not self.ctx.options.overwrite:
                raise OutputError(f"{resolved} exists and was not written by siteplan; pass "
                                  "--overwrite to replace it, or choose another [study] output")

    def _remove_leftovers(self) -> None:
        """Delete temporary files an interrupted run left (``.name.XXXX.tmp.ext``)."""
        for folder in (self.ctx.output, self.ctx.output / STAGES_DIR, self.ctx.state_dir):
            if folder.is_dir():
                for tmp in folder.glob(".*.tmp*"):
                    if tmp.is_file():
                        tmp.unlink()

    def run(self, wanted: Sequence[str]) -> list[StageResult]:
        """Bring the wanted stages (and their upstream) up to date."""
        self._remove_leftovers()
        results = []
        forced = set(wanted) if self.ctx.options.force else set()
        for name in self.order(wanted):
            fingerprint = self.fingerprint(name)
            if name not in forced and self._fresh(name, fingerprint):
                record = self.state["stages"][name]
                logger.info("%s: up to date, skipped", name)
                paths = {k: Path(o["path"]) for k, o in self._outputs(name).items()}
                results.append(StageResult(name, False, paths, record.get("summary", ""), 0.0))
                continue
            self._guard_outputs(name)
            start = time.perf_counter()
            outputs, summary = self.stages[name].run(self.ctx)
            seconds = time.perf_counter() - start
            cache = self.state["digests"]
            self.state["stages"][name] = {
                "fingerprint": fingerprint, "summary": summary,
                "finished": time.strftime("%Y-%m-%dT%H:%M:%S"),
                "outputs": {k: {"path": str(p.resolve()), "digest": file_digest(p, cache)}
                            for k, p in outputs.items()},
            }
            self._save_state()
            logger.info("%s: %s (%.1f s)", name, summary, seconds)
            results.append(StageResult(name, True, outputs, summary, seconds))
        return results


def _declared_outputs(ctx: Context, name: str) -> list[Path]:
    from pipeline.stages import OUTPUTS

    return [ctx.output / rel for rel in OUTPUTS.get(name, ())]
