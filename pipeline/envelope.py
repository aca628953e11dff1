"""Envelope stage: what fits on each parcel, and how much earth must move.

For every parcel: the zoning caps (building coverage with its bonuses, floor
area ratio with the front-road rule), the net buildable area after setbacks and
exclusions, the storeys the programme needs and the parking the remaining ground
holds, and the cut and fill that level a pad. The programme (required floor
area) comes from the study, given or computed by a named method
(:mod:`pipeline.programme`). Kernels live in :mod:`pipeline.zoning`,
:mod:`pipeline.programme` and :mod:`pipeline.earthwork`; this module wires them
to the study.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from pipeline import zoning
from pipeline._progress import progress
from pipeline.config import Programme, Zoning
from pipeline.errors import LayerError, raise_all

logger = logging.getLogger(__name__)


def required_floor_area(programme: Programme) -> tuple[float, str]:
    """The programme's floor area (m2) and a note of how it was obtained.

    Examples
    --------
    >>> required_floor_area(Programme(floor_area=4266.9))
    (4266.9, 'given in the study')
    >>> required_floor_area(Programme(packaged="hamanaka_2017", use="mlit"))
    (4266.9, 'hamanaka_2017: mlit')
    """
    from pipeline import programme as prog

    if programme.floor_area > 0:
        return programme.floor_area, "given in the study"
    if not programme.packaged and programme.file is None:
        return float("nan"), "no programme given"
    specs = (prog.packaged_programme(programme.packaged) if programme.packaged
             else prog.load_programmes(programme.file))  # type: ignore[arg-type]
    if programme.use not in specs:
        from pipeline.errors import ConfigError

        raise ConfigError(f"[programme] use = {programme.use!r} is not a table of the programme "
                          f"file; it has: {', '.join(specs)}")
    base = prog.PROGRAMMES_DIR if programme.packaged else programme.file.parent  # type: ignore[union-attr]
    result = prog.required_floor_area(specs[programme.use], base_dir=base)
    source = programme.packaged or str(programme.file)
    return result.total_m2, f"{source}: {programme.use}"


def parcel_zoning(parcels: gpd.GeoDataFrame, z: Zoning, *, layer: str = "layer 'parcels'"
                  ) -> pd.DataFrame:
    """Coverage ratio, FAR, zone kind and corner flag per parcel: attribute or study default.

    Raises LayerError listing parcels whose attributes are out of range or not numbers;
    ``layer`` names the parcels layer in that message.

    Examples
    --------
    >>> from shapely.geometry import box
    >>> p = gpd.GeoDataFrame({"far": [3.0, None]}, geometry=[box(0, 0, 1, 1)] * 2,
    ...                      index=["A", "B"], crs=6681)
    >>> parcel_zoning(p, Zoning())
       coverage_ratio  far zone_kind  corner
    A             0.6  3.0     other   False
    B             0.6  2.0     other   False
    """
    def column(name: str, default: Any) -> pd.Series:
        if name in parcels.columns:
            return parcels[name].where(parcels[name].notna(), default)
        return pd.Series(default, index=parcels.index)

    raw = {"coverage_ratio": column(z.coverage_column, z.coverage_ratio),
           "far": column(z.far_column, z.far)}
    out = pd.DataFrame({
        "coverage_ratio": pd.to_numeric(raw["coverage_ratio"], errors="coerce"),
        "far": pd.to_numeric(raw["far"], errors="coerce"),
        "zone_kind": column(z.zone_kind_column, z.zone_kind).astype(str),
        "corner": column(z.corner_column, False).astype(bool),
    }, index=parcels.index)

    def found(key: str, bad: pd.Series) -> str:
        values = raw[key][bad] if key in raw else out[key][bad]
        return (f"parcel(s) {', '.join(map(str, out.index[bad][:10]))} have "
                f"{', '.join(_show(v) for v in values[:10])}")

    problems = []
    bad = ~out["coverage_ratio"].between(0.0, 1.0, inclusive="right")
    if bad.any():
        problems.append(f"attribute {z.coverage_column!r} must be a share in (0, 1] (60 % is "
                        f"0.6); {found('coverage_ratio', bad)}; fix them, or leave them empty to "
                        "use [zoning] coverage_ratio")
    bad = ~(out["far"] > 0)
    if bad.any():
        problems.append(f"attribute {z.far_column!r} must be a ratio greater than 0 (200 % is "
                        f"2.0); {found('far', bad)}; fix them, or leave them empty to use "
                        "[zoning] far")
    bad = ~out["zone_kind"].isin(["residential", "other"])
    if bad.any():
        problems.append(f"attribute {z.zone_kind_column!r} must be 'residential' or 'other'; "
                        f"{found('zone_kind', bad)}")
    raise_all(problems, LayerError, layer)
    return out


def _show(value: Any) -> str:
    """A value found in a layer, for messages: text quoted, numbers short."""
    if isinstance(value, str):
        return repr(value)
    try:
        return f"{float(value):g}"
    except (TypeError, ValueError):
        return repr(value)


def front_road_width(parcels: gpd.GeoDataFrame, roads: gpd.GeoDataFrame | None, z: Zoning,
                     width_column: str) -> pd.DataFrame:
    """Widest fronting road per parcel: from the road layer, else the parcel attribute."""
    if roads is not None and width_column in roads.columns:
        fr = zoning.fronting_roads(parcels, roads, width_column=width_column,
                                   tolerance=z.front_road_tolerance)
    else:
        fr = pd.DataFrame({"n_fronting_roads": 0, "widest_fronting_road_m": np.nan},
                          index=parcels.index)
    if z.road_width_column in parcels.columns:
        given = pd.to_numeric(parcels[z.road_width_column], errors="coerce")
        fr["widest_fronting_road_m"] = fr["widest_fronting_road_m"].fillna(given)
    return fr[["n_fronting_roads", "widest_fronting_road_m"]]


def envelope_table(
    parcels: gpd.GeoDataFrame,
    roads: gpd.GeoDataFrame | None,
    z: Zoning,
    programme: Programme,
    *,
    floor_area: float,
    width_column: str = "width",
    exclusions: gpd.GeoDataFrame | None = None,
) -> pd.DataFrame:
    """Zoning caps, net buildable area, storeys and parking per parcel (pure).

    Parameters
    ----------
    parcels : GeoDataFrame
        In the study's metric CRS, indexed by site id.
    roads : GeoDataFrame or None
        Road centre lines in the same CRS, with a width column.
    z : Zoning
    programme : Programme
    floor_area : float
        Required floor area, m2.
    width_column : str
        Road width column.
    exclusions : GeoDataFrame, optional
        Unbuildable areas (steep ground, ground below the water level).

    Returns
    -------
    DataFrame
        Aligned to ``parcels.index``; columns documented in README.
    """
    attrs = parcel_zoning(parcels, z)
    area = parcels.geometry.area
    cov = zoning.coverage_cap(area, attrs["coverage_ratio"], corner=attrs["corner"])
    roads_front = front_road_width(parcels, roads, z, width_column)
    far = zoning.far_cap(area, attrs["far"], roads_front["widest_fronting_road_m"],
                         attrs["zone_kind"], threshold=z.front_road_threshold,
                         multipliers={"residential": z.residential_multiplier,
                                      "other": z.other_multiplier})
    net = zoning.net_buildable(parcels, setback=z.setback, exclusions=exclusions,
                               coverage_cap_m2=cov["coverage_cap_m2"])
    options = zoning.storey_options(
        floor_area, net["footprint_cap_m2"], far["far_cap_m2"], area,
        storeys=range(1, programme.max_storeys + 1), stall_area=programme.stall_area,
        parking_need=programme.parking_need, other_ground_use=programme.other_ground_use)
    summary = zoning.storey_summary(options)
    table = pd.concat([
        pd.DataFrame({"site_area": area, "zone_kind": attrs["zone_kind"]}),
        cov[["coverage_ratio_effective", "coverage_cap_m2"]],
        roads_front,
        far[["far_effective", "far_cap_m2", "far_governed_by"]],
        net[["net_buildable_m2", "footprint_cap_m2", "footprint_governed_by"]],
        summary,
    ], axis=1)
    table["required_floor_area"] = floor_area
    table["parking_need"] = programme.parking_need
    table["evacuation_space_m2"] = programme.evacuation_people * programme.evacuation_area_per_person
    return table


def pad_levels(parcels: gpd.GeoDataFrame, column: str) -> pd.Series | None:
    """Design pad levels from a parcel column (NaN: balance cut and fill); None without one."""
    if column not in parcels.columns:
        return None
    return pd.to_numeric(parcels[column], errors="coerce")


def _exclusion_scenario(study: Any) -> Any:
    """The scenario ``[zoning] exclude_below`` names, None for ''; ConfigError when unknown."""
    name = study.zoning.exclude_below
    if not name:
        return None
    scenarios = {s.name: s for s in study.scenario}
    if name not in scenarios:
        import difflib

        from pipeline.errors import ConfigError

        close = difflib.get_close_matches(name, list(scenarios), n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise ConfigError(f"study file {study.path}: zoning.exclude_below = {name!r} is not a "
                          f"scenario; {hint}name one of the study's scenarios "
                          f"({', '.join(scenarios) or 'none'}) or '' for none")
    return scenarios[name]


def check_inputs(ctx: Any) -> None:
    """Check what the envelope stage reads before any stage writes: the parcels' zoning
    attributes, the road layer and the ``exclude_below`` scenario."""
    _exclusion_scenario(ctx.study)
    parcel_zoning(ctx.parcels, ctx.study.zoning,
                  layer=f"layer 'parcels' ({ctx.study.layers.parcels.source})")
    if ctx.study.layers.roads is not None:
        _ = ctx.roads


def exclusion_areas(ctx: Any) -> gpd.GeoDataFrame | None:
    """Unbuildable ground inside the parcels: steeper than ``max_slope`` or below a water level."""
    z = ctx.study.zoning
    level = None
    scenario = _exclusion_scenario(ctx.study)
    if scenario is not None:
        hazard = ctx.stage_frame("hazard")
        level = hazard[f"{scenario.name}_level"]
    if z.max_slope <= 0 and level is None:
        return None
    return unbuildable_ground(ctx.parcels, ctx.dem,
                              max_slope=z.max_slope or None, below=level,
                              show_progress=ctx.options.progress)


def unbuildable_ground(
    parcels: gpd.GeoDataFrame,
    dem: Path,
    *,
    max_slope: float | None = None,
    below: pd.Series | None = None,
    show_progress: bool = False,
) -> gpd.GeoDataFrame:
    """Polygons of DEM cells inside the parcels that are too steep or below a water level.

    Each parcel's DEM window is read on its own (never the whole raster), its slope
    computed (:func:`pipeline.raster.slope_degrees`), the cells that fail
    polygonised with :func:`rasterio.features.shapes` and clipped to the parcel.
    The loop is over parcels' raster windows, not over geometries' vertices.

    Parameters
    ----------
    parcels : GeoDataFrame
        In the DEM's CRS.
    dem : Path
    max_slope : float, optional
        Degrees; steeper cells are excluded.
    below : Series, optional
        Water level (m T.P.) per parcel; lower cells are excluded.
    show_progress : bool
        A progress bar over the parcels.

    Returns
    -------
    GeoDataFrame
        One (multi)polygon per parcel with exclusions, ``site_id`` column, parcels' CRS.
    """
    import rasterio
    import shapely
    from rasterio.features import shapes
    from rasterio.windows import from_bounds

    from pipeline.raster import slope_degrees

    pieces, owners = [], []
    with rasterio.open(dem) as ds:
        for site, geom in progress(zip(parcels.index, parcels.geometry.to_numpy()),
                                   desc="unbuildable ground", total=len(parcels),
                                   enabled=show_progress):
            win = from_bounds(*geom.buffer(2 * ds.res[0]).bounds, transform=ds.transform)
            win = win.round_offsets().round_lengths()
            z = ds.read(1, window=win, masked=True).astype("float64").filled(np.nan)
            transform = ds.window_transform(win)
            bad = np.zeros(z.shape, dtype=bool)
            if max_slope is not None:
                bad |= np.nan_to_num(slope_degrees(z, transform), nan=0.0) > max_slope
            if below is not None and np.isfinite(below.get(site, np.nan)):
                bad |= np.nan_to_num(z, nan=np.inf) < below[site]
            if not bad.any():
                continue
            polys = [shapely.geometry.shape(g) for g, v in
                     shapes(bad.astype("uint8"), mask=bad, transform=transform) if v]
            pieces.append(shapely.intersection(shapely.union_all(polys), geom))
            owners.append(site)
    return gpd.GeoDataFrame({"site_id": owners}, geometry=pieces, crs=parcels.crs)


def run_stage(ctx: Any) -> tuple[dict[str, Path], str]:
    """The ``envelope`` stage: writes ``stages/envelope.parquet``."""
    from pipeline._io import write_frame
    from pipeline.earthwork import cut_fill

    study = ctx.study
    floor_area, source = required_floor_area(study.programme)
    logger.info("programme: %.1f m2 required floor area (%s)", floor_area, source)
    roads_spec = study.layers.roads
    roads = ctx.roads if roads_spec is not None else None
    table = envelope_table(ctx.parcels, roads, study.zoning, study.programme,
                           floor_area=floor_area,
                           width_column=roads_spec.width_column if roads_spec else "width",
                           exclusions=exclusion_areas(ctx))
    earth = cut_fill(ctx.parcels, ctx.dem,
                     pad_elevation=pad_levels(ctx.parcels, study.programme.pad_elevation_column))
    table = pd.concat([table, earth[["pad_elevation_used", "cut_m3", "fill_m3", "net_m3"]]],
                      axis=1)
    out = ctx.stage_path("envelope")
    write_frame(out, table)
    fits = table["min_storeys"].notna().sum()
    parking = (table["min_storeys_parking"].notna()).sum()
    return {"envelope": out}, (f"{len(table)} parcels; programme {floor_area:,.1f} m2 fits on "
                               f"{fits}, with its parking on {parking}")
