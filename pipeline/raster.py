"""Raster inputs: checked opening, reprojection, sampling, slope and plausibility.

Every function reads rasters by window, so memory stays bounded whatever the
raster's size. Nodata cells come back as NaN in float64 arrays.

- :func:`open_raster_checked` opens a raster and returns its :class:`RasterInfo`,
  or raises an error that names the file, the layer and the fix.
- :func:`warp_raster` reprojects a raster into a metric CRS, block by block,
  into a tiled deflate GeoTIFF written atomically.
- :func:`sample_raster` samples a raster at points (nearest or bilinear).
- :func:`slope_degrees` is the Horn (1981) slope of a DEM array, as
  ``gdaldem slope`` computes it.
- :func:`check_depth_raster` lists reasons to doubt a depth raster (centimetres,
  negative depths, undeclared nodata).
"""

from __future__ import annotations

import logging
import math
import os
import uuid
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from pipeline.errors import CRSError, InputNotFoundError, OutputError, RasterError

if TYPE_CHECKING:
    from affine import Affine
    from rasterio.crs import CRS as RioCRS
    from rasterio.io import DatasetReader
    from rasterio.windows import Window

logger = logging.getLogger(__name__)

_MAX_CHUNK_CELLS = 4_000_000
"""Cells read or written at a time by the block loops (16 MB of float32)."""


@dataclass(frozen=True)
class RasterInfo:
    """What :func:`open_raster_checked` learnt about a raster (band 1).

    Attributes
    ----------
    path : Path
    layer : str
        Name of the layer in the study (used in messages), e.g. ``"dem"``.
    crs : rasterio.crs.CRS
    transform : affine.Affine
        North-up (no rotation).
    width, height : int
        Columns and rows.
    res : tuple of float
        Pixel width and height, in CRS units (both positive).
    nodata : float or None
    dtype : str
    bounds : tuple of float
        ``(left, bottom, right, top)``.
    units : str
        Linear unit of the CRS axes (``"metre"``, ``"degree"``, ...).
    unit_factor : float
        Metres per CRS unit for projected CRSs, NaN for geographic ones.
    scale, offset : float
        Band scale and offset (value = raw * scale + offset).
    """

    path: Path
    layer: str
    crs: RioCRS
    transform: Affine
    width: int
    height: int
    res: tuple[float, float]
    nodata: float | None
    dtype: str
    bounds: tuple[float, float, float, float]
    units: str
    unit_factor: float = math.nan
    scale: float = 1.0
    offset: float = 0.0

    @property
    def is_metric(self) -> bool:
        """True when the CRS is projected with linear units (areas can be measured)."""
        return bool(self.crs.is_projected) and not math.isnan(self.unit_factor)

    @property
    def pixel_area(self) -> float:
        """Area of one pixel in m2 (NaN in a geographic CRS)."""
        return self.res[0] * self.res[1] * self.unit_factor**2

    @property
    def grid(self) -> tuple[str, tuple[float, ...], int, int]:
        """Key identifying the pixel grid: rasters with equal keys share pixels."""
        return (self.crs.to_wkt(), tuple(round(v, 9) for v in self.transform[:6]),
                self.width, self.height)


def describe_crs(crs: Any) -> str:
    """Short name of a CRS for messages: ``EPSG:6677 (JGD2011 / Japan Plane ...)``.

    Examples
    --------
    >>> describe_crs("EPSG:4326")
    'EPSG:4326 (WGS 84)'
    """
    from pyproj import CRS

    c = CRS.from_user_input(crs.to_wkt() if hasattr(crs, "to_wkt") else crs)
    epsg = c.to_epsg()
    named = c.name not in ("unnamed", "unknown", "")
    if epsg:
        return f"EPSG:{epsg} ({c.name})" if named else f"EPSG:{epsg}"
    if named:
        return c.name
    method = c.coordinate_operation.method_name if c.coordinate_operation else "geographic"
    return f"an unnamed {method} CRS on {c.ellipsoid.name if c.ellipsoid else 'an unknown ellipsoid'}"


def _crs_units(crs: RioCRS) -> tuple[str, float]:
    """Linear unit name and metres per unit (NaN when angular) of a rasterio CRS."""
    from pyproj import CRS

    pcrs = CRS.from_user_input(crs.to_wkt())
    if not pcrs.axis_info:
        return "unknown", math.nan
    axis = pcrs.axis_info[0]
    if pcrs.is_geographic or axis.unit_name in ("degree", "radian", "grad"):
        return axis.unit_name, math.nan
    return axis.unit_name, float(axis.unit_conversion_factor)


def open_raster_checked(path: str | os.PathLike[str], *, layer: str) -> RasterInfo:
    """Open a single-band raster and check it can be used, or raise a helpful error.

    Besides opening the file, the first and the last block are read, which
    catches most truncated downloads.

    Parameters
    ----------
    path : str or Path
    layer : str
        Name of the layer in the study, used in messages.

    Returns
    -------
    RasterInfo

    Raises
    ------
    InputNotFoundError
        The file does not exist.
    RasterError
        GDAL cannot read it (not a raster, truncated), it has no band, or it is
        rotated.
    CRSError
        It has no CRS.

    Examples
    --------
    >>> import tempfile, numpy as np, rasterio
    >>> from affine import Affine
    >>> tif = Path(tempfile.mkdtemp()) / "d.tif"
    >>> with rasterio.open(tif, "w", driver="GTiff", width=4, height=3, count=1,
    ...                    dtype="float32", crs="EPSG:6677", nodata=-9999,
    ...                    transform=Affine(10, 0, 0, 0, -10, 30)) as ds:
    ...     ds.write(np.zeros((1, 3, 4), "float32"))
    >>> info = open_raster_checked(tif, layer="dem")
    >>> info.width, info.height, info.res, info.units, info.pixel_area
    (4, 3, (10.0, 10.0), 'metre', 100.0)
    >>> open_raster_checked(tif.with_name("nope.tif"), layer="dem")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    pipeline.errors.InputNotFoundError: dem raster ...nope.tif: file not found; check the path in the study file
    """
    import rasterio
    from rasterio.errors import NotGeoreferencedWarning, RasterioIOError
    from rasterio.windows import Window

    path = Path(path)
    where = f"{layer} raster {path}"
    if not path.exists():
        raise InputNotFoundError(f"{where}: file not found; check the path in the study file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.open(path) as ds:
                if ds.count < 1:
                    raise RasterError(f"{where}: has no raster band; give a GeoTIFF with one band")
                for col, row in ((0, 0), (ds.width - 1, ds.height - 1)):
                    ds.read(1, window=Window(col, row, 1, 1))
                info = _info_from_dataset(ds, path, layer)
    except RasterioIOError as err:
        raise RasterError(
            f"{where}: GDAL cannot read it ({err}); the file may be truncated or not a "
            "raster: download or export it again as GeoTIFF"
        ) from None
    return info


def _info_from_dataset(ds: DatasetReader, path: Path, layer: str) -> RasterInfo:
    where = f"{layer} raster {path}"
    if ds.crs is None:
        raise CRSError(
            f"{where}: has no CRS; assign the CRS it was made in, e.g. "
            f"`gdal_edit.py -a_srs EPSG:6677 {path.name}`, or export it again with one"
        )
    t = ds.transform
    if t.b != 0 or t.d != 0:
        raise RasterError(f"{where}: is rotated (transform {tuple(t)[:6]}); warp it to a "
                          "north-up grid first (gdalwarp)")
    units, factor = _crs_units(ds.crs)
    return RasterInfo(
        path=path, layer=layer, crs=ds.crs, transform=t, width=ds.width, height=ds.height,
        res=(abs(t.a), abs(t.e)), nodata=ds.nodata, dtype=ds.dtypes[0],
        bounds=tuple(ds.bounds), units=units, unit_factor=factor,
        scale=float(ds.scales[0]), offset=float(ds.offsets[0]),
    )


def read_window(ds: DatasetReader, info: RasterInfo, window: Window) -> np.ndarray:
    """Band 1 inside ``window`` as float64, nodata (and NaN) as NaN, scale applied.

    Examples
    --------
    >>> import tempfile, rasterio
    >>> from affine import Affine
    >>> from rasterio.windows import Window
    >>> tif = Path(tempfile.mkdtemp()) / "r.tif"
    >>> with rasterio.open(tif, "w", driver="GTiff", width=3, height=1, count=1, dtype="int16",
    ...                    crs="EPSG:6677", nodata=-1, transform=Affine(1, 0, 0, 0, -1, 1)) as ds:
    ...     ds.write(np.array([[[5, -1, 7]]], "int16"))
    >>> info = open_raster_checked(tif, layer="r")
    >>> with rasterio.open(tif) as ds:
    ...     read_window(ds, info, Window(0, 0, 3, 1))
    array([[ 5., nan,  7.]])
    """
    raw = ds.read(1, window=window)
    out = raw.astype(np.float64)
    if info.nodata is not None and not np.isnan(info.nodata):
        out[raw == np.asarray(info.nodata).astype(raw.dtype)] = np.nan
    if info.scale != 1.0 or info.offset != 0.0:
        out = out * info.scale + info.offset
    return out


def slope_degrees(dem: np.ndarray, transform: Affine, *, nodata: float | None = None) -> np.ndarray:
    """Slope in degrees of a DEM array, by Horn's (1981) 3x3 method.

    With the neighbours ``a b c / d e f / g h i`` of a cell (rows north to south)
    and pixel sizes ``dx``, ``dy`` from ``transform``::

        dz/dx = ((c + 2f + i) - (a + 2d + g)) / (8 dx)
        dz/dy = ((g + 2h + i) - (a + 2b + c)) / (8 dy)
        slope = atan(sqrt(dz/dx^2 + dz/dy^2))

    the weighting ``gdaldem slope`` uses. Beyond the array's edge the surface is
    extrapolated linearly (``2 z[0] - z[1]``), so a plane keeps its slope up to
    the edge; a cell that is nodata or has a nodata neighbour gets NaN.
    Heights and the transform must be in the same unit (metres): warp a
    geographic DEM to a metric CRS first.

    Parameters
    ----------
    dem : ndarray
        2-D elevations; NaN or ``nodata`` cells are missing.
    transform : affine.Affine
        The array's transform (pixel size is taken from it).
    nodata : float, optional

    Returns
    -------
    ndarray
        float64 slope in degrees, same shape as ``dem``.

    Examples
    --------
    A plane rising 1 m per 1 m pixel eastwards is 45 degrees everywhere:

    >>> from affine import Affine
    >>> z = np.tile(np.arange(4.0), (3, 1))
    >>> slope_degrees(z, Affine(1, 0, 0, 0, -1, 3)).round(6)
    array([[45., 45., 45., 45.],
           [45., 45., 45., 45.],
           [45., 45., 45., 45.]])
    """
    z = np.array(dem, dtype=np.float64)
    if z.ndim != 2:
        raise RasterError(f"slope_degrees needs a 2-D array, got shape {z.shape}")
    if nodata is not None and not np.isnan(nodata):
        z[z == nodata] = np.nan
    return _horn(_extend(z, 1, 1, 1, 1), abs(transform.a), abs(transform.e))


def _extend(z: np.ndarray, top: int, bottom: int, left: int, right: int) -> np.ndarray:
    """Add a missing one-cell halo on the given sides by linear extrapolation."""
    def edge(first: np.ndarray, second: np.ndarray) -> np.ndarray:
        return 2 * first - second if second.size else first

    if top:
        z = np.vstack([edge(z[:1], z[1:2]), z])
    if bottom:
        z = np.vstack([z, edge(z[-1:], z[-2:-1] if len(z) > 1 else z[:0])])
    if left:
        z = np.hstack([edge(z[:, :1], z[:, 1:2]), z])
    if right:
        z = np.hstack([z, edge(z[:, -1:], z[:, -2:-1] if z.shape[1] > 1 else z[:, :0])])
    return z


def _horn(p: np.ndarray, dx: float, dy: float) -> np.ndarray:
    """Horn slope (degrees) of the inner cells of ``p``, which carries a one-cell halo."""
    a, b, c = p[:-2, :-2], p[:-2, 1:-1], p[:-2, 2:]
    d, e, f = p[1:-1, :-2], p[1:-1, 1:-1], p[1:-1, 2:]
    g, h, i = p[2:, :-2], p[2:, 1:-1], p[2:, 2:]
    dzdx = ((c + 2 * f + i) - (a + 2 * d + g)) / (8 * dx)
    dzdy = ((g + 2 * h + i) - (a + 2 * b + c)) / (8 * dy)
    slope = np.degrees(np.arctan(np.hypot(dzdx, dzdy)))
    slope[np.isnan(e)] = np.nan
    return slope


def halo_window(info: RasterInfo, window: Window) -> Window:
    """``window`` grown by one cell on each side, clipped to the raster."""
    from rasterio.windows import Window

    c0, r0 = int(window.col_off), int(window.row_off)
    ec0, er0 = max(c0 - 1, 0), max(r0 - 1, 0)
    ec1 = min(c0 + int(window.width) + 1, info.width)
    er1 = min(r0 + int(window.height) + 1, info.height)
    return Window(ec0, er0, ec1 - ec0, er1 - er0)


def slope_in_window(z: np.ndarray, info: RasterInfo, window: Window, halo: Window) -> np.ndarray:
    """Horn slope of the cells of ``window`` from the DEM ``z`` read over ``halo``
    (see :func:`halo_window`); equal to those cells of :func:`slope_degrees` of the
    whole raster."""
    c0, r0 = int(window.col_off), int(window.row_off)
    hc0, hr0 = int(halo.col_off), int(halo.row_off)
    no_left, no_top = c0 == hc0, r0 == hr0
    no_right = c0 + int(window.width) == hc0 + int(halo.width)
    no_bottom = r0 + int(window.height) == hr0 + int(halo.height)
    return _horn(_extend(z, no_top, no_bottom, no_left, no_right), *info.res)


def read_slope_window(ds: DatasetReader, info: RasterInfo, window: Window) -> np.ndarray:
    """Horn slope (degrees) of the DEM cells inside ``window``.

    The window is read with a one-cell halo, so the result equals the same
    cells of :func:`slope_degrees` over the whole raster.
    """
    halo = halo_window(info, window)
    return slope_in_window(read_window(ds, info, halo), info, window, halo)


def _chunks(width: int, height: int, *, rows: int = 256,
            max_cells: int = _MAX_CHUNK_CELLS) -> Iterator[Window]:
    """Windows covering a grid in strips of ``rows`` rows, split in columns to stay
    under ``max_cells``."""
    from rasterio.windows import Window

    cols = max(256, (max_cells // rows) // 256 * 256)
    for r in range(0, height, rows):
        for c in range(0, width, cols):
            yield Window(c, r, min(cols, width - c), min(rows, height - r))


def _default_nodata(dtype: str) -> float:
    return -9999.0 if np.dtype(dtype).kind == "f" else float(np.iinfo(np.dtype(dtype)).max)


def warp_raster(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    *,
    crs: Any = None,
    resolution: float | tuple[float, float] | None = None,
    like: str | os.PathLike[str] | None = None,
    resampling: Literal["bilinear", "nearest", "cubic", "average"] = "bilinear",
    overwrite: bool = False,
    layer: str = "raster",
) -> Path:
    """Reproject a raster into a metric CRS, block by block, as a tiled deflate GeoTIFF.

    The warp goes through a GDAL WarpedVRT read in 256-row strips, so memory
    stays bounded; the output is written to a temporary file beside ``dst`` and
    moved into place with :func:`os.replace`, so ``dst`` is never half-written.
    The source's dataset tags (a GSI mosaic's ``VERTICAL_ACCURACY_M`` ...) are
    copied.

    Parameters
    ----------
    src, dst : str or Path
    crs : anything pyproj accepts
        Target CRS, projected in metres (a JGD2011 plane-rectangular zone, UTM).
    resolution : float or (float, float), optional
        Output pixel size in metres; by default GDAL's estimate of the source's.
    like : str or Path, optional
        A raster whose grid (CRS, transform, size) the output takes instead of
        ``crs`` and ``resolution``: warp depth rasters onto the DEM's grid and
        :func:`pipeline.zonal.zonal_stats` computes each parcel's coverage once
        for all of them.
    resampling : {"bilinear", "nearest", "cubic", "average"}
        Bilinear for depths and elevations; nearest for classes.
    overwrite : bool
        Replace an existing ``dst``; without it an existing ``dst`` is an error.
    layer : str
        Layer name for messages.

    Returns
    -------
    Path
        ``dst``.

    Examples
    --------
    >>> import tempfile, rasterio
    >>> from affine import Affine
    >>> d = Path(tempfile.mkdtemp())
    >>> with rasterio.open(d / "ll.tif", "w", driver="GTiff", width=20, height=20, count=1,
    ...                    dtype="float32", crs="EPSG:4326", nodata=-9999,
    ...                    transform=Affine(0.0002, 0, 106.80, 0, -0.0002, -6.17)) as ds:
    ...     ds.write(np.ones((1, 20, 20), "float32"))
    >>> out = warp_raster(d / "ll.tif", d / "utm.tif", crs="EPSG:32748", resolution=10)
    >>> info = open_raster_checked(out, layer="depth")
    >>> info.crs.to_epsg(), info.res
    (32748, (10.0, 10.0))
    """
    import rasterio
    from pyproj import CRS
    from rasterio.enums import Resampling
    from rasterio.vrt import WarpedVRT
    from rasterio.warp import calculate_default_transform

    info = open_raster_checked(src, layer=layer)
    dst = Path(dst)
    grid = open_raster_checked(like, layer=f"grid for {layer}") if like is not None else None
    if grid is None and crs is None:
        raise CRSError(f"warp of {layer} raster {info.path}: give the target crs or a raster "
                       "to take the grid from (like=)")
    target = CRS.from_user_input(grid.crs.to_wkt() if grid is not None else crs)
    unit = target.axis_info[0].unit_name if target.axis_info else ""
    if not target.is_projected or unit not in ("metre", "meter"):
        raise CRSError(f"warp of {layer} raster {info.path}: target {describe_crs(target)} is not "
                       "a projected CRS in metres; use a JGD2011 plane-rectangular zone or UTM")
    if dst.resolve() == info.path.resolve():
        raise OutputError(f"warp of {layer} raster {info.path}: the output is the input; "
                          "choose another output path")
    if dst.exists() and not overwrite:
        raise OutputError(f"warp of {layer} raster: {dst} exists; pass overwrite=True "
                          "(--overwrite) or choose another output path")
    if resampling not in ("bilinear", "nearest", "cubic", "average"):
        raise RasterError(f"warp of {layer} raster: unknown resampling {resampling!r}")
    dst_crs = rasterio.crs.CRS.from_wkt(target.to_wkt())
    if grid is not None:
        transform, width, height = grid.transform, grid.width, grid.height
    else:
        with warnings.catch_warnings():  # rasterio 1.4 multiplies Affines with `*`
            warnings.simplefilter("ignore", PendingDeprecationWarning)
            transform, width, height = calculate_default_transform(
                info.crs, dst_crs, info.width, info.height, *info.bounds, resolution=resolution)
    nodata = info.nodata if info.nodata is not None else _default_nodata(info.dtype)
    profile = {
        "driver": "GTiff", "dtype": info.dtype, "count": 1, "crs": dst_crs,
        "transform": transform, "width": width, "height": height, "nodata": nodata,
        "tiled": True, "blockxsize": 256, "blockysize": 256, "compress": "deflate",
        "predictor": 3 if np.dtype(info.dtype).kind == "f" else 2, "BIGTIFF": "IF_SAFER",
    }
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.{uuid.uuid4().hex}.tmp")
    try:
        with rasterio.open(info.path) as s, WarpedVRT(
            s, crs=dst_crs, transform=transform, width=width, height=height,
            resampling=Resampling[resampling], src_nodata=info.nodata, nodata=nodata,
        ) as vrt, rasterio.open(tmp, "w", **profile) as out:
            out.update_tags(**s.tags(), SITEPLAN_WARPED_FROM=info.path.name,
                            SITEPLAN_RESAMPLING=resampling)  # keeps e.g. a GSI DEM's accuracy
            for window in _chunks(width, height):
                out.write(vrt.read(1, window=window), 1, window=window)
        os.replace(tmp, dst)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    logger.info("warped %s raster %s -> %s (%s, %dx%d, %.3g m pixels)", layer, info.path.name,
                dst, target.to_string(), width, height, transform.a)
    return dst


def sample_raster(
    path: str | os.PathLike[str],
    xy: np.ndarray,
    *,
    method: Literal["bilinear", "nearest"] = "bilinear",
    layer: str = "raster",
    block: int = 1024,
) -> np.ndarray:
    """Raster values at points, e.g. a DEM along a road line.

    Points are grouped by ``block`` x ``block`` pixel tiles and each tile is read
    once (a window around its points), so memory stays bounded however far
    apart the points are.

    Parameters
    ----------
    path : str or Path
    xy : ndarray
        ``(n, 2)`` coordinates in the raster's CRS.
    method : {"bilinear", "nearest"}
        ``"nearest"``: the value of the pixel containing the point.
        ``"bilinear"``: interpolated between the four nearest pixel centres; a
        nodata neighbour is left out and the other weights renormalised; at the
        raster's edge the edge pixels are repeated.
    layer : str
        Layer name for messages.
    block : int
        Tile size in pixels used to group the reads.

    Returns
    -------
    ndarray
        float64 values, NaN outside the raster or on nodata.

    Examples
    --------
    >>> import tempfile, rasterio
    >>> from affine import Affine
    >>> tif = Path(tempfile.mkdtemp()) / "dem.tif"
    >>> with rasterio.open(tif, "w", driver="GTiff", width=2, height=1, count=1,
    ...                    dtype="float32", crs="EPSG:6677",
    ...                    transform=Affine(10, 0, 0, 0, -10, 10)) as ds:
    ...     ds.write(np.array([[[10.0, 20.0]]], "float32"))
    >>> pts = np.array([[5.0, 5.0], [10.0, 5.0], [12.0, 5.0], [99.0, 5.0]])
    >>> sample_raster(tif, pts)
    array([10., 15., 17., nan])
    >>> sample_raster(tif, pts, method="nearest")
    array([10., 20., 20., nan])
    """
    import rasterio
    from rasterio.windows import Window

    if method not in ("bilinear", "nearest"):
        raise RasterError(f"sample_raster: method must be 'bilinear' or 'nearest', got {method!r}")
    info = open_raster_checked(path, layer=layer)
    pts = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
    cols, rows = ~info.transform @ (pts[:, 0], pts[:, 1])
    cols, rows = np.asarray(cols, dtype=np.float64), np.asarray(rows, dtype=np.float64)
    out = np.full(len(pts), np.nan)
    inside = (cols >= 0) & (cols < info.width) & (rows >= 0) & (rows < info.height)
    if not inside.any():
        return out
    idx = np.flatnonzero(inside)
    nearest = method == "nearest"
    if nearest:
        c0, r0 = np.floor(cols[idx]).astype(np.int64), np.floor(rows[idx]).astype(np.int64)
        fx = fy = np.zeros(len(idx))
    else:
        cc, rr = cols[idx] - 0.5, rows[idx] - 0.5
        c0, r0 = np.floor(cc).astype(np.int64), np.floor(rr).astype(np.int64)
        fx, fy = cc - c0, rr - r0
    tiles = (np.clip(r0, 0, None) // block) * (info.width // block + 1) + np.clip(c0, 0, None) // block
    with rasterio.open(info.path) as ds:
        for tile in np.unique(tiles):
            sel = tiles == tile
            cmin, rmin = max(int(c0[sel].min()), 0), max(int(r0[sel].min()), 0)
            cmax = min(int(c0[sel].max()) + 1, info.width - 1)
            rmax = min(int(r0[sel].max()) + 1, info.height - 1)
            z = read_window(ds, info, Window(cmin, rmin, cmax - cmin + 1, rmax - rmin + 1))

            def at(c: np.ndarray, r: np.ndarray, z: np.ndarray = z,
                   cmin: int = cmin, rmin: int = rmin) -> np.ndarray:
                c = np.clip(c, 0, info.width - 1) - cmin
                r = np.clip(r, 0, info.height - 1) - rmin
                return z[r, c]

            if nearest:
                out[idx[sel]] = at(c0[sel], r0[sel])
                continue
            out[idx[sel]] = _bilinear(at, c0[sel], r0[sel], fx[sel], fy[sel])
    return out


def _bilinear(at: Any, c0: np.ndarray, r0: np.ndarray, fx: np.ndarray,
              fy: np.ndarray) -> np.ndarray:
    """Bilinear interpolation that leaves out nodata (NaN) neighbours."""
    vals = np.stack([at(c0, r0), at(c0 + 1, r0), at(c0, r0 + 1), at(c0 + 1, r0 + 1)])
    wts = np.stack([(1 - fx) * (1 - fy), fx * (1 - fy), (1 - fx) * fy, fx * fy])
    ok = ~np.isnan(vals)
    wsum = np.where(ok, wts, 0.0).sum(axis=0)
    num = np.where(ok, wts * np.nan_to_num(vals), 0.0).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(wsum > 0, num / np.where(wsum > 0, wsum, 1.0), np.nan)


def check_depth_raster(
    path: str | os.PathLike[str],
    *,
    layer: str,
    max_depth: float = 100.0,
) -> list[str]:
    """Reasons to doubt that a raster holds water depths in metres.

    The raster is scanned block by block for its valid minimum and maximum.

    Parameters
    ----------
    path : str or Path
    layer : str
        Layer name for messages.
    max_depth : float
        Largest plausible depth in metres; a larger maximum suggests centimetres
        or feet.

    Returns
    -------
    list of str
        One message per problem; empty when the raster looks plausible.

    Examples
    --------
    >>> import tempfile, rasterio
    >>> from affine import Affine
    >>> tif = Path(tempfile.mkdtemp()) / "cm.tif"
    >>> with rasterio.open(tif, "w", driver="GTiff", width=2, height=1, count=1,
    ...                    dtype="float32", crs="EPSG:6677", nodata=-9999,
    ...                    transform=Affine(1, 0, 0, 0, -1, 1)) as ds:
    ...     ds.write(np.array([[[0.0, 350.0]]], "float32"))
    >>> check_depth_raster(tif, layer="flood")  # doctest: +ELLIPSIS
    ['flood raster ...cm.tif: maximum depth 350 m is above 100 m: the values look like centimetres (divide by 100) or another unit; convert the raster to metres']
    """
    import rasterio

    info = open_raster_checked(path, layer=layer)
    where = f"{layer} raster {info.path}"
    lo, hi, n_valid, n_sentinel = math.inf, -math.inf, 0, 0
    with rasterio.open(info.path) as ds:
        for window in _chunks(info.width, info.height):
            z = read_window(ds, info, window)
            ok = ~np.isnan(z)
            if info.nodata is None:
                sentinel = z <= -9999
                n_sentinel += int(sentinel.sum())
                ok &= ~sentinel
            if ok.any():
                lo, hi = min(lo, float(z[ok].min())), max(hi, float(z[ok].max()))
                n_valid += int(ok.sum())
    problems = []
    if n_sentinel:
        problems.append(f"{where}: {n_sentinel} cells hold -9999 or less but no nodata value is "
                        "declared; set it (gdal_edit.py -a_nodata -9999)")
    if n_valid == 0:
        problems.append(f"{where}: holds no valid depth (every cell is nodata); check the file")
        return problems
    if hi > max_depth:
        problems.append(f"{where}: maximum depth {hi:g} m is above {max_depth:g} m: the values "
                        "look like centimetres (divide by 100) or another unit; convert the "
                        "raster to metres")
    if lo < -0.01:
        problems.append(f"{where}: negative depths down to {lo:g}: a depth raster holds water "
                        "depth above the ground (>= 0); is it a water level or elevation raster?")
    return problems
