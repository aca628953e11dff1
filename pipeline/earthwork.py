"""Cut and fill volumes to level a pad on each parcel, from a DEM with exact pixel coverage.

For a pad polygon and a design level ``p``, every DEM pixel ``i`` the pad touches
contributes its covered area ``w_i = c_i * A`` (``c_i``: the fraction of the pixel inside
the pad, computed exactly by exactextract; ``A``: pixel area) times its height above
or below the level::

    cut  = sum_i w_i * max(z_i - p, 0)        fill = sum_i w_i * max(p - z_i, 0)

Each pixel is taken as flat at its centre value, so a pixel that the design level
crosses is split by area fraction only; the error shrinks with the pixel size (see
the tests: under 0.5 % of the volume for a 60 m cone on a 1 m grid).

Balancing level. With a compaction factor ``C`` (m3 of compacted fill obtained from
1 m3 of cut, 土量変化率 C; 1.0 by default) the level that balances the earthwork
solves ``f(p) = fill(p) - C * cut(p) = 0``. ``f`` is piecewise linear and increasing
in ``p``; with the pixel values sorted and cumulative sums of ``w`` and ``w * z``,
``f`` is evaluated at every pixel value at once, the bracketing pair is found, and the
root is solved exactly on that linear piece. With ``C = 1`` the root is the
coverage-weighted mean elevation of the pad.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from pipeline.crs import check_metric
from pipeline.errors import ConfigError, CRSError, InputNotFoundError, LayerError, RasterError

logger = logging.getLogger(__name__)


def cut_fill(parcels: gpd.GeoDataFrame, dem_path: str | Path, *,
             pad_elevation: pd.Series | float | None = None,
             pad: gpd.GeoSeries | None = None, compaction: float = 1.0,
             balance_tolerance: float = 0.01) -> pd.DataFrame:
    """Cut and fill (m3) to level each parcel's pad at a design elevation.

    Parameters
    ----------
    parcels : GeoDataFrame
        Parcel polygons, in the DEM's projected metric CRS.
    dem_path : str or Path
        Elevation raster (metres), e.g. a GeoTIFF.
    pad_elevation : Series, float or None
        Design level (m, same datum as the DEM) per parcel or for all; None (or NaN
        for a parcel) means the level that balances cut and fill.
    pad : GeoSeries, optional
        Area to level (building plus parking), aligned to ``parcels``; default the
        parcel polygon.
    compaction : float, default 1.0
        m3 of compacted fill obtained from 1 m3 of cut, used for the balancing level
        and the ``balanced`` flag.
    balance_tolerance : float, default 0.01
        ``balanced`` is True when ``|fill - compaction * cut|`` is within this share
        of the larger of the two.

    Returns
    -------
    DataFrame
        Aligned to ``parcels``: ``pad_area_m2``, ``dem_area_m2`` (pad area with DEM
        data), ``ground_mean_m`` (coverage-weighted), ``pad_elevation_used``,
        ``cut_m3``, ``fill_m3``, ``net_m3`` (cut - fill), ``balanced``. NaN where
        the pad has no DEM data.

    Raises
    ------
    CRSError
        Parcels and DEM differ in CRS (both are named) or are not metric.
    InputNotFoundError
        The DEM does not exist.

    Examples
    --------
    >>> import tempfile, rasterio
    >>> from affine import Affine
    >>> from shapely.geometry import box
    >>> z = np.tile(np.arange(10, dtype="float32"), (10, 1))  # ground rises 1 m per m east
    >>> path = Path(tempfile.mkdtemp()) / "dem.tif"
    >>> with rasterio.open(path, "w", driver="GTiff", width=10, height=10, count=1,
    ...                    dtype="float32", crs="EPSG:6681",
    ...                    transform=Affine(1, 0, 0, 0, -1, 10)) as ds:
    ...     ds.write(z, 1)
    >>> parcels = gpd.GeoDataFrame(geometry=[box(2, 2, 6, 6)], crs="EPSG:6681")
    >>> cut_fill(parcels, path)[["pad_elevation_used", "cut_m3", "fill_m3"]].iloc[0].tolist()
    [3.5, 8.0, 8.0]
    """
    if compaction <= 0:
        raise ConfigError(f"compaction must be > 0, got {compaction!r}")
    pads = _pads(parcels, pad)
    levels = _levels(pad_elevation, parcels.index)
    values, weights = _pixels(pads, Path(dem_path))
    rows = [_one(z, w, level, compaction, balance_tolerance)
            for z, w, level in zip(values, weights, levels)]
    out = pd.DataFrame(rows, index=parcels.index, columns=list(_one(
        np.empty(0), np.empty(0), np.nan, compaction, balance_tolerance)))
    out.insert(0, "pad_area_m2", pads.area.to_numpy())
    short = out["dem_area_m2"] < out["pad_area_m2"] * 0.999
    if short.any():
        logger.warning("earthwork: %d pad(s) only partly covered by DEM data (%s)",
                       int(short.sum()), list(out.index[short])[:10])
    logger.info("earthwork: %d pads, cut %.0f m3, fill %.0f m3", len(out),
                out["cut_m3"].sum(), out["fill_m3"].sum())
    return out


def balancing_level(values: np.ndarray, weights: np.ndarray, *, compaction: float = 1.0
                    ) -> float:
    """Level ``p`` at which ``sum w (p - z)+ = compaction * sum w (z - p)+``.

    Parameters
    ----------
    values : array
        Ground elevations (m).
    weights : array
        Areas (m2) the values stand for (coverage fraction x pixel area).
    compaction : float, default 1.0
        m3 of compacted fill per m3 of cut.

    Returns
    -------
    float
        The level (m); NaN when the weights sum to zero.

    Examples
    --------
    >>> balancing_level(np.array([0.0, 1.0, 2.0, 9.0]), np.ones(4))
    3.0
    >>> balancing_level(np.array([0.0, 10.0]), np.ones(2), compaction=0.5)
    3.3333333333333335
    """
    keep = weights > 0
    z, w = np.asarray(values, float)[keep], np.asarray(weights, float)[keep]
    if len(z) == 0:
        return float("nan")
    order = np.argsort(z, kind="stable")
    z, w = z[order], w[order]
    w_below, s_below = np.cumsum(w), np.cumsum(w * z)
    w_all, s_all = w_below[-1], s_below[-1]
    # f(z_k) with the pixels 0..k below the level: fill - C * cut
    f = (z * w_below - s_below) - compaction * ((s_all - s_below) - z * (w_all - w_below))
    k = int(np.argmax(f >= 0.0))  # f rises from <= 0 at z_0 to >= 0 at z_max
    if k == 0 or f[k] == 0.0:
        return float(z[k])
    wb, sb = w_below[k - 1], s_below[k - 1]
    return float((sb + compaction * (s_all - sb)) / (wb + compaction * (w_all - wb)))


# --------------------------------------------------------------------------- helpers


def _pads(parcels: gpd.GeoDataFrame, pad: gpd.GeoSeries | None) -> gpd.GeoSeries:
    if pad is None:
        return parcels.geometry
    if not isinstance(pad, gpd.GeoSeries) or not pad.index.equals(parcels.index):
        raise LayerError("pad: expected a GeoSeries aligned to the parcels' index")
    if pad.crs is None or parcels.crs is None or not pad.crs.equals(parcels.crs):
        raise CRSError(f"pad is in {_name(pad.crs)} but parcels are in {_name(parcels.crs)}; "
                       "reproject the pad with .to_crs() first")
    return pad


def _levels(pad_elevation: pd.Series | float | None, index: pd.Index) -> np.ndarray:
    if pad_elevation is None:
        return np.full(len(index), np.nan)
    if isinstance(pad_elevation, pd.Series):
        if not pad_elevation.index.equals(index):
            raise LayerError("pad_elevation: Series not aligned to the parcels' index; "
                             "reindex it first")
        return pad_elevation.to_numpy(dtype=float)
    return np.full(len(index), float(pad_elevation))


def _pixels(pads: gpd.GeoSeries, dem: Path) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Pixel values and covered areas (m2) per pad, by exactextract."""
    import rasterio
    from exactextract import exact_extract
    from pyproj import CRS

    if not dem.is_file():
        raise InputNotFoundError(f"DEM {dem} does not exist")
    with rasterio.open(dem) as ds:
        if ds.crs is None:
            raise CRSError(f"DEM {dem} has no CRS; parcels are in {_name(pads.crs)}")
        dem_crs = CRS.from_user_input(ds.crs.to_wkt())
        if pads.crs is None or not dem_crs.equals(pads.crs, ignore_axis_order=True):
            raise CRSError(f"parcels are in {_name(pads.crs)} but DEM {dem} is in "
                           f"{_name(dem_crs)}; reproject the parcels to the DEM's CRS (or "
                           "warp the DEM) first")
        check_metric(dem_crs, what=f"DEM {dem}")
        if ds.transform.b or ds.transform.d:
            raise RasterError(f"DEM {dem}: rotated grids are not supported; warp it first")
        pixel_area = abs(ds.transform.a * ds.transform.e)
        usable = ~(pads.isna().to_numpy() | pads.is_empty.to_numpy())
        values = [np.empty(0)] * len(pads)
        weights = [np.empty(0)] * len(pads)
        if not usable.any():
            return values, weights
        frame = gpd.GeoDataFrame(geometry=pads.to_numpy()[usable], crs=pads.crs)
        stats = exact_extract(ds, frame, ["values", "coverage"], output="pandas")
    for i, z, c in zip(np.flatnonzero(usable), stats["values"], stats["coverage"]):
        values[i] = np.asarray(z, float)
        weights[i] = np.asarray(c, float) * pixel_area
    return values, weights


def _one(z: np.ndarray, w: np.ndarray, level: float, compaction: float,
         tolerance: float) -> dict[str, Any]:
    area = float(w.sum())
    if area <= 0:
        return {"dem_area_m2": 0.0, "ground_mean_m": np.nan, "pad_elevation_used": level,
                "cut_m3": np.nan, "fill_m3": np.nan, "net_m3": np.nan, "balanced": False}
    if np.isnan(level):
        level = balancing_level(z, w, compaction=compaction)
    cut = float(np.sum(w * np.clip(z - level, 0.0, None)))
    fill = float(np.sum(w * np.clip(level - z, 0.0, None)))
    scale = max(fill, compaction * cut, 1e-9)
    return {"dem_area_m2": area, "ground_mean_m": float(np.sum(w * z) / area),
            "pad_elevation_used": float(level), "cut_m3": cut, "fill_m3": fill,
            "net_m3": cut - fill,
            "balanced": bool(abs(fill - compaction * cut) <= tolerance * scale)}


def _name(crs: Any) -> str:
    return "no CRS" if crs is None else crs.to_string()
