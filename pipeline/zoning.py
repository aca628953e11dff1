"""Zoning envelope of parcels: coverage and floor-area caps, net buildable area, storeys.

Pure functions, vectorised over parcels: pandas Series (or arrays, or scalars that
broadcast) in, a DataFrame aligned to the parcels' index out. Ratios are shares
(0.8 = 80 %), lengths metres, areas m2. The rules are those of Japan's Building
Standards Act (建築基準法):

- art. 53 para 1: max footprint = site area x building coverage ratio (建蔽率);
- art. 53 para 3: +1/10 to the ratio for a corner lot designated by the authority
  (角地), and +1/10 for a fire-resistant building in a fire-prevention district
  (防火地域内の耐火建築物等; since 2019 also quasi-fire-prevention districts); the two add up;
- art. 53 para 6 (1): a fire-resistant building in a fire-prevention district whose
  designated ratio is 8/10 has no coverage limit (ratio 1.0);
- art. 52 para 2: when the widest fronting road is under 12 m, the floor area ratio
  (容積率) is at most width x 4/10 in residential zones and width x 6/10 in the others
  (the multipliers can be changed by the authority: they are options here).
  The relief for sites near a wide "specified road" (art. 52 para 9) is not modelled.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from pipeline.crs import check_metric
from pipeline.errors import ConfigError, CRSError, LayerError

logger = logging.getLogger(__name__)

ArrayLike = Any  # pandas Series, numpy array or scalar
DEFAULT_ROAD_MULTIPLIERS: Mapping[str, float] = MappingProxyType(
    {"residential": 0.4, "other": 0.6})
#: zone kind of each use district (用途地域) for the front-road rule (art. 52 para 2)
USE_DISTRICT_KIND: Mapping[str, str] = MappingProxyType({
    "第一種低層住居専用地域": "residential", "第二種低層住居専用地域": "residential",
    "田園住居地域": "residential", "第一種中高層住居専用地域": "residential",
    "第二種中高層住居専用地域": "residential", "第一種住居地域": "residential",
    "第二種住居地域": "residential", "準住居地域": "residential",
    "近隣商業地域": "other", "商業地域": "other", "準工業地域": "other", "工業地域": "other",
    "工業専用地域": "other", "用途地域の指定のない区域": "other",
})


def coverage_cap(site_area: ArrayLike, coverage_ratio: ArrayLike, *, corner: ArrayLike = False,
                 fire_resistant_in_fire_district: ArrayLike = False) -> pd.DataFrame:
    """Maximum building footprint from the coverage ratio, with the art. 53 bonuses.

    Each bonus adds 0.1 to the designated ratio (art. 53 para 3), capped at 1.0; a
    fire-resistant building in a fire-prevention district where the designated ratio
    is 0.8 or more has no limit (art. 53 para 6).

    Parameters
    ----------
    site_area : Series, array or float
        Site area (m2).
    coverage_ratio : Series, array or float
        Designated building coverage ratio, as a share (0 < ratio <= 1).
    corner : bool or Series of bool
        Corner lot designated by the authority.
    fire_resistant_in_fire_district : bool or Series of bool
        Fire-resistant building in a (quasi-)fire-prevention district.

    Returns
    -------
    DataFrame
        ``coverage_ratio``, ``coverage_bonus``, ``coverage_ratio_effective`` (shares)
        and ``coverage_cap_m2``, aligned to the input index.

    Examples
    --------
    >>> coverage_cap(7094.0, 0.8)
       coverage_ratio  coverage_bonus  coverage_ratio_effective  coverage_cap_m2
    0             0.8             0.0                       0.8           5675.2
    >>> coverage_cap(1000.0, 0.6, corner=True, fire_resistant_in_fire_district=True)[
    ...     "coverage_cap_m2"].item()
    800.0
    """
    index, (area, ratio, is_corner, is_fire) = _broadcast(
        site_area, coverage_ratio, corner, fire_resistant_in_fire_district)
    _check_range(ratio, "coverage_ratio", low=0.0, high=1.0)
    _check_range(area, "site_area", low=0.0)
    is_corner, is_fire = is_corner.astype(bool), is_fire.astype(bool)
    exempt = is_fire & (ratio >= 0.8 - 1e-9)
    bonus = 0.1 * is_corner + 0.1 * (is_fire & ~exempt)
    effective = np.where(exempt, 1.0, np.clip(np.round(ratio + bonus, 10), ratio, 1.0))
    return pd.DataFrame({
        "coverage_ratio": ratio, "coverage_bonus": np.round(effective - ratio, 10),
        "coverage_ratio_effective": effective, "coverage_cap_m2": area * effective,
    }, index=index)


def far_cap(site_area: ArrayLike, designated_far: ArrayLike, front_road_width: ArrayLike,
            zone_kind: ArrayLike, *, multipliers: Mapping[str, float] = DEFAULT_ROAD_MULTIPLIERS,
            threshold: float = 12.0) -> pd.DataFrame:
    """Effective floor area ratio with the front-road rule (art. 52 para 2), and the cap in m2.

    When the widest fronting road is narrower than ``threshold``, the ratio is the
    smaller of the designated one and width x multiplier of the zone kind.

    Parameters
    ----------
    site_area : Series, array or float
        Site area (m2).
    designated_far : Series, array or float
        Designated floor area ratio, as a share (3.0 = 300 %).
    front_road_width : Series, array or float
        Width (m) of the widest fronting road; NaN where no road fronts the parcel.
    zone_kind : str or Series of str
        A key of ``multipliers`` ("residential" or "other" by default); see
        :data:`USE_DISTRICT_KIND` to map use districts to kinds.
    multipliers : mapping, optional
        Zone kind -> ratio per metre of road width.
    threshold : float, default 12.0
        Roads at least this wide leave the designated ratio.

    Returns
    -------
    DataFrame
        ``far_designated``, ``far_road`` (NaN when the road rule does not apply),
        ``far_effective``, ``far_cap_m2`` and ``far_governed_by`` ("designated",
        "road", or "no_road" where the width is missing: ratio and cap are NaN).

    Examples
    --------
    >>> far_cap(100.0, [2.0, 4.0, 2.0], [4.0, 5.4, 12.0], ["residential", "other", "other"])
       far_designated  far_road  far_effective  far_cap_m2 far_governed_by
    0             2.0      1.60           1.60       160.0            road
    1             4.0      3.24           3.24       324.0            road
    2             2.0       NaN           2.00       200.0      designated
    """
    index, (area, far, width, kind) = _broadcast(site_area, designated_far,
                                                 front_road_width, zone_kind)
    _check_range(far, "designated_far", low=0.0, high=20.0)  # a share: 3.0, not 300
    width = width.astype(float)
    unknown = sorted({str(k) for k in kind} - set(multipliers))
    if unknown:
        raise ConfigError(f"zone_kind: unknown value(s) {', '.join(unknown)}; use one of "
                          f"{', '.join(multipliers)} (or pass multipliers=...)")
    factor = np.array([multipliers[str(k)] for k in kind], dtype=float)
    road = np.where(width < threshold, np.round(width * factor, 10), np.nan)
    effective = np.fmin(far, road)
    governed = np.where(np.isnan(width), "no_road",
                        np.where(road < far, "road", "designated"))
    effective = np.where(np.isnan(width), np.nan, effective)
    return pd.DataFrame({
        "far_designated": far, "far_road": road, "far_effective": effective,
        "far_cap_m2": area * effective, "far_governed_by": governed,
    }, index=index)


def fronting_roads(parcels: gpd.GeoDataFrame, roads: gpd.GeoDataFrame, *,
                   width_column: str = "width", tolerance: float = 2.0) -> pd.DataFrame:
    """Roads that front each parcel, and the widest of them.

    A road fronts a parcel when its edge is within ``tolerance`` of the parcel: for
    road centrelines (lines) within ``width / 2 + tolerance`` of the parcel, for road
    areas (polygons) within ``tolerance``. One vectorised spatial join.

    Parameters
    ----------
    parcels : GeoDataFrame
        Parcel polygons, in a projected metric CRS.
    roads : GeoDataFrame
        Road lines or polygons with a width column (m), in the same CRS.
    width_column : str, default "width"
        Column of ``roads`` holding the carriageway width.
    tolerance : float, default 2.0
        Gap (m) allowed between the road edge and the parcel boundary.

    Returns
    -------
    DataFrame
        ``n_fronting_roads``, ``widest_fronting_road_m`` (NaN when none) and
        ``fronting_road_ids`` (tuple of road index labels), aligned to ``parcels``.

    Raises
    ------
    CRSError
        The layers lack a CRS, differ, or are not metric; the message names both.
    LayerError
        The width column is missing or holds missing or negative widths.

    Examples
    --------
    >>> from shapely.geometry import LineString, box
    >>> parcels = gpd.GeoDataFrame(geometry=[box(0, 0, 50, 40)], crs="EPSG:6681")
    >>> roads = gpd.GeoDataFrame({"width": [10.9, 3.8, 6.0]}, geometry=[
    ...     LineString([(55.45, -10), (55.45, 50)]), LineString([(-10, 41.9), (60, 41.9)]),
    ...     LineString([(-10, -30), (60, -30)])], crs="EPSG:6681")
    >>> fronting_roads(parcels, roads)
       n_fronting_roads  widest_fronting_road_m fronting_road_ids
    0                 2                    10.9            (0, 1)
    """
    _same_metric_crs(parcels, "parcels", roads, "roads")
    if width_column not in roads.columns:
        raise LayerError(f"roads layer: no width column {width_column!r}; columns are "
                         f"{', '.join(map(str, roads.columns))}")
    width = pd.to_numeric(roads[width_column], errors="coerce")
    bad = width.isna() | (width < 0)
    if bad.any():
        raise LayerError(f"roads layer: {int(bad.sum())} road(s) have a missing or negative "
                         f"{width_column!r} (index {bad[bad].index.tolist()[:10]}); fill them "
                         "or drop those roads")
    is_line = roads.geometry.geom_type.isin(["LineString", "MultiLineString"]).to_numpy()
    reach = np.where(is_line, width.to_numpy(float) / 2.0, 0.0) + tolerance
    zones = gpd.GeoDataFrame({"_road": roads.index, "_width": width.to_numpy(float)},
                             geometry=roads.geometry.buffer(reach).to_numpy(), crs=roads.crs)
    targets = gpd.GeoDataFrame(geometry=parcels.geometry.to_numpy(), crs=parcels.crs)
    hits = gpd.sjoin(targets, zones, how="inner", predicate="intersects")
    grouped = hits.groupby(level=0)
    out = pd.DataFrame(index=pd.RangeIndex(len(parcels)))
    out["n_fronting_roads"] = grouped.size().reindex(out.index, fill_value=0).astype(int)
    out["widest_fronting_road_m"] = grouped["_width"].max().reindex(out.index)
    ids = grouped["_road"].agg(lambda s: tuple(sorted(s, key=str)))
    out["fronting_road_ids"] = [ids.get(i, ()) for i in out.index]
    out.index = parcels.index
    logger.info("fronting roads: %d of %d parcels front a road", int(
        (out["n_fronting_roads"] > 0).sum()), len(out))
    return out


def net_buildable_geometry(parcels: gpd.GeoDataFrame, *, setback: ArrayLike = 0.0,
                           exclusions: gpd.GeoDataFrame | None = None) -> gpd.GeoSeries:
    """Buildable part of each parcel: shrunk by the setback, minus the exclusion polygons.

    Parameters
    ----------
    parcels : GeoDataFrame
        Parcel polygons in a projected metric CRS.
    setback : float or Series
        Distance (m) kept free from the parcel boundary (a negative buffer).
    exclusions : GeoDataFrame, optional
        Polygons where nothing may be built (steep slopes, ground below the design
        water level), in the parcels' CRS.

    Returns
    -------
    GeoSeries
        Aligned to ``parcels``, in its CRS (empty geometries where nothing is left).

    Examples
    --------
    >>> from shapely.geometry import box
    >>> parcels = gpd.GeoDataFrame(geometry=[box(0, 0, 100, 50)], crs="EPSG:6681")
    >>> net_buildable_geometry(parcels, setback=5.0).area.item()
    3600.0
    """
    if parcels.crs is None:
        raise CRSError("parcels layer has no CRS; set it with .set_crs() to the study CRS")
    check_metric(parcels.crs, what="parcels layer")
    _, (distance,) = _broadcast(setback, index=parcels.index)
    _check_range(distance, "setback", low=0.0)
    shrunk = parcels.geometry.buffer(-distance, join_style="mitre")
    if exclusions is not None and len(exclusions):
        _same_metric_crs(parcels, "parcels", exclusions, "exclusions")
        shrunk = shrunk.difference(exclusions.geometry.union_all())
    return gpd.GeoSeries(shrunk.to_numpy(), index=parcels.index, crs=parcels.crs)


def net_buildable(parcels: gpd.GeoDataFrame, *, setback: ArrayLike = 0.0,
                  exclusions: gpd.GeoDataFrame | None = None,
                  coverage_cap_m2: ArrayLike | None = None) -> pd.DataFrame:
    """Net buildable area of each parcel, and the footprint cap.

    Parameters
    ----------
    parcels : GeoDataFrame
        Parcel polygons in a projected metric CRS.
    setback : float or Series
        Distance (m) kept free from the parcel boundary.
    exclusions : GeoDataFrame, optional
        Polygons where nothing may be built, in the parcels' CRS.
    coverage_cap_m2 : Series or float, optional
        Footprint allowed by the coverage ratio (see :func:`coverage_cap`); default
        no coverage limit.

    Returns
    -------
    DataFrame
        ``site_area_m2``, ``net_buildable_m2``, ``removed_m2``, ``footprint_cap_m2``
        (smaller of the coverage cap and the net buildable area) and
        ``footprint_governed_by`` ("coverage" or "buildable_area").

    Examples
    --------
    >>> from shapely.geometry import box
    >>> parcels = gpd.GeoDataFrame(geometry=[box(0, 0, 100, 50)], crs="EPSG:6681")
    >>> res = net_buildable(parcels, setback=5.0, coverage_cap_m2=3000.0)
    >>> res[["site_area_m2", "net_buildable_m2", "footprint_cap_m2"]].iloc[0].tolist()
    [5000.0, 3600.0, 3000.0]
    >>> res["footprint_governed_by"].item()
    'coverage'
    """
    net = net_buildable_geometry(parcels, setback=setback, exclusions=exclusions).area
    site = parcels.geometry.area
    if coverage_cap_m2 is None:
        cap = np.full(len(parcels), np.inf)
    else:
        _, (cap,) = _broadcast(coverage_cap_m2, index=parcels.index)
    footprint = np.minimum(cap, net.to_numpy())
    return pd.DataFrame({
        "site_area_m2": site.to_numpy(), "net_buildable_m2": net.to_numpy(),
        "removed_m2": (site - net).to_numpy(), "footprint_cap_m2": footprint,
        "footprint_governed_by": np.where(cap <= net.to_numpy(), "coverage", "buildable_area"),
    }, index=parcels.index)


def storey_options(required_floor_area: ArrayLike, footprint_cap: ArrayLike,
                   far_cap_m2: ArrayLike, site_area: ArrayLike, *,
                   storeys: Iterable[int] = range(1, 11), stall_area: float = 25.0,
                   parking_need: ArrayLike, other_ground_use: ArrayLike = 0.0) -> pd.DataFrame:
    """Footprint, fit and parking for each parcel and storey count.

    footprint = required floor area / storeys (equal floors); it fits when the
    footprint is within the footprint cap and the floor area within the FAR cap; the
    ground left (site - footprint - other ground use) holds ``floor(ground / stall_area)``
    stalls, and the parking share is stalls / need.

    Parameters
    ----------
    required_floor_area, footprint_cap, far_cap_m2, site_area : Series, array or float
        Per parcel, m2.
    storeys : iterable of int, default 1..10
        Storey counts to try.
    stall_area : float, default 25.0
        Ground per parking stall, aisles included (m2).
    parking_need : Series, array or float
        Stalls to place on the site.
    other_ground_use : Series, array or float, default 0
        Ground kept for other uses (access, plaza, green, bicycles...), m2.

    Returns
    -------
    DataFrame
        Indexed by (parcel, ``storeys``): ``footprint_m2``, ``fits_coverage``,
        ``fits_far``, ``fits``, ``ground_left_m2``, ``stalls``, ``parking_share``,
        ``parking_ok``.

    Examples
    --------
    >>> opts = storey_options(6500.0, 5675.2, 21282.0, 7094.0, storeys=[3, 4, 5],
    ...                       parking_need=125, other_ground_use=2344.0)
    >>> opts["parking_share"].round(2).tolist()
    [0.82, 1.0, 1.1]
    """
    if stall_area <= 0:
        raise ConfigError(f"stall_area must be > 0, got {stall_area!r}")
    counts = np.array(sorted({int(s) for s in storeys}), dtype=int)
    if len(counts) == 0 or counts.min() < 1:
        raise ConfigError(f"storeys must be positive integers, got {list(storeys)!r}")
    index, cols = _broadcast(required_floor_area, footprint_cap, far_cap_m2, site_area,
                             parking_need, other_ground_use)
    area, cap, far, site, need, other = (c.astype(float)[:, None] for c in cols)
    footprint = area / counts[None, :]
    ground = np.clip(site - footprint - other, 0.0, None)
    stalls = np.floor(ground / stall_area + 1e-9)
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(need > 0, stalls / need, np.inf)
    fits_cov = footprint <= cap + 1e-9
    fits_far = np.broadcast_to(area <= far + 1e-9, footprint.shape)
    names = [index.name or "parcel", "storeys"]
    return pd.DataFrame({
        "footprint_m2": footprint.ravel(), "fits_coverage": fits_cov.ravel(),
        "fits_far": fits_far.ravel(), "fits": (fits_cov & fits_far).ravel(),
        "ground_left_m2": ground.ravel(), "stalls": stalls.astype(int).ravel(),
        "parking_share": share.ravel(), "parking_ok": (stalls >= need).ravel(),
    }, index=pd.MultiIndex.from_product([index, counts], names=names))


def storey_summary(options: pd.DataFrame) -> pd.DataFrame:
    """Fewest storeys that fit, and fewest that fit with the parking need met, per parcel.

    Parameters
    ----------
    options : DataFrame
        Output of :func:`storey_options`.

    Returns
    -------
    DataFrame
        Indexed by parcel: ``min_storeys`` and ``min_storeys_parking`` (nullable
        integers, <NA> when no storey count qualifies), ``parking_share_at_min``.

    Examples
    --------
    >>> opts = storey_options(6500.0, 5675.2, 21282.0, 7094.0, parking_need=125,
    ...                       other_ground_use=2344.0)
    >>> storey_summary(opts)[["min_storeys", "min_storeys_parking"]].iloc[0].tolist()
    [2, 4]
    """
    level = options.index.names[0]
    frame = options.reset_index("storeys")
    first_fit = frame[frame["fits"]].groupby(level=level)["storeys"].min()
    first_park = frame[frame["fits"] & frame["parking_ok"]].groupby(level=level)["storeys"].min()
    parcels = options.index.get_level_values(0).unique()
    out = pd.DataFrame(index=parcels)
    out["min_storeys"] = first_fit.reindex(parcels).astype("Int64")
    out["min_storeys_parking"] = first_park.reindex(parcels).astype("Int64")
    shares = options["parking_share"]
    out["parking_share_at_min"] = [
        shares.loc[(p, int(s))] if pd.notna(s) else np.nan
        for p, s in zip(parcels, out["min_storeys"])
    ]
    return out


# --------------------------------------------------------------------------- helpers


def _broadcast(*values: ArrayLike, index: pd.Index | None = None
               ) -> tuple[pd.Index, list[np.ndarray]]:
    """Align Series (same index required), arrays and scalars to one index."""
    series = [v for v in values if isinstance(v, pd.Series)]
    if index is None:
        if series:
            index = series[0].index
        else:
            sizes = {np.size(v) for v in values if np.ndim(v) > 0}
            if len(sizes) > 1:
                raise LayerError(f"inputs have different lengths {sorted(sizes)}")
            index = pd.RangeIndex(sizes.pop() if sizes else 1)
    out = []
    for value in values:
        if isinstance(value, pd.Series):
            if not value.index.equals(index):
                raise LayerError("inputs are not aligned: Series with different indexes; "
                                 "reindex them to the parcels' index first")
            arr = value.to_numpy()
        else:
            arr = np.asarray(value)
            if arr.ndim and len(arr) != len(index):
                raise LayerError(f"input of length {len(arr)} does not match {len(index)} "
                                 "parcels")
        out.append(np.broadcast_to(arr, (len(index),)).copy())
    return index, out


def _check_range(values: np.ndarray, name: str, *, low: float,
                 high: float | None = None) -> None:
    arr = values.astype(float)
    bad = np.isnan(arr) | (arr < low) | ((arr > high) if high is not None else False)
    if name == "coverage_ratio":
        bad |= arr <= 0
    if bad.any():
        span = f"{low} < {name} <= {high}" if high is not None else f"{name} >= {low}"
        raise ConfigError(f"{name}: {int(bad.sum())} value(s) out of range, e.g. "
                          f"{arr[bad][0]!r}; expected {span}")


def _same_metric_crs(a: gpd.GeoDataFrame, a_name: str, b: gpd.GeoDataFrame,
                     b_name: str) -> None:
    if a.crs is None or b.crs is None:
        raise CRSError(f"{a_name} layer CRS {_crs_name(a.crs)} and {b_name} layer CRS "
                       f"{_crs_name(b.crs)}: both need a CRS; set it with .set_crs()")
    if not a.crs.equals(b.crs, ignore_axis_order=True):
        raise CRSError(f"{a_name} layer is in {_crs_name(a.crs)} but {b_name} layer is in "
                       f"{_crs_name(b.crs)}; reproject {b_name} with .to_crs() to the "
                       "study CRS first")
    check_metric(a.crs, what=f"{a_name} layer")


def _crs_name(crs: Any) -> str:
    return "None" if crs is None else crs.to_string()
