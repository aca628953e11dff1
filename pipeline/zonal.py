"""Zonal statistics of rasters over parcels: the raster kernel of the hazard stage.

:func:`zonal_stats` summarises one or more rasters (DEM, depth rasters) over
every parcel and returns a frame aligned to the parcels' index.

Pixel weighting (``mode``)
--------------------------
``"exact"``
    A pixel counts by the fraction of it inside the parcel. exactextract
    computes the coverage fractions; rasters sharing one grid go through one
    exactextract call, so the coverage of a parcel is computed once for all of
    them. Polygons only.
``"centre"``
    A pixel counts when its centre is inside the polygon (the rule of QGIS and
    rasterstats); a point takes the pixel containing it; a line takes the pixels
    GDAL's rasterizer draws for it.
``"all_touched"``
    Every pixel the geometry touches counts.

These two modes use GDAL's rasterizer (:mod:`rasterio.features`), so a parcel
gets exactly the pixels rasterstats gives it, including GDAL's habit of giving
a pixel whose centre lies on an edge two parcels share to both of them.

Rasters are always read by window, never whole. Parcels are visited in
Hilbert-curve order, in batches; the raster blocks a batch touches are decoded
first by a few multi-block reads (multi-threaded in GDAL), then each parcel's
window is read from GDAL's block cache.

Columns (``<key>`` is the raster's key in ``rasters``)
-------------------------------------------------------
``<key>_min``, ``_max``, ``_mean``, ``_sum``, ``_std``, ``_median``, ``_range``
    Over valid pixels; ``mean``/``sum``/``std``/``median`` weight pixels by
    coverage; ``min``/``max`` take every pixel the parcel touches at all.
``<key>_count``
    Valid pixels: sum of coverage fractions ("exact"), pixel count otherwise.
``<key>_nodata``
    The same for nodata pixels inside the raster (pixels beyond the raster's
    edge are not counted, unlike rasterstats' boundless reads).
``<key>_area``
    Valid area in m2 (``count`` x pixel area).
``<key>_p5``, ``<key>_p2_5`` ...
    Percentiles (0-100, ``.`` written ``_``): the coverage-weighted
    generalisation of numpy's default (linear, type 7) percentile; with equal
    weights it is :func:`numpy.percentile`. exactextract's ``quantile`` uses the
    same formula but merges equal values first, so it can differ where values
    repeat.
``<key>_area_<lo>_<hi>``
    Area (m2) with ``lo <= value < hi`` for each class of ``classes[key]``
    (see :func:`class_intervals`); e.g. ``tsunami_area_0.5_1``,
    ``tsunami_area_20_inf``.
``<key>_wet_area``, ``<key>_wet_share``
    With ``wet_threshold[key] = t``: area (m2) where value > t, and its share of
    the parcel's pixels inside the raster (nodata counted as dry).
``<key>_class_<value>``
    For a key in ``categorical``: count (as ``count``) of each distinct value.
``<key>_slope_mean``, ``<key>_slope_max``
    With ``slope=key`` (a DEM): Horn slope in degrees
    (:func:`pipeline.raster.slope_degrees`), computed window by window.

Parcels must be in the rasters' CRS; areas, classes and slope need a metric
(projected) CRS: warp geographic rasters first (:func:`pipeline.raster.warp_raster`).
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import math
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from pipeline.errors import ConfigError, CRSError, LayerError, RasterError, raise_all
from pipeline.raster import (
    RasterInfo,
    describe_crs,
    halo_window,
    open_raster_checked,
    read_window,
    slope_in_window,
)

if TYPE_CHECKING:
    import geopandas as gpd
    from rasterio.io import DatasetReader

logger = logging.getLogger(__name__)

Mode = Literal["exact", "centre", "all_touched"]
STATS = ("min", "max", "mean", "sum", "count", "nodata", "area", "median", "std", "range")
DEFAULT_STATS = ("min", "mean", "max", "count")
JAPAN_DEPTH_BREAKS = (0.3, 0.5, 1.0, 3.0, 5.0, 10.0, 20.0)
"""Depth class breaks (m) of the Japanese hazard-map legend."""

_POLYGONAL = {"Polygon", "MultiPolygon"}
_ANY = _POLYGONAL | {"Point", "MultiPoint", "LineString", "MultiLineString"}


def _fmt(x: float) -> str:
    return "inf" if math.isinf(x) and x > 0 else "-inf" if math.isinf(x) else f"{x:g}"


def class_intervals(breaks: Sequence[float]) -> list[tuple[float, float]]:
    """Class intervals ``[lo, hi)`` from increasing breaks.

    The first class starts at 0 (unless the first break is 0 or negative) and
    the last one is open-ended (unless the last break is ``inf``).

    Examples
    --------
    >>> class_intervals([0.3, 0.5, 1.0])
    [(0.0, 0.3), (0.3, 0.5), (0.5, 1.0), (1.0, inf)]
    >>> class_intervals([0, 3, math.inf])
    [(0.0, 3.0), (3.0, inf)]
    """
    b = [float(x) for x in breaks]
    if b and b[0] > 0:
        b.insert(0, 0.0)
    if b and not math.isinf(b[-1]):
        b.append(math.inf)
    return list(itertools.pairwise(b))


def class_column(key: str, lo: float, hi: float) -> str:
    """Name of the class-area column of interval ``[lo, hi)``.

    Examples
    --------
    >>> class_column("tsunami", 0.5, 1.0), class_column("tsunami", 20, math.inf)
    ('tsunami_area_0.5_1', 'tsunami_area_20_inf')
    """
    return f"{key}_area_{_fmt(lo)}_{_fmt(hi)}"


def percentile_column(key: str, q: float) -> str:
    """Name of the percentile column: ``dem_p5``, ``dem_p2_5``.

    Examples
    --------
    >>> percentile_column("dem", 5), percentile_column("dem", 2.5)
    ('dem_p5', 'dem_p2_5')
    """
    return f"{key}_p{q:g}".replace(".", "_")


@dataclass
class _Spec:
    """What to compute for one band (a raster key, or a DEM's slope)."""

    key: str
    base: str
    stats: tuple[str, ...]
    percentiles: tuple[float, ...] = ()
    intervals: list[tuple[float, float]] = field(default_factory=list)
    wet: float | None = None
    categorical: bool = False
    pixel_area: float = math.nan


@dataclass
class _Source:
    """An open raster whose last window read is kept, so that the bands sharing it
    (a DEM's values and its slope) read each window once."""

    info: RasterInfo
    ds: DatasetReader
    halo: bool = False
    _key: tuple[int, int, int, int] | None = None
    _last: tuple[np.ndarray, Any, Any] | None = None

    def read(self, col: int, row: int, width: int, height: int) -> tuple[np.ndarray, Any, Any]:
        from rasterio.windows import Window

        key = (col, row, width, height)
        if self._last is None or self._key != key:
            window = Window(col, row, width, height)
            area = halo_window(self.info, window) if self.halo else window
            self._key, self._last = key, (read_window(self.ds, self.info, area), window, area)
        return self._last


@dataclass
class _Band:
    """A band read window by window as float64 with NaN for nodata: values or slope."""

    source: _Source
    slope: bool = False

    @property
    def info(self) -> RasterInfo:
        return self.source.info

    def read(self, col: int, row: int, width: int, height: int) -> np.ndarray:
        z, window, area = self.source.read(col, row, width, height)
        if self.slope:
            return slope_in_window(z, self.info, window, area)
        if area is window:
            return z
        r, c = row - int(area.row_off), col - int(area.col_off)
        return z[r:r + height, c:c + width]


def zonal_stats(
    parcels: gpd.GeoDataFrame,
    rasters: Mapping[str, str | Path],
    *,
    stats: Sequence[str] | Mapping[str, Sequence[str]] = DEFAULT_STATS,
    mode: Mode = "exact",
    percentiles: Sequence[float] | Mapping[str, Sequence[float]] = (),
    classes: Mapping[str, Sequence[float]] | None = None,
    wet_threshold: Mapping[str, float] | None = None,
    categorical: Sequence[str] = (),
    slope: str | None = None,
    cache_mb: int = 256,
    batch_cells: int = 4_000_000,
    decode_threads: int | Literal["ALL_CPUS"] = "ALL_CPUS",
) -> pd.DataFrame:
    """Statistics of each raster over each parcel.

    Parameters
    ----------
    parcels : GeoDataFrame
        Parcels in the rasters' CRS: valid polygons (points and lines too in
        ``"centre"`` and ``"all_touched"`` modes). Empty geometries get count 0.
        Meant for parcels, not whole municipalities: the pixel table of one
        polygon (8 bytes per covered pixel and raster) is held in memory.
    rasters : mapping of str to path
        Raster key (used in column names) to GeoTIFF path; band 1 is read.
    stats : sequence of str, or mapping of key to sequence of str
        Any of ``min max mean sum count nodata area median std range``, for
        every raster, or per raster key (keys left out get none).
    mode : {"exact", "centre", "all_touched"}
        Pixel weighting, see the module docstring.
    percentiles : sequence of float, or mapping of key to sequence of float
        Percentiles (0-100), e.g. ``(5,)`` for ``dem_p5``; for every raster or
        per key (``{"dem": [5]}``).
    classes : mapping of key to breaks, optional
        Class areas per raster, e.g. ``{"tsunami": JAPAN_DEPTH_BREAKS}``; see
        :func:`class_intervals`. With a wet threshold for the same key, pixels
        at or below it are dry and fall in no class.
    wet_threshold : mapping of key to float, optional
        Depth above which a pixel is wet, e.g. ``{"tsunami": 0.01}``.
    categorical : sequence of str
        Keys of class rasters whose distinct values are counted.
    slope : str, optional
        Key of a DEM whose Horn slope (degrees) is summarised as
        ``<key>_slope_mean`` and ``<key>_slope_max``.
    cache_mb : int
        GDAL block cache during the call, MB (bounds memory).
    batch_cells : int
        Parcels are processed in batches whose bounding boxes hold about this
        many pixels, which bounds the memory of the per-pixel tables.
    decode_threads : int or "ALL_CPUS"
        Threads GDAL may use to decode raster blocks (``GDAL_NUM_THREADS``);
        give 1 when several workers share the machine.

    Returns
    -------
    DataFrame
        Aligned to ``parcels.index``; columns as in the module docstring.

    Raises
    ------
    ConfigError
        An unknown stat, mode, key or a bad percentile or class break.
    CRSError
        Parcels and a raster differ in CRS (or one has none); or an area, class
        or slope is asked of a raster in a geographic CRS.
    LayerError
        A geometry type the mode cannot use.

    Examples
    --------
    A 4 x 4 raster of 1 m pixels with values 0..15, and a parcel covering the
    whole top-left pixel (value 0) and 40 % of its right neighbour (value 1):

    >>> import tempfile, rasterio, geopandas as gpd
    >>> from affine import Affine
    >>> from shapely.geometry import box
    >>> tif = Path(tempfile.mkdtemp()) / "v.tif"
    >>> with rasterio.open(tif, "w", driver="GTiff", width=4, height=4, count=1,
    ...                    dtype="float32", crs="EPSG:6677", nodata=-9999,
    ...                    transform=Affine(1, 0, 0, 0, -1, 4)) as ds:
    ...     ds.write(np.arange(16, dtype="float32").reshape(1, 4, 4))
    >>> parcels = gpd.GeoDataFrame(geometry=[box(0, 3, 1.4, 4)], index=["A"], crs="EPSG:6677")
    >>> zonal_stats(parcels, {"v": tif}, stats=["count", "mean", "max"])
       v_count    v_mean  v_max
    A      1.4  0.285714    1.0
    >>> zonal_stats(parcels, {"v": tif}, stats=["count", "mean"], mode="centre")
       v_count  v_mean
    A      1.0     0.0
    """
    t0 = time.perf_counter()
    specs = _check_options(rasters, stats, mode, percentiles, classes, wet_threshold,
                           categorical, slope)
    infos = {key: open_raster_checked(path, layer=key) for key, path in rasters.items()}
    _check_crs(parcels, infos, specs, slope)
    geoms = _check_geometries(parcels, mode)
    for spec in specs.values():
        spec.pixel_area = infos[spec.base].pixel_area
    columns: dict[str, np.ndarray] = {}
    for group in _groups(infos, specs):
        columns.update(_run_group(geoms, group, infos, specs, mode,
                                  {"GDAL_CACHEMAX": int(cache_mb) * 2**20,
                                   "GDAL_NUM_THREADS": str(decode_threads)}, batch_cells))
    out = pd.DataFrame(_ordered(columns, specs), index=parcels.index)
    logger.info("zonal_stats: %d parcels x %d rasters (%s mode) in %.2f s", len(parcels),
                len(infos), mode, time.perf_counter() - t0)
    return out


def _per_key(value: Any, rasters: Mapping[str, Any], what: str,
             problems: list[str]) -> dict[str, tuple[Any, ...]]:
    """A per-raster option given for all rasters (sequence) or per key (mapping)."""
    if isinstance(value, Mapping):
        unknown = [k for k in value if k not in rasters]
        if unknown:
            problems.append(f"{what} names {unknown}, which are not raster keys "
                            f"({', '.join(rasters)})")
        return {k: tuple(value.get(k, ())) for k in rasters}
    if isinstance(value, str):
        value = [value]
    return {k: tuple(value) for k in rasters}


def _check_options(
    rasters: Mapping[str, Any], stats: Any, mode: str, percentiles: Any,
    classes: Mapping[str, Sequence[float]] | None, wet: Mapping[str, float] | None,
    categorical: Sequence[str], slope: str | None,
) -> dict[str, _Spec]:
    """Validate the options, gathering every problem; return a spec per band."""
    problems: list[str] = []
    if not rasters:
        problems.append("no raster given")
    if mode not in ("exact", "centre", "all_touched"):
        problems.append(f"mode = {mode!r}: use 'exact', 'centre' or 'all_touched'")
    stats_of = _per_key(stats, rasters, "stats", problems)
    pct_of = _per_key(percentiles, rasters, "percentiles", problems)
    bad = sorted({s for v in stats_of.values() for s in v if s not in STATS})
    if bad:
        problems.append(f"unknown stats {bad}: use any of {', '.join(STATS)}")
    bad_q = sorted({q for v in pct_of.values() for q in v if not 0 <= q <= 100})
    if bad_q:
        problems.append(f"percentiles {bad_q} outside 0-100")
    classes, wet = dict(classes or {}), dict(wet or {})
    for what, keys in (("classes", classes), ("wet_threshold", wet),
                       ("categorical", categorical), ("slope", [slope] if slope else [])):
        unknown = [k for k in keys if k not in rasters]
        if unknown:
            problems.append(f"{what} names {unknown}, which are not raster keys "
                            f"({', '.join(rasters)})")
    for key, breaks in classes.items():
        b = [float(x) for x in breaks]
        if not b or any(hi <= lo for lo, hi in itertools.pairwise(b)):
            problems.append(f"classes[{key!r}] = {list(breaks)}: give strictly increasing breaks")
    raise_all(problems, ConfigError, "zonal_stats")
    specs = {
        key: _Spec(key=key, base=key, stats=stats_of[key], percentiles=pct_of[key],
                   intervals=class_intervals(classes[key]) if key in classes else [],
                   wet=wet.get(key), categorical=key in categorical)
        for key in rasters
    }
    if slope:
        specs[f"{slope}_slope"] = _Spec(key=f"{slope}_slope", base=slope, stats=("mean", "max"))
    return specs


def _check_crs(parcels: gpd.GeoDataFrame, infos: Mapping[str, RasterInfo],
               specs: Mapping[str, _Spec], slope: str | None) -> None:
    from pyproj import CRS

    if parcels.crs is None:
        raise CRSError("parcels have no CRS; set the CRS they were drawn in "
                       "(GeoDataFrame.set_crs) and reproject them to the rasters' CRS")
    problems = []
    for key, info in infos.items():
        rcrs = CRS.from_user_input(info.crs.to_wkt())
        if not parcels.crs.equals(rcrs, ignore_axis_order=True):
            problems.append(f"{key} raster {info.path.name} is in {describe_crs(rcrs)} but the "
                            f"parcels are in {describe_crs(parcels.crs)}; reproject the parcels "
                            f"(to_crs) or warp the raster (warp_raster) so both match")
        spec = specs[key]
        needs_area = ({"area"} & set(spec.stats)) or spec.intervals or spec.wet is not None \
            or key == slope
        if needs_area and not info.is_metric:
            problems.append(f"{key} raster {info.path.name} is in {describe_crs(rcrs)} "
                            f"({info.units}); areas and slopes need a projected CRS in metres: "
                            "warp it first (warp_raster)")
    raise_all(problems, CRSError, "zonal_stats")


def _check_geometries(parcels: gpd.GeoDataFrame, mode: str) -> np.ndarray:
    """The parcels' geometries as an array; None where missing or empty."""
    geoms = np.asarray(parcels.geometry.values, dtype=object)
    types = parcels.geometry.geom_type
    present = ~(parcels.geometry.isna() | parcels.geometry.is_empty).to_numpy()
    allowed = _POLYGONAL if mode == "exact" else _ANY
    bad = sorted(set(types[present]) - allowed)
    if bad:
        hint = " (use mode='centre' for points and lines)" if mode == "exact" else ""
        raise LayerError(f"zonal_stats in {mode!r} mode: parcels hold {bad} geometries, which "
                         f"it cannot summarise; give {sorted(allowed)}{hint}")
    geoms = geoms.copy()
    geoms[~present] = None
    return geoms


def _groups(infos: Mapping[str, RasterInfo],
            specs: Mapping[str, _Spec]) -> list[list[tuple[str, str, bool]]]:
    """Bands grouped by pixel grid: ``(spec key, raster key, is_slope)``."""
    by_grid: dict[Any, list[tuple[str, str, bool]]] = {}
    for skey, spec in specs.items():
        by_grid.setdefault(infos[spec.base].grid, []).append((skey, spec.base, skey != spec.base))
    return list(by_grid.values())


def _run_group(geoms: np.ndarray, group: list[tuple[str, str, bool]],
               infos: Mapping[str, RasterInfo], specs: Mapping[str, _Spec], mode: str,
               gdal: Mapping[str, Any], batch_cells: int) -> dict[str, np.ndarray]:
    """Columns for the bands of one grid, over all parcels.

    Parcels go in Hilbert order, in batches. Before a batch is summarised, the
    raster blocks its parcels touch (and only those) are decoded into GDAL's
    block cache by a few multi-block reads, which GDAL decodes on all cores
    (``GDAL_NUM_THREADS``); the per-parcel reads then hit the cache.
    """
    import rasterio

    info = infos[group[0][1]]
    n = len(geoms)
    present = np.flatnonzero([g is not None for g in geoms])
    order = present[_hilbert_order(geoms[present])]
    results: dict[str, np.ndarray] = {}
    paths = list(dict.fromkeys(base for _, base, _ in group))
    with contextlib.ExitStack() as stack:
        stack.enter_context(rasterio.Env(**gdal))
        handles = {base: stack.enter_context(rasterio.open(infos[base].path)) for base in paths}
        sloped = {base for _, base, slope in group if slope}
        sources = {base: _Source(infos[base], handles[base], base in sloped) for base in paths}
        bands = [_Band(sources[base], slope) for _, base, slope in group]
        blocks = _BlockPlan(handles[paths[0]], info, n_datasets=len(handles),
                            cache_mb=gdal["GDAL_CACHEMAX"] // 2**20)
        for batch in _batches(geoms[order], info, batch_cells, blocks):
            idx = order[batch]
            for ds in handles.values():
                blocks.prefetch(ds, geoms[idx])
            if mode == "exact":
                fid, w, vals = _exact_pixels(geoms[idx], bands)
            else:
                fid, w, vals = _mask_pixels(geoms[idx], bands, info, mode == "all_touched")
            for (skey, _, _), v in zip(group, vals):
                for col, arr in _reduce(fid, w, v, len(idx), specs[skey]).items():
                    results.setdefault(col, _empty_column(col, n))[idx] = arr
    for skey, _, _ in group:  # parcels with no pixels at all still get their columns
        for col in _reduce(np.zeros(0, np.int64), np.zeros(0), np.zeros(0), 0, specs[skey]):
            results.setdefault(col, _empty_column(col, n))
    return results


def _empty_column(col: str, n: int) -> np.ndarray:
    zero = col.endswith(("_count", "_nodata", "_area", "_sum", "_wet_area")) or "_area_" in col \
        or "_class_" in col
    return np.zeros(n) if zero else np.full(n, np.nan)


def _hilbert_order(geoms: np.ndarray) -> np.ndarray:
    """Order visiting the geometries along a Hilbert curve (raster block locality)."""
    import geopandas as gpd

    if len(geoms) < 2:
        return np.arange(len(geoms))
    return np.argsort(gpd.GeoSeries(geoms).hilbert_distance().to_numpy(), kind="stable")


def _pixel_ranges(geoms: np.ndarray, info: RasterInfo,
                  margin: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Column and row ranges ``[c0, c1) x [r0, r1)`` of the geometries' bounding boxes,
    grown by ``margin`` pixels and clipped to the raster."""
    import shapely

    t = info.transform
    b = shapely.bounds(geoms)
    c0 = np.clip(np.floor((b[:, 0] - t.c) / t.a) - margin, 0, info.width).astype(np.int64)
    c1 = np.clip(np.floor((b[:, 2] - t.c) / t.a) + 1 + margin, 0, info.width).astype(np.int64)
    r0 = np.clip(np.floor((b[:, 3] - t.f) / t.e) - margin, 0, info.height).astype(np.int64)
    r1 = np.clip(np.floor((b[:, 1] - t.f) / t.e) + 1 + margin, 0, info.height).astype(np.int64)
    return c0, c1, r0, r1


@dataclass
class _BlockPlan:
    """The raster's block layout, to decode the blocks a batch needs in a few reads."""

    ds: Any
    info: RasterInfo
    n_datasets: int
    cache_mb: int

    def __post_init__(self) -> None:
        self.bh, self.bw = self.ds.block_shapes[0]
        self.ncb = -(-self.info.width // self.bw)
        itemsize = np.dtype(self.info.dtype).itemsize
        budget = self.cache_mb * 2**20 // (2 * max(self.n_datasets, 1))
        self.max_blocks = max(1, budget // (self.bh * self.bw * itemsize))
        self.enabled = self.bh * self.bw <= 4_000_000  # not one-strip rasters

    def needed(self, geoms: np.ndarray) -> np.ndarray:
        """Sorted ids (row * n_block_cols + col) of the blocks the geometries touch."""
        c0, c1, r0, r1 = _pixel_ranges(geoms, self.info, margin=2)
        ok = (c1 > c0) & (r1 > r0)
        cb0, cb1 = c0[ok] // self.bw, (c1[ok] - 1) // self.bw
        rb0, rb1 = r0[ok] // self.bh, (r1[ok] - 1) // self.bh
        width = cb1 - cb0 + 1
        count = width * (rb1 - rb0 + 1)
        owner = np.repeat(np.arange(len(count)), count)
        local = np.arange(int(count.sum())) - np.repeat(np.cumsum(count) - count, count)
        rows = rb0[owner] + local // width[owner]
        cols = cb0[owner] + local % width[owner]
        return np.unique(rows * self.ncb + cols)

    def prefetch(self, ds: Any, geoms: np.ndarray) -> None:
        """Decode the needed blocks: one read per run of adjacent blocks in a block row."""
        from rasterio.windows import Window

        if not self.enabled or len(geoms) == 0:
            return
        ids = self.needed(geoms)
        rows, cols = ids // self.ncb, ids % self.ncb
        breaks = np.flatnonzero((np.diff(ids) != 1) | (np.diff(rows) != 0)) + 1
        for run in np.split(np.arange(len(ids)), breaks):
            if len(run) == 0:
                continue
            row, first, last = int(rows[run[0]]), int(cols[run[0]]), int(cols[run[-1]])
            c0, r0 = first * self.bw, row * self.bh
            w = min((last + 1) * self.bw, self.info.width) - c0
            h = min(self.bh, self.info.height - r0)
            ds.read(1, window=Window(c0, r0, w, h))


def _batches(geoms: np.ndarray, info: RasterInfo, batch_cells: int,
             blocks: _BlockPlan) -> Iterator[np.ndarray]:
    """Slices of ``geoms`` whose bounding boxes hold about ``batch_cells`` pixels and
    whose blocks fit in half the block cache."""
    import shapely

    b = shapely.bounds(geoms)
    cells = ((b[:, 2] - b[:, 0]) / info.res[0] + 2) * ((b[:, 3] - b[:, 1]) / info.res[1] + 2)
    cells = np.nan_to_num(cells, nan=1.0)
    cum = np.cumsum(cells)
    start = 0
    while start < len(geoms):
        stop = int(np.searchsorted(cum, cum[start] - cells[start] + batch_cells, side="right"))
        stop = min(max(stop, start + 1), len(geoms))
        while stop - start > 1 and blocks.enabled and \
                len(blocks.needed(geoms[start:stop])) > blocks.max_blocks:
            stop = start + (stop - start) // 2
        yield np.arange(start, stop)
        start = stop


def _exact_pixels(geoms: np.ndarray,
                  bands: list[_Band]) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """Coverage fractions and values of every pixel each polygon covers (exactextract)."""
    import exactextract
    from exactextract.operation import Operation

    sources = [_ee_source(b, f"b{j}") for j, b in enumerate(bands)]
    nan = {"default_value": "nan"}  # keep nodata cells, so all arrays line up
    ops = [Operation("coverage", "w", sources[0], None, nan)]
    ops += [Operation("values", f"v{j}", s, None, nan) for j, s in enumerate(sources)]
    feats = exactextract.exact_extract(sources, _wkb_features(geoms), ops, output="geojson")
    props = [f["properties"] for f in feats]
    lengths = np.array([len(p["w"]) for p in props], dtype=np.int64)
    for j in range(len(bands)):
        if any(len(p[f"v{j}"]) != len(p["w"]) for p in props):
            raise RasterError("exactextract returned values and coverage of different "
                              "lengths; this is a bug, please report it with the inputs")
    fid = np.repeat(np.arange(len(geoms)), lengths)

    def cat(name: str) -> np.ndarray:
        arrs = [np.asarray(p[name], dtype=np.float64) for p in props]
        return np.concatenate(arrs) if arrs else np.zeros(0)

    return fid, cat("w"), [cat(f"v{j}") for j in range(len(bands))]


def _ee_source(band: _Band, name: str) -> Any:
    """An exactextract RasterSource reading ``band`` window by window."""
    from exactextract.raster import RasterSource

    info = band.info

    class _BandSource(RasterSource):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.set_name(name)

        def res(self) -> tuple[float, float]:
            return info.res

        def extent(self) -> tuple[float, float, float, float]:
            return info.bounds

        def srs_wkt(self) -> None:
            return None  # CRS already checked by zonal_stats

        def nodata_value(self) -> None:
            return None  # nodata arrives as NaN

        def read_window(self, x0: int, y0: int, nx: int, ny: int) -> np.ndarray:
            return band.read(x0, y0, nx, ny)

    return _BandSource()


def _wkb_features(geoms: np.ndarray) -> Any:
    """An exactextract FeatureSource yielding the geometries as WKB."""
    import shapely
    from exactextract._exactextract import Feature
    from exactextract.feature import FeatureSource

    wkbs = shapely.to_wkb(geoms)

    class _Feature(Feature):  # type: ignore[misc]
        def __init__(self, wkb: bytes) -> None:
            Feature.__init__(self)
            self._wkb = wkb

        def geometry(self) -> bytes:
            return self._wkb

        def set_geometry_format(self) -> str:
            return "wkb"

        def fields(self) -> list[str]:
            return []

        def get(self, name: str) -> Any:
            raise KeyError(name)

        def set(self, name: str, value: Any) -> None:
            pass

    class _WkbSource(FeatureSource):  # type: ignore[misc]
        def count(self) -> int:
            return len(wkbs)

        def __iter__(self) -> Iterator[Any]:
            for w in wkbs:
                yield _Feature(bytes(w))

        def srs_wkt(self) -> None:
            return None

    return _WkbSource()


def _mask_pixels(geoms: np.ndarray, bands: list[_Band], info: RasterInfo,
                 all_touched: bool) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """Values of the pixels each geometry selects by GDAL's rasterizer (weight 1).

    Polygons whose interiors overlap no other polygon of the batch are burnt
    together, many per :func:`rasterio.features.rasterize` call, as labels of
    one window. A pixel centre lying exactly on an edge two neighbours share
    can belong to both when each is burnt alone (GDAL includes such centres on
    some edges), which labels cannot say: a second burn counts the polygons
    claiming each pixel, and a window where any pixel is claimed twice is
    burnt again one polygon at a time. Overlapping polygons, points, lines and
    every geometry in ``all_touched`` mode are burnt one by one. Either way a
    parcel gets the pixels it gets when burnt alone, as in rasterstats.
    """
    import shapely

    c0, c1, r0, r1 = _pixel_ranges(geoms, info, margin=1)
    inside = (c1 > c0) & (r1 > r0)
    together = inside & ~all_touched & np.isin(shapely.get_type_id(geoms), (3, 6))
    if together.sum() > 1:
        together[_overlapping(geoms, together)] = False
    else:
        together[:] = False
    tables = [_burn_one_by_one(geoms, np.flatnonzero(inside & ~together), bands, info,
                               (c0, c1, r0, r1), all_touched),
              _burn_together(geoms, np.flatnonzero(together), bands, info, (c0, c1, r0, r1))]
    fid = np.concatenate([t[0] for t in tables])
    vals = [np.concatenate([t[1][j] for t in tables]) for j in range(len(bands))]
    return fid, np.ones(len(fid)), vals


def _overlapping(geoms: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """Indices (into ``geoms``) of candidates whose interior meets another's."""
    import shapely

    idx = np.flatnonzero(candidates)
    tree = shapely.STRtree(geoms[idx])
    a, b = tree.query(geoms[idx], predicate="intersects")
    pairs = a != b
    a, b = a[pairs], b[pairs]
    clash = shapely.relate_pattern(geoms[idx][a], geoms[idx][b], "T********")
    return idx[np.unique(a[clash])]


def _window_transform(info: RasterInfo, col: int, row: int) -> Any:
    from affine import Affine

    t = info.transform
    return Affine(t.a, 0.0, t.c + col * t.a, 0.0, t.e, t.f + row * t.e)


def _burn_one_by_one(geoms: np.ndarray, which: np.ndarray, bands: list[_Band], info: RasterInfo,
                     ranges: tuple[np.ndarray, ...],
                     all_touched: bool) -> tuple[np.ndarray, list[np.ndarray]]:
    from rasterio.features import geometry_mask

    c0, c1, r0, r1 = ranges
    fids: list[np.ndarray] = [np.zeros(0, np.int64)]
    parts: list[list[np.ndarray]] = [[np.zeros(0)] for _ in bands]
    for i in which:
        w, h = int(c1[i] - c0[i]), int(r1[i] - r0[i])
        mask = geometry_mask([geoms[i]], out_shape=(h, w),
                             transform=_window_transform(info, int(c0[i]), int(r0[i])),
                             all_touched=all_touched, invert=True)
        fids.append(np.full(int(mask.sum()), i, dtype=np.int64))
        for part, band in zip(parts, bands):
            part.append(band.read(int(c0[i]), int(r0[i]), w, h)[mask])
    return np.concatenate(fids), [np.concatenate(p) for p in parts]


_CLAIM = 2**16


def _burn_together(geoms: np.ndarray, which: np.ndarray, bands: list[_Band], info: RasterInfo,
                   ranges: tuple[np.ndarray, ...],
                   max_cells: int = 262_144) -> tuple[np.ndarray, list[np.ndarray]]:
    """Burn runs of consecutive (Hilbert-ordered) polygons as labels of one window."""
    import json

    import shapely
    from rasterio.enums import MergeAlg
    from rasterio.features import rasterize

    c0, c1, r0, r1 = ranges
    fids: list[np.ndarray] = [np.zeros(0, np.int64)]
    parts: list[list[np.ndarray]] = [[np.zeros(0)] for _ in bands]
    shapes = [json.loads(s) for s in shapely.to_geojson(geoms[which])]
    k = 0
    while k < len(which):
        i = which[k]
        wc0, wc1, wr0, wr1 = c0[i], c1[i], r0[i], r1[i]
        m = k + 1
        while m < len(which) and m - k < _CLAIM - 1:
            j = which[m]
            n0, n1 = min(wc0, c0[j]), max(wc1, c1[j])
            m0, m1 = min(wr0, r0[j]), max(wr1, r1[j])
            if (n1 - n0) * (m1 - m0) > max_cells:
                break
            wc0, wc1, wr0, wr1 = n0, n1, m0, m1
            m += 1
        w, h = int(wc1 - wc0), int(wr1 - wr0)
        burn = {"out_shape": (h, w), "transform": _window_transform(info, int(wc0), int(wr0)),
                "fill": 0}
        # each polygon adds 2**16 + its label: a pixel claimed twice holds >= 2**17
        burnt = rasterize([(shapes[q], _CLAIM + q - k + 1) for q in range(k, m)], dtype="int32",
                          merge_alg=MergeAlg.add, **burn).ravel()
        if burnt.max(initial=0) >= 2 * _CLAIM:  # a shared edge through pixel centres
            fid, vals = _burn_one_by_one(geoms, which[k:m], bands, info, ranges, False)
            fids.append(fid)
            for part, v in zip(parts, vals):
                part.append(v)
            k = m
            continue
        labels = burnt & (_CLAIM - 1)
        hit = np.flatnonzero(labels)
        fids.append(which[k:m][labels[hit] - 1])
        for part, band in zip(parts, bands):
            part.append(band.read(int(wc0), int(wr0), w, h).ravel()[hit])
        k = m
    return np.concatenate(fids), [np.concatenate(p) for p in parts]


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den, NaN where den is 0."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def _reduce(fid: np.ndarray, w: np.ndarray, v: np.ndarray, n: int,
            spec: _Spec) -> dict[str, np.ndarray]:
    """Per-parcel statistics of one band from its pixel table, all parcels at once.

    ``fid`` is each pixel's parcel (0..n-1), ``w`` its weight (coverage), ``v``
    its value (NaN for nodata).
    """
    key = spec.key
    valid = ~np.isnan(v)
    wv = np.where(valid, w, 0.0)
    vz = np.where(valid, v, 0.0)
    count = np.bincount(fid, wv, n)
    total_sum = np.bincount(fid, wv * vz, n)
    mean = _ratio(total_sum, count)
    lo, hi = np.full(n, np.inf), np.full(n, -np.inf)
    if {"min", "max", "range"} & set(spec.stats):
        np.minimum.at(lo, fid[valid], v[valid])
        np.maximum.at(hi, fid[valid], v[valid])
        lo[count <= 0], hi[count <= 0] = np.nan, np.nan
    simple = {
        "count": lambda: count,
        "nodata": lambda: np.bincount(fid, np.where(valid, 0.0, w), n),
        "area": lambda: count * spec.pixel_area,
        "mean": lambda: mean,
        "sum": lambda: total_sum,
        "min": lambda: lo,
        "max": lambda: hi,
        "range": lambda: hi - lo,
        "std": lambda: np.sqrt(_ratio(
            np.bincount(fid, wv * np.where(valid, v - mean[fid], 0.0) ** 2, n), count)),
    }
    out = {f"{key}_{stat}": simple[stat]() for stat in spec.stats if stat in simple}
    qs = [(percentile_column(key, q), q / 100.0) for q in spec.percentiles]
    if "median" in spec.stats:
        qs.append((f"{key}_median", 0.5))
    for (name, _), vals in zip(qs, _weighted_quantiles(fid[valid], v[valid], w[valid], n,
                                                        [q for _, q in qs])):
        out[name] = vals
    out.update(_reduce_areas(fid, w, v, valid, n, spec))
    return out


def _reduce_areas(fid: np.ndarray, w: np.ndarray, v: np.ndarray, valid: np.ndarray, n: int,
                  spec: _Spec) -> dict[str, np.ndarray]:
    """Class areas, wet area and share, and categorical counts of one band."""
    key = spec.key
    out: dict[str, np.ndarray] = {}
    wet_mask = valid & (v > spec.wet) if spec.wet is not None else valid
    if spec.intervals:
        k = len(spec.intervals)
        breaks = np.array([lo for lo, _ in spec.intervals] + [spec.intervals[-1][1]])
        cls = np.searchsorted(breaks, v, side="right") - 1
        sel = wet_mask & (cls >= 0) & (cls < k)
        areas = np.bincount(fid[sel] * k + cls[sel], w[sel], n * k).reshape(n, k)
        for j, (lo, hi) in enumerate(spec.intervals):
            out[class_column(key, lo, hi)] = areas[:, j] * spec.pixel_area
    if spec.wet is not None:
        wet = np.bincount(fid, np.where(wet_mask, w, 0.0), n)
        out[f"{key}_wet_area"] = wet * spec.pixel_area
        out[f"{key}_wet_share"] = _ratio(wet, np.bincount(fid, w, n))
    if spec.categorical and valid.any():
        uniq, inv = np.unique(v[valid], return_inverse=True)
        k = len(uniq)
        counts = np.bincount(fid[valid] * k + inv, w[valid], n * k).reshape(n, k)
        for j, value in enumerate(uniq):
            out[f"{key}_class_{value:g}"] = counts[:, j]
    return out


def _weighted_quantiles(fid: np.ndarray, v: np.ndarray, w: np.ndarray, n: int,
                        qs: Sequence[float]) -> list[np.ndarray]:
    """Coverage-weighted type-7 quantiles of ``v`` per parcel, all parcels at once.

    With the parcel's ``m`` values sorted, weights ``w_k`` and ``C_k`` the sum of
    the weights before value ``k``, value ``k`` sits at position
    ``s_k = k w_k + (m - 1) C_k`` of ``(m - 1) W``; quantile ``q`` interpolates
    linearly between the values around position ``q (m - 1) W``. Equal weights
    give numpy's default percentile.
    """
    if not qs:
        return []
    out = [np.full(n, np.nan) for _ in qs]
    if len(v) == 0:
        return out
    order = np.lexsort((v, fid))
    f, x, ww = fid[order], v[order], w[order]
    m = np.bincount(f, minlength=n)
    start = np.concatenate([[0], np.cumsum(m)[:-1]])
    k = np.arange(len(f)) - start[f]
    # weight before each pixel within its own parcel: a per-parcel running sum, so a
    # parcel's result does not depend on which parcels share its batch (Dask partitions)
    before = pd.Series(ww).groupby(f, sort=False).cumsum().to_numpy() - ww
    total = np.bincount(f, ww, n)
    s = k * ww + (m[f] - 1) * before
    sn = total[f] * (m[f] - 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        pos = np.where(sn > 0, s / np.where(sn > 0, sn, 1.0), 0.0)
    g = 2.0 * f + pos  # increasing: parcels in order, positions in [0, 1] within each
    have = np.flatnonzero(m > 0)
    end = start[have] + m[have]
    for res, q in zip(out, qs):
        right = np.searchsorted(g, 2.0 * have + q, side="right")
        left = right - 1
        at_end = right >= end
        r = np.where(at_end, left, right)
        span = pos[r] - pos[left]
        with np.errstate(invalid="ignore", divide="ignore"):
            frac = np.where(at_end | (span <= 0), 0.0, (q - pos[left]) / np.where(span > 0, span, 1))
        res[have] = x[left] + frac * (x[r] - x[left])
    return out


def _ordered(columns: Mapping[str, np.ndarray], specs: Mapping[str, _Spec]) -> dict[str, Any]:
    """Columns in a stable order: per band, stats, percentiles, classes, wet, categories."""
    out: dict[str, Any] = {}
    for spec in specs.values():
        key = spec.key
        names = [f"{key}_{s}" for s in spec.stats]
        names += [percentile_column(key, q) for q in spec.percentiles]
        names += [class_column(key, lo, hi) for lo, hi in spec.intervals]
        names += [f"{key}_wet_area", f"{key}_wet_share"]
        names += sorted((c for c in columns if c.startswith(f"{key}_class_")),
                        key=lambda c: float(c.rsplit("_", 1)[1]))
        for name in names:
            if name in columns and name not in out:
                out[name] = columns[name]
    return out
