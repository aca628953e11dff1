"""Depth-rank polygons of the National Land Numerical Information (国土数値情報).

Japanese municipalities often have inundation depths only as polygons of depth
*ranks*, not as rasters:

- flood, A31 (洪水浸水想定区域): an integer rank. Ranks 1-6 of the current code
  list (``water_depth_code``): 1 < 0.5 m, 2 0.5-3 m, 3 3-5 m, 4 5-10 m,
  5 10-20 m, 6 >= 20 m. The rank is in ``A31a_205`` (maximum-scale rainfall)
  or ``A31a_105`` (planned-scale) in the 2022 edition (``A31_205`` /
  ``A31_105`` in the 2019-2021 editions). The 2012 edition's ``A31_001`` used
  codes 11-15 (0-0.5, 0.5-1, 1-2, 2-5, >= 5 m) and 21-27 (0-0.5, 0.5-1, 1-2,
  2-3, 3-4, 4-5, >= 5 m), also understood here. (Attribute names and codes as
  published on https://nlftp.mlit.go.jp/ksj/gml/datalist/KsjTmplt-A31.html and
  its code list; checked against third-party readers, not the specification
  PDF itself, so confirm them against the edition you download.)
- tsunami, A40 (津波浸水想定): a text rank in ``A40_003`` as each prefecture
  wrote it: ``"0.3m未満"``, ``"1m以上2m未満"``, ``"20m以上"``, ``"0.5～1.0m"``.

:func:`depth_intervals_from_ranks` turns either into ``depth_min`` /
``depth_max`` (m; the last rank is open: ``depth_max = inf`` unless capped), and
:func:`depth_stats_from_polygons` summarises them over parcels the way
:func:`pipeline.zonal.zonal_stats` summarises a depth raster, using each
rank's upper bound (conservative).
"""

from __future__ import annotations

import logging
import math
import re
import unicodedata
from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd

from pipeline.errors import CRSError, LayerError
from pipeline.raster import describe_crs
from pipeline.zonal import JAPAN_DEPTH_BREAKS, class_column, class_intervals

if TYPE_CHECKING:
    import geopandas as gpd

logger = logging.getLogger(__name__)

INF = math.inf
A31_RANKS: dict[int, tuple[float, float]] = {
    1: (0.0, 0.5), 2: (0.5, 3.0), 3: (3.0, 5.0), 4: (5.0, 10.0), 5: (10.0, 20.0), 6: (20.0, INF),
    11: (0.0, 0.5), 12: (0.5, 1.0), 13: (1.0, 2.0), 14: (2.0, 5.0), 15: (5.0, INF),
    21: (0.0, 0.5), 22: (0.5, 1.0), 23: (1.0, 2.0), 24: (2.0, 3.0), 25: (3.0, 4.0),
    26: (4.0, 5.0), 27: (5.0, INF),
}
"""A31 rank code -> depth interval [min, max) in m (1-6 current, 11-15 and 21-27 of 2012)."""

RANK_COLUMNS = ("A31a_205", "A31a_105", "A31_205", "A31_105", "A31_001", "A40_003")
"""Rank attributes looked for when no column is named, in this order."""

_NUM = r"(\d+(?:\.\d+)?)(cm|m)?"
_PATTERNS = [  # (regex, which bounds it gives)
    (re.compile(rf"^{_NUM}(?:以上|超){_NUM}(?:未満|以下)$"), "both"),
    (re.compile(rf"^{_NUM}(?:未満|以下)$"), "upper"),
    (re.compile(rf"^{_NUM}(?:以上|超)$"), "lower"),
    (re.compile(rf"^{_NUM}[~〜\-–]{_NUM}(?:未満|以下)?$"), "both"),
    (re.compile(rf"^{_NUM}[~〜\-–]$"), "lower"),
]


def parse_depth_text(text: str) -> tuple[float, float] | None:
    """Depth interval (m) of an A40-style rank text, or None if it is not one.

    Full-width digits and signs are accepted; ``cm`` is converted; a missing
    unit on the first number of a range takes the second's.

    Examples
    --------
    >>> parse_depth_text("1m以上2m未満"), parse_depth_text("0.3m未満")
    ((1.0, 2.0), (0.0, 0.3))
    >>> parse_depth_text("20m以上"), parse_depth_text("０．５～１．０ｍ")
    ((20.0, inf), (0.5, 1.0))
    >>> parse_depth_text("30cm未満"), parse_depth_text("浸水なし")
    ((0.0, 0.3), None)
    """
    s = unicodedata.normalize("NFKC", str(text)).replace(" ", "").replace("ｍ", "m")
    for pattern, kind in _PATTERNS:
        m = pattern.match(s)
        if not m:
            continue
        g = m.groups()
        if kind == "both":
            unit_b = g[3] or "m"
            a = float(g[0]) * (0.01 if (g[1] or unit_b) == "cm" else 1.0)
            b = float(g[2]) * (0.01 if unit_b == "cm" else 1.0)
            return (a, b) if b > a else None
        v = float(g[0]) * (0.01 if g[1] == "cm" else 1.0)
        return (0.0, v) if kind == "upper" else (v, INF)
    return None


def _rank_code(value: object) -> int | None:
    try:
        f = float(str(value).strip())
    except ValueError:
        return None
    return int(f) if f.is_integer() else None


def depth_intervals_from_ranks(
    gdf: gpd.GeoDataFrame,
    *,
    column: str | None = None,
    scheme: Literal["A31", "A40", "auto"] = "auto",
    open_upper: float = INF,
    layer: str = "depth ranks",
) -> gpd.GeoDataFrame:
    """Add ``depth_min`` and ``depth_max`` (m) to depth-rank polygons.

    Parameters
    ----------
    gdf : GeoDataFrame
        A31 or A40 polygons.
    column : str, optional
        The rank attribute; by default the first of :data:`RANK_COLUMNS` present.
    scheme : {"A31", "A40", "auto"}
        ``"A31"``: integer rank codes (:data:`A31_RANKS`); ``"A40"``: rank texts
        (:func:`parse_depth_text`); ``"auto"``: codes if every value is an
        integer, texts otherwise.
    open_upper : float
        Upper bound given to the open last rank (``>= 20 m``) only; ``inf`` by
        default, which makes every check on that area fail, as it should.
    layer : str
        Layer name for messages.

    Returns
    -------
    GeoDataFrame
        A copy with ``depth_min``, ``depth_max`` (float) and ``depth_rank``
        (the original value as text).

    Raises
    ------
    LayerError
        No rank column, empty ranks, or values that are no known rank (all
        distinct bad values are listed).

    Examples
    --------
    >>> import geopandas as gpd
    >>> from shapely.geometry import box
    >>> g = gpd.GeoDataFrame({"A31a_205": [1, 2, 6]}, geometry=[box(0, 0, 1, 1)] * 3,
    ...                      crs="EPSG:6677")
    >>> depth_intervals_from_ranks(g)[["depth_min", "depth_max"]]
       depth_min  depth_max
    0        0.0        0.5
    1        0.5        3.0
    2       20.0        inf
    >>> t = gpd.GeoDataFrame({"A40_003": ["1m以上2m未満"]}, geometry=[box(0, 0, 1, 1)],
    ...                      crs="EPSG:6677")
    >>> depth_intervals_from_ranks(t)[["depth_min", "depth_max"]].to_numpy().tolist()
    [[1.0, 2.0]]
    """
    if column is None:
        column = next((c for c in RANK_COLUMNS if c in gdf.columns), None)
        if column is None:
            raise LayerError(f"{layer}: no rank column ({', '.join(RANK_COLUMNS)}) among "
                             f"{list(gdf.columns)}; name it with column=")
    elif column not in gdf.columns:
        raise LayerError(f"{layer}: column {column!r} not found; it has {list(gdf.columns)}")
    values = gdf[column]
    if values.isna().any():
        raise LayerError(f"{layer}: {int(values.isna().sum())} polygons have no {column}; "
                         "drop them or fill in their rank")
    if scheme == "auto":
        scheme = "A31" if all(_rank_code(v) is not None for v in values.unique()) else "A40"
    intervals: dict[object, tuple[float, float] | None] = {}
    for v in values.unique():
        if scheme == "A31":
            code = _rank_code(v)
            intervals[v] = A31_RANKS.get(code) if code is not None else None
        elif scheme == "A40":
            intervals[v] = parse_depth_text(str(v))
        else:
            raise LayerError(f"{layer}: scheme = {scheme!r}; use 'A31', 'A40' or 'auto'")
    bad = sorted(str(v) for v, iv in intervals.items() if iv is None)
    if bad:
        known = "codes 1-6 (or 11-15, 21-27)" if scheme == "A31" else "texts like '1m以上2m未満'"
        raise LayerError(f"{layer}: {column} holds values that are no {scheme} depth rank: "
                         f"{bad}; expected {known}")
    known_iv = {v: iv for v, iv in intervals.items() if iv is not None}
    out = gdf.copy()
    lo = values.map(lambda v: known_iv[v][0]).astype(float)
    hi = values.map(lambda v: known_iv[v][1]).astype(float)
    hi_arr = hi.to_numpy()
    if not math.isinf(open_upper):
        open_lo = lo.to_numpy()[np.isinf(hi_arr)]
        if open_lo.size and open_upper <= open_lo.max():
            raise LayerError(f"{layer}: open_upper = {open_upper:g} m is not above the open "
                             f"rank's lower bound {open_lo.max():g} m; give a larger cap")
        hi_arr = np.where(np.isinf(hi_arr), open_upper, hi_arr)
    out["depth_min"] = lo.to_numpy()
    out["depth_max"] = hi_arr
    out["depth_rank"] = values.astype(str).to_numpy()
    logger.info("%s: %d polygons, %s ranks from %s", layer, len(out), scheme, column)
    return out


def _check_crs(parcels: gpd.GeoDataFrame, ranks: gpd.GeoDataFrame) -> None:
    if parcels.crs is None or ranks.crs is None:
        which = "parcels" if parcels.crs is None else "depth-rank polygons"
        raise CRSError(f"{which} have no CRS; set it, then reproject both layers to the "
                       "study's metric CRS")
    if not parcels.crs.equals(ranks.crs, ignore_axis_order=True):
        raise CRSError(f"depth-rank polygons are in {describe_crs(ranks.crs)} but the parcels are "
                       f"in {describe_crs(parcels.crs)}; reproject both to the study's metric CRS")
    unit = parcels.crs.axis_info[0].unit_name if parcels.crs.axis_info else ""
    if not parcels.crs.is_projected or unit not in ("metre", "meter"):
        raise CRSError(f"parcels and depth ranks are in {describe_crs(parcels.crs)}, not a "
                       "projected CRS in metres; reproject both (areas are measured)")


def _resolve_overlaps(ranks: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """One (multi)polygon per depth interval, deeper intervals cut out of shallower ones."""
    import geopandas as gpd
    import shapely

    levels = ranks[["depth_min", "depth_max", ranks.geometry.name]].dissolve(
        by=["depth_max", "depth_min"]).reset_index()
    levels = levels.sort_values(["depth_max", "depth_min"], ascending=False)
    geoms = levels.geometry.to_numpy()
    covered = shapely.union_all(geoms[:0])
    pieces = []
    for g in geoms:  # one pass per depth interval (a handful), not per polygon
        pieces.append(shapely.difference(g, covered))
        covered = shapely.union(covered, g)
    return gpd.GeoDataFrame(levels[["depth_min", "depth_max"]].to_numpy(),
                            columns=["depth_min", "depth_max"], geometry=pieces, crs=ranks.crs)


def depth_stats_from_polygons(
    parcels: gpd.GeoDataFrame,
    ranks_gdf: gpd.GeoDataFrame,
    *,
    classes: Sequence[float] = JAPAN_DEPTH_BREAKS,
    wet_threshold: float = 0.0,
    key: str = "depth",
) -> pd.DataFrame:
    """Depth statistics of each parcel from depth-rank polygons (upper bounds).

    Where rank polygons overlap, the deeper one counts. Each piece of a parcel
    takes its rank's upper bound ``depth_max``; outside every rank polygon the
    parcel is dry (depth 0).

    Parameters
    ----------
    parcels : GeoDataFrame
        In a projected CRS in metres.
    ranks_gdf : GeoDataFrame
        Output of :func:`depth_intervals_from_ranks`, in the parcels' CRS.
    classes : sequence of float
        Class breaks, as for :func:`pipeline.zonal.zonal_stats`; a piece falls in
        the class holding its upper bound (``lo < depth_max <= hi``).
    wet_threshold : float
        A piece is wet when its upper bound exceeds this (m).
    key : str
        Column prefix (use the scenario's raster key to get the same columns as
        :func:`pipeline.zonal.zonal_stats`).

    Returns
    -------
    DataFrame
        Aligned to ``parcels.index``: ``<key>_max`` (upper bound of the deepest
        rank), ``<key>_max_lower`` (its lower bound), ``<key>_mean`` (area-weighted
        upper bound over the whole parcel, dry parts 0), ``<key>_wet_area`` (m2),
        ``<key>_wet_share``, ``<key>_area_<lo>_<hi>`` (m2) and ``<key>_from_rank``
        (True: the depths are rank bounds, not measurements).

    Examples
    --------
    A 10 x 10 m parcel, its west half in rank 2 (0.5-3 m):

    >>> import geopandas as gpd
    >>> from shapely.geometry import box
    >>> parcels = gpd.GeoDataFrame(geometry=[box(0, 0, 10, 10)], index=["P"], crs="EPSG:6677")
    >>> ranks = depth_intervals_from_ranks(gpd.GeoDataFrame(
    ...     {"A31a_205": [2]}, geometry=[box(-5, -5, 5, 15)], crs="EPSG:6677"))
    >>> out = depth_stats_from_polygons(parcels, ranks, classes=[0.5, 3], key="flood")
    >>> out.T
                         P
    flood_max          3.0
    flood_max_lower    0.5
    flood_mean         1.5
    flood_wet_area    50.0
    flood_wet_share    0.5
    flood_area_0_0.5   0.0
    flood_area_0.5_3  50.0
    flood_area_3_inf   0.0
    flood_from_rank   True
    """
    import geopandas as gpd

    _check_crs(parcels, ranks_gdf)
    missing = [c for c in ("depth_min", "depth_max") if c not in ranks_gdf.columns]
    if missing:
        raise LayerError(f"depth-rank polygons have no {missing}; run "
                         "depth_intervals_from_ranks on them first")
    n = len(parcels)
    pos = np.arange(n)
    geoms = parcels.geometry.reset_index(drop=True)
    hit = ranks_gdf.sindex.query(geoms, predicate="intersects")
    sub = ranks_gdf.iloc[np.unique(hit[1])] if hit.size else ranks_gdf.iloc[:0]
    area = geoms.area.to_numpy()
    intervals = class_intervals(classes)
    out: dict[str, np.ndarray] = {f"{key}_max": np.zeros(n), f"{key}_max_lower": np.zeros(n),
                                  f"{key}_mean": np.zeros(n), f"{key}_wet_area": np.zeros(n)}
    class_area: np.ndarray = np.zeros((n, len(intervals)))
    if len(sub):
        levels = _resolve_overlaps(sub)
        left = gpd.GeoDataFrame({"_pos": pos}, geometry=geoms.to_numpy(), crs=parcels.crs)
        pieces = gpd.overlay(left, levels, how="intersection", keep_geom_type=True)
        p = pieces["_pos"].to_numpy()
        a = pieces.area.to_numpy()
        dmax, dmin = pieces["depth_max"].to_numpy(float), pieces["depth_min"].to_numpy(float)
        np.maximum.at(out[f"{key}_max"], p, dmax)
        np.maximum.at(out[f"{key}_max_lower"], p, dmin)
        with np.errstate(invalid="ignore"):
            out[f"{key}_mean"] = np.bincount(p, a * dmax, n)
        wet = dmax > wet_threshold
        out[f"{key}_wet_area"] = np.bincount(p, np.where(wet, a, 0.0), n)
        his = np.array([hi for _, hi in intervals])
        cls = np.searchsorted(his, dmax, side="left")  # lo < dmax <= hi
        sel = wet & (cls < len(intervals))
        class_area = np.bincount(p[sel] * len(intervals) + cls[sel], a[sel],
                                 n * len(intervals)).reshape(n, len(intervals))
    with np.errstate(invalid="ignore", divide="ignore"):
        out[f"{key}_mean"] = np.where(area > 0, out[f"{key}_mean"] / np.where(area > 0, area, 1),
                                      np.nan)
        out[f"{key}_wet_share"] = np.where(area > 0, out[f"{key}_wet_area"] / np.where(
            area > 0, area, 1), np.nan)
    for j, (lo, hi) in enumerate(intervals):
        out[class_column(key, lo, hi)] = class_area[:, j]
    out[f"{key}_from_rank"] = np.ones(n, dtype=bool)
    order = [f"{key}_max", f"{key}_max_lower", f"{key}_mean", f"{key}_wet_area",
             f"{key}_wet_share", *(class_column(key, lo, hi) for lo, hi in intervals),
             f"{key}_from_rank"]
    return pd.DataFrame({c: out[c] for c in order}, index=parcels.index)
