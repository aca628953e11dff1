"""The stage registry: what each stage reads, which settings it uses, what it writes.

=========  ==============================  ==========================================
stage      reads                           writes (in the study's output folder)
=========  ==============================  ==========================================
hazard     parcels, DEM, depth rasters      stages/hazard.parquet
envelope   parcels, DEM, roads; hazard      stages/envelope.parquet
access     parcels, roads, poi, population, stages/access.parquet, stages/routes.gpkg,
           DEM                              stages/isochrones.gpkg
score      hazard, envelope, access         sites.csv, sites.gpkg, comparison.html/.csv
maps       all of the above                 index.html, figures
=========  ==============================  ==========================================
"""

from __future__ import annotations

from pathlib import Path

from pipeline.config import LayerSpec, Study
from pipeline.runner import Stage


def layer_files(spec: LayerSpec | Path | None) -> list[Path | str]:
    """A layer's file plus the side-car files a Shapefile needs; ``postgis:<table>`` for a
    database layer.

    Examples
    --------
    >>> [p.name for p in layer_files(Path("roads.shp"))]
    ['roads.shp', 'roads.shx', 'roads.dbf', 'roads.prj', 'roads.cpg']
    >>> layer_files(None)
    []
    >>> layer_files(LayerSpec(table="public.roads"))
    ['postgis:public.roads']
    """
    if isinstance(spec, LayerSpec):
        if spec.table:
            return [f"postgis:{spec.table}"]
        spec = spec.path
    path = spec
    if path is None:
        return []
    files: list[Path | str] = [path]
    if path.suffix.lower() == ".shp":
        files += [path.with_suffix(s) for s in (".shx", ".dbf", ".prj", ".cpg")]
    return files


def dem_files(study: Study) -> list[Path | str]:
    """The DEM file, or every GSI XML tile of a DEM folder."""
    path = study.layers.dem.path
    return sorted(path.glob("*.xml")) if path.is_dir() else [path]


def _optional(study: Study, name: str) -> list[Path | str]:
    spec = getattr(study.layers, name)
    return layer_files(spec)


def hazard_inputs(study: Study) -> list[Path | str]:
    files = layer_files(study.layers.parcels) + dem_files(study)
    files += [s.depth for s in study.scenario if s.depth is not None]
    return files + [f for s in study.scenario if s.ranks is not None for f in layer_files(s.ranks)]


def envelope_inputs(study: Study) -> list[Path | str]:
    return (layer_files(study.layers.parcels) + dem_files(study)
            + _optional(study, "roads"))


def access_inputs(study: Study) -> list[Path | str]:
    return (layer_files(study.layers.parcels) + dem_files(study)
            + _optional(study, "roads") + _optional(study, "poi") + _optional(study, "population"))


def score_inputs(study: Study) -> list[Path | str]:
    return layer_files(study.layers.parcels)


def maps_inputs(study: Study) -> list[Path | str]:
    return hazard_inputs(study) + _optional(study, "roads") + _optional(study, "poi")


def _run(module: str):  # type: ignore[no-untyped-def]
    def run(ctx):  # type: ignore[no-untyped-def]
        import importlib

        return importlib.import_module(f"pipeline.{module}").run_stage(ctx)

    return run


STAGES: dict[str, Stage] = {
    "hazard": Stage("hazard", (), ("study", "hazard", "scenario", "layers.parcels",
                                         "layers.dem"), hazard_inputs,
                    _run("hazard")),
    "envelope": Stage("envelope", ("hazard",), ("study", "zoning", "programme",
                                                     "layers.parcels", "layers.dem", "layers.roads"),
                      envelope_inputs, _run("envelope")),
    "access": Stage("access", (), ("study", "access", "layers"), access_inputs, _run("access")),
    "score": Stage("score", ("hazard", "envelope", "access"),
                   ("study", "criterion", "score", "database"),
                   score_inputs, _run("score"), options=("lang",)),
    "maps": Stage("maps", ("hazard", "envelope", "access", "score"),
                  ("study", "maps", "scenario", "layers", "hazard"), maps_inputs, _run("maps"),
                  options=("offline", "lang")),
}
"""Stages in the order ``siteplan run`` runs them."""

OUTPUTS: dict[str, tuple[str, ...]] = {
    "hazard": ("stages/hazard.parquet",),
    "envelope": ("stages/envelope.parquet",),
    "access": ("stages/access.parquet", "stages/routes.gpkg", "stages/profiles.parquet",
               "stages/isochrones.gpkg"),
    "score": ("sites.csv", "sites.gpkg", "comparison.html", "comparison.csv"),
    "maps": ("index.html", "figures/overlay.png", "figures/profiles.png"),
}
"""Files each stage writes, relative to the output folder (for the overwrite guard)."""
