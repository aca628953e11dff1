"""Hazard stage: ground elevation, inundation, elevation margins and dry floors.

For every parcel: the ground (min, mean, max, a low percentile, slope) from the
DEM, and for every hazard scenario the inundation depth over the parcel, the
design water level in m T.P., the *elevation margin* (lowest ground minus the
governing water level) and the lowest storey whose floor stays dry.

Heights are kept apart: ``*_depth_*`` and ``*_height`` are metres above the
ground; ``*_level*`` and ``ground_*`` are metres above the datum (T.P.).

Water level of a scenario at a parcel:

- ``runup`` given (a tsunami's maximum run-up height): that level, m T.P.;
- a depth raster given: lowest ground + maximum depth over the parcel, an upper
  bound of the water surface over the parcel (on a sloping parcel the deepest
  water stands on the lowest ground);
- both: the higher governs, and ``<scenario>_governs`` says which.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline.config import DemSpec, HazardSettings, Scenario

logger = logging.getLogger(__name__)

DEM_ACCURACY = {"laser5m": 0.3, "photo5m": 0.7, "contour10m": 5.0}
"""Vertical accuracy (m) by DEM kind: GSI 5 m laser DEM (DEM5A) about 0.3 m,
5 m photogrammetric DEM (DEM5B/C) about 0.7 m, 10 m contour DEM (DEM10B) about 5 m."""


def dem_accuracy(spec: DemSpec, tags: Mapping[str, str] | None = None) -> float:
    """The DEM's vertical accuracy in metres: given, or from its kind.

    With ``kind = "auto"`` the GeoTIFF's ``VERTICAL_ACCURACY_M`` tag (which siteplan
    writes when it converts GSI tiles) is used, else the 5 m laser DEM's 0.3 m with
    a warning.

    Examples
    --------
    >>> from pathlib import Path
    >>> dem_accuracy(DemSpec(path=Path("dem.tif"), kind="contour10m"))
    5.0
    >>> dem_accuracy(DemSpec(path=Path("dem.tif"), kind="other", vertical_accuracy=1.5))
    1.5
    >>> dem_accuracy(DemSpec(path=Path("dem.xml")), {"VERTICAL_ACCURACY_M": "0.7"})
    0.7
    """
    if spec.vertical_accuracy > 0:
        return spec.vertical_accuracy
    if spec.kind == "auto":
        tagged = (tags or {}).get("VERTICAL_ACCURACY_M", "")
        if tagged:
            return float(tagged)
        logger.warning("layer 'dem' (%s): vertical accuracy unknown, assuming 0.3 m (5 m laser "
                       "DEM); set [layers.dem] kind or vertical_accuracy", spec.path)
        return DEM_ACCURACY["laser5m"]
    if spec.kind not in DEM_ACCURACY:
        from pipeline.errors import ConfigError

        raise ConfigError(f"[layers.dem] kind = {spec.kind!r} has no default vertical accuracy; "
                          f"use one of {', '.join(DEM_ACCURACY)} or set vertical_accuracy (m)")
    return DEM_ACCURACY[spec.kind]


def water_levels(
    ground_low: pd.Series,
    depth_max: pd.Series | None,
    scenario: Scenario,
) -> pd.DataFrame:
    """Design water level (m T.P.) of one scenario at each parcel, and which source governs.

    Parameters
    ----------
    ground_low : Series
        Lowest ground of each parcel, m T.P.
    depth_max : Series or None
        Maximum inundation depth over each parcel (m above ground); None when the
        scenario has no depth layer.
    scenario : Scenario
        The scenario (its ``runup`` is a level in m T.P.).

    Returns
    -------
    DataFrame
        ``level`` (m T.P.) and ``governs`` (``"runup"`` or ``"depth"``), aligned to
        ``ground_low``.

    Examples
    --------
    >>> g = pd.Series([3.2, 16.0], index=["S0", "S1"])
    >>> sc = Scenario(name="t", kind="tsunami", runup=13.9)
    >>> water_levels(g, pd.Series([10.9, 0.0], index=g.index), sc)
        level governs
    S0   14.1   depth
    S1   13.9   runup
    """
    n = len(ground_low)
    runup = np.full(n, np.nan) if scenario.runup is None else np.full(n, scenario.runup)
    from_depth = np.full(n, np.nan)
    if depth_max is not None:
        d = depth_max.to_numpy(dtype=float)
        wet = np.nan_to_num(d) > 0
        from_depth = np.where(wet, ground_low.to_numpy(dtype=float) + d, np.nan)
    level = np.fmax(runup, from_depth)
    governs = np.where(np.isnan(level), "none",
                       np.where(np.nan_to_num(from_depth, nan=-np.inf) > np.nan_to_num(runup, nan=-np.inf),
                                "depth", "runup"))
    return pd.DataFrame({"level": np.round(level, 3), "governs": governs}, index=ground_low.index)


def lowest_dry_floor(
    ground: pd.Series,
    level: pd.Series,
    settings: HazardSettings,
) -> pd.DataFrame:
    """The lowest storey whose floor stays dry, and the floor height the water asks for.

    Storey ``k`` (1 = ground floor) has its floor at ``ground + ground_floor_raise
    + (k - 1) * floor_height``; it is dry when that is at least ``level +
    freeboard``.

    Returns
    -------
    DataFrame
        ``dry_floor`` (1 when the site is not flooded; missing when the water
        height is unbounded, as for the open rank ">= 20 m") and
        ``floor_raise_needed`` (m above ground the ground floor would need: water
        height + freeboard, 0 when dry).

    Examples
    --------
    Goka's two river floods on ground at 11.8 m T.P.: the Edo river (1.0 m deep)
    needs the ground floor at +1.2 m; the Tone river (3.0 m) needs +3.2 m, so with
    the ground floor raised 1.2 m only the 2nd floor is dry.

    >>> s = HazardSettings(floor_height=4.0, ground_floor_raise=1.2, freeboard=0.2)
    >>> g = pd.Series([11.8, 11.8], index=["Edo", "Tone"])
    >>> lowest_dry_floor(g, pd.Series([12.8, 14.8], index=g.index), s)
          dry_floor  floor_raise_needed
    Edo           1                 1.2
    Tone          2                 3.2
    """
    height = (level - ground).to_numpy(dtype=float)
    wet = np.nan_to_num(height, nan=-np.inf, posinf=np.inf) > 0
    need = np.where(wet, height + settings.freeboard, 0.0)
    above_first = need - settings.ground_floor_raise
    with np.errstate(invalid="ignore"):
        storeys_up = np.ceil(np.maximum(above_first, 0.0) / settings.floor_height - 1e-9)
    floor = pd.array(np.where(wet, 1 + storeys_up, 1), dtype="Float64").round()
    floor[~np.isfinite(need)] = pd.NA  # an open-ended rank (>= 20 m): no floor is known dry
    return pd.DataFrame({"dry_floor": floor.astype("Int64"), "floor_raise_needed":
                         np.round(need, 3)}, index=ground.index)


def scenario_metrics(
    ground: pd.DataFrame,
    depth: pd.DataFrame | None,
    scenario: Scenario,
    settings: HazardSettings,
    accuracy: float,
) -> pd.DataFrame:
    """Margins and floors of one scenario, from ground and depth statistics.

    Parameters
    ----------
    ground : DataFrame
        With ``ground_min`` (m T.P.), aligned to the parcels.
    depth : DataFrame or None
        With ``depth_max`` (m), aligned to the parcels; None without a depth layer.
    scenario : Scenario
    settings : HazardSettings
    accuracy : float
        DEM vertical accuracy (m): a margin smaller than it is flagged.

    Returns
    -------
    DataFrame
        Columns prefixed by the scenario name: ``_level`` (m T.P.), ``_governs``,
        ``_height`` (water above the lowest ground, m), ``_margin`` (m), ``_clear``,
        ``_within_accuracy``, ``_dry_floor``, ``_floor_raise_needed`` (m).

    Examples
    --------
    >>> ground = pd.DataFrame({"ground_min": [3.2, 16.0, 42.0]}, index=["S0", "S1", "S2"])
    >>> sc = Scenario(name="tsunami", kind="tsunami", runup=13.9)
    >>> out = scenario_metrics(ground, None, sc, HazardSettings(), 0.3)
    >>> out[["tsunami_margin", "tsunami_clear", "tsunami_dry_floor"]]
        tsunami_margin  tsunami_clear  tsunami_dry_floor
    S0           -10.7          False                  4
    S1             2.1           True                  1
    S2            28.1           True                  1
    """
    g = ground["ground_min"]
    levels = water_levels(g, None if depth is None else depth["depth_max"], scenario)
    margin = (g - levels["level"]).round(3)
    floors = lowest_dry_floor(g, levels["level"], settings)
    out = pd.DataFrame({
        "level": levels["level"],
        "governs": levels["governs"],
        "height": (-margin).clip(lower=0.0),
        "margin": margin,
        "clear": margin > 0,
        "within_accuracy": margin.abs() < accuracy,
        "dry_floor": floors["dry_floor"],
        "floor_raise_needed": floors["floor_raise_needed"],
    }, index=ground.index)
    out.loc[levels["governs"] == "none", ["height", "margin"]] = np.nan
    out.loc[levels["governs"] == "none", "clear"] = True
    return out.add_prefix(f"{scenario.name}_")


def ground_columns(stats: pd.DataFrame, low_percentile: float) -> pd.DataFrame:
    """Rename the DEM zonal statistics to the sites table's ``ground_*`` columns."""
    from pipeline.zonal import percentile_column

    p = percentile_column("dem", low_percentile)
    mapping = {"dem_min": "ground_min", "dem_mean": "ground_mean", "dem_max": "ground_max",
               p: p.replace("dem_", "ground_"), "dem_count": "dem_cells",
               "slope_mean": "slope_mean", "slope_max": "slope_max"}
    return stats.rename(columns=mapping)[[v for k, v in mapping.items() if k in stats]]


def summarise(table: pd.DataFrame, scenarios: tuple[Scenario, ...]) -> str:
    """One line: parcels, scenarios, and how many parcels clear each."""
    parts = [f"{table[f'{s.name}_clear'].sum()}/{len(table)} clear of {s.name}"
             for s in scenarios if f"{s.name}_clear" in table]
    return f"{len(table)} parcels x {len(scenarios)} scenarios; " + ", ".join(parts)


def hazard_table(
    ground_stats: pd.DataFrame,
    depth_stats: Mapping[str, pd.DataFrame],
    scenarios: tuple[Scenario, ...],
    settings: HazardSettings,
    accuracy: float,
) -> pd.DataFrame:
    """Assemble the hazard table from zonal statistics (pure: frames in, frame out).

    Parameters
    ----------
    ground_stats : DataFrame
        DEM statistics (``dem_min`` ...), aligned to the parcels.
    depth_stats : mapping of scenario name to DataFrame
        Depth statistics of scenarios that have a depth layer (``depth_max``,
        ``depth_mean``, ``wet_share``, class areas ...), aligned to the parcels.
    scenarios : tuple of Scenario
    settings : HazardSettings
    accuracy : float
        DEM vertical accuracy, m.

    Returns
    -------
    DataFrame
        One row per parcel: ``ground_*``, ``slope_*``, then per scenario its depth
        statistics and :func:`scenario_metrics`.
    """
    ground = ground_columns(ground_stats, settings.low_percentile)
    parts = [ground]
    for sc in scenarios:
        depth = depth_stats.get(sc.name)
        if depth is not None:
            parts.append(depth.add_prefix(f"{sc.name}_"))
        parts.append(scenario_metrics(ground, depth, sc, settings, accuracy))
    table = pd.concat(parts, axis=1)
    table["dem_accuracy"] = accuracy
    return table


# --------------------------------------------------------------------------- the stage


def _check_ground(stats: pd.DataFrame, dem: Path, parcels: pd.DataFrame,
                  raster: Path | None = None) -> None:
    """Every parcel needs DEM data; parcels partly off the DEM are warned about.

    ``raster`` is the DEM file actually read (``dem`` warped into the study CRS, or
    ``dem`` itself); its extent tells parcels outside the DEM from parcels on nodata.
    """
    from pipeline.errors import LayerError

    count = stats["dem_count"].fillna(0.0)
    where = f"layer 'dem' ({dem})"
    outside = pd.Series(False, index=stats.index)
    extent = ""
    if raster is not None:
        import rasterio
        import shapely

        with rasterio.open(raster) as ds:
            box = shapely.box(*ds.bounds)
        outside = pd.Series(~parcels.geometry.intersects(box).to_numpy(), index=stats.index)
        extent = (" (DEM extent (" + ", ".join(f"{v:.0f}" for v in box.bounds) + "), parcels ("
                  + ", ".join(f"{v:.0f}" for v in parcels.total_bounds) + ") in the study CRS)")
    if (count == 0).all():
        if raster is None:
            raise LayerError(f"{where}: every parcel lies outside the DEM or on its nodata "
                             "cells; check that the DEM covers the parcels (and its CRS) and "
                             "that it is not all nodata")
        if outside.all():
            raise LayerError(f"{where}: every parcel lies outside the DEM{extent}; check the "
                             "DEM's CRS and that it covers the parcels")
        raise LayerError(f"{where}: the DEM holds no data under any parcel (every cell there is "
                         "nodata); check its nodata value and that it is the DEM of this area")
    if (count == 0).any():
        parts = []
        for label, mask in (("outside the DEM", outside), ("on nodata cells", ~outside)):
            ids = stats.index[(count == 0) & mask]
            if len(ids):
                parts.append(f"{', '.join(map(str, ids[:10]))} ({label})")
        raise LayerError(f"{where}: no elevation for parcel(s) {'; '.join(parts)}; extend the "
                         "DEM or remove those parcels")
    partial = stats["dem_area"].to_numpy() < 0.95 * parcels.geometry.area.to_numpy()
    if partial.any():
        logger.warning("layer 'dem' (%s): parcel(s) %s are less than 95 %% covered by DEM data",
                       dem, ", ".join(map(str, stats.index[partial][:10])))


def _depth_stats(ctx: Any, scenario: Scenario, stats: pd.DataFrame) -> pd.DataFrame | None:
    """``depth_*`` columns of one scenario, from its raster's zonal statistics or its ranks."""
    if scenario.ranks is not None:
        from pipeline.ranks import depth_stats_from_polygons

        s = ctx.study.hazard
        out = depth_stats_from_polygons(ctx.parcels, rank_polygons(ctx, scenario),
                                        classes=s.depth_classes,
                                        wet_threshold=s.wet_threshold, key="depth")
        logger.info("scenario %s: depths from rank polygons (upper bounds of each rank)",
                    scenario.name)
        return out
    if scenario.depth is None:
        return None
    return depth_columns(stats, scenario.name)


def rank_polygons(ctx: Any, scenario: Scenario) -> Any:
    """The scenario's depth-rank polygons, checked, in the study CRS, with depth intervals
    (read once per run)."""
    from pipeline.config import LayerSpec
    from pipeline.layers import read_vector
    from pipeline.ranks import depth_intervals_from_ranks

    spec = LayerSpec(path=scenario.ranks, layer=scenario.ranks_layer)

    def read() -> Any:
        polys = read_vector(spec, name=f"ranks of scenario {scenario.name}", crs=ctx.crs,
                            family="polygon", study_area=ctx.area)
        return depth_intervals_from_ranks(polys, column=scenario.rank_column or None,
                                          scheme=scenario.rank_scheme)

    return ctx.cached(f"ranks:{scenario.name}", read)


def depth_columns(stats: pd.DataFrame, name: str) -> pd.DataFrame:
    """The zonal statistics of raster ``name`` as ``depth_*`` columns (``tsunami_max`` ->
    ``depth_max``), leaving out percentiles, which only the DEM needs."""
    prefix = f"{name}_"
    keep = ("max", "mean", "wet_area", "wet_share")
    cols = [c for c in stats.columns if c.startswith(prefix)
            and (c[len(prefix):] in keep or c[len(prefix):].startswith("area_"))]
    return stats[cols].rename(columns={c: "depth_" + c[len(prefix):] for c in cols})


def run_stage(ctx: Any) -> tuple[dict[str, Path], str]:
    """The ``hazard`` stage: writes ``stages/hazard.parquet``."""
    from pipeline._io import write_frame
    from pipeline.errors import RasterError
    from pipeline.parallel import zonal
    from pipeline.raster import check_depth_raster

    study = ctx.study
    s = study.hazard
    from pipeline.layers import check_raster_extent

    rasters = {"dem": ctx.dem}
    problems = []
    for sc in study.scenario:
        if sc.depth is not None:
            check_raster_extent(sc.depth, name=sc.name, crs=ctx.crs, study_area=ctx.area)
            rasters[sc.name] = ctx.raster(sc.depth, sc.name, like=rasters["dem"])
            problems += check_depth_raster(sc.depth, layer=sc.name)
    if problems:
        raise RasterError("; ".join(problems))
    depth_keys = [k for k in rasters if k != "dem"]
    stats = zonal(
        ctx.options, ctx.parcels, rasters, stats=("min", "mean", "max", "count", "nodata", "area"),
        mode=s.mode, percentiles={"dem": (s.low_percentile,)},
        classes={k: s.depth_classes for k in depth_keys},
        wet_threshold={k: s.wet_threshold for k in depth_keys}, slope="dem")
    _check_ground(stats, study.layers.dem.path, ctx.parcels, rasters["dem"])
    ground = stats.rename(columns={"dem_slope_mean": "slope_mean", "dem_slope_max": "slope_max"})
    depths = {sc.name: d for sc in study.scenario
              if (d := _depth_stats(ctx, sc, stats)) is not None}
    import rasterio

    with rasterio.open(rasters["dem"]) as ds:
        tags = ds.tags()
    table = hazard_table(ground, depths, study.scenario, s, dem_accuracy(study.layers.dem, tags))
    out = ctx.stage_path("hazard")
    write_frame(out, table)
    return {"hazard": out}, summarise(table, study.scenario)
