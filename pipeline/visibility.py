"""Visibility of each parcel from a viewpoint (the town centre), by line of sight on the DEM.

The Hamanaka plan rated the landscape of each site ("visible from the town",
"hidden from the town"): a civic building the town can see is a landmark and a
refuge people find. :func:`visible_share` reproduces that from the DEM: the share
of the parcel's cells that an observer at the viewpoint can see.

A cell is visible when no DEM sample on the straight line from the observer's
eye to the target point rises above that line. Samples are spaced one pixel
apart and interpolated bilinearly; the DEM is read only over the window that
holds the viewpoint and the parcel.
"""

from __future__ import annotations

import logging
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from pipeline._progress import progress

logger = logging.getLogger(__name__)


def _bilinear(z: np.ndarray, col: np.ndarray, row: np.ndarray) -> np.ndarray:
    """Bilinear interpolation at fractional pixel-centre coordinates (scipy); NaN outside."""
    from scipy.ndimage import map_coordinates

    coords = np.stack([np.ravel(row), np.ravel(col)])
    out = map_coordinates(z, coords, order=1, mode="constant", cval=np.nan)
    return out.reshape(np.shape(col))


def visible_share(
    parcels: gpd.GeoDataFrame,
    dem: str | Path,
    viewpoint: shapely.Point,
    *,
    observer_height: float = 1.5,
    target_height: float = 0.0,
    max_cells: int = 2000,
    show_progress: bool = False,
) -> pd.Series:
    """Share of each parcel's area visible from ``viewpoint``.

    Parameters
    ----------
    parcels : GeoDataFrame
        In the DEM's (metric) CRS.
    dem : path
        Ground elevation raster.
    viewpoint : shapely.Point
        Observer position, same CRS.
    observer_height : float
        Eye height above the ground at the viewpoint, m.
    target_height : float
        Height above the ground of the target points (0: the ground itself; the
        height of the planned building asks whether the building will be seen).
    max_cells : int
        At most this many target cells per parcel (a regular subsample beyond).
    show_progress : bool
        A progress bar over the parcels.

    Returns
    -------
    Series
        ``visible_share`` in [0, 1], aligned to ``parcels.index``; NaN where the
        parcel has no DEM data.

    Examples
    --------
    A flat plain with a 20 m wall between the viewpoint and parcel B:

    >>> import tempfile, rasterio
    >>> from affine import Affine
    >>> from shapely.geometry import Point, box
    >>> z = np.zeros((20, 60), "float32"); z[:, 30] = 20.0
    >>> tif = Path(tempfile.mkdtemp()) / "dem.tif"
    >>> with rasterio.open(tif, "w", driver="GTiff", width=60, height=20, count=1,
    ...                    dtype="float32", crs="EPSG:6681", transform=Affine(5, 0, 0, 0, -5, 100)) as ds:
    ...     ds.write(z, 1)
    >>> parcels = gpd.GeoDataFrame(geometry=[box(100, 20, 140, 60), box(200, 20, 240, 60)],
    ...                            index=["A", "B"], crs="EPSG:6681")
    >>> visible_share(parcels, tif, Point(10, 50)).tolist()
    [1.0, 0.0]
    """
    import rasterio
    from rasterio.windows import from_bounds

    out = pd.Series(np.nan, index=parcels.index, name="visible_share")
    with rasterio.open(dem) as ds:
        res = abs(ds.transform.a)
        for site, geom in progress(zip(parcels.index, parcels.geometry.to_numpy()),
                                   desc="visibility", total=len(parcels), enabled=show_progress):
            bounds = shapely.union(geom, viewpoint).buffer(2 * res).bounds
            win = from_bounds(*bounds, transform=ds.transform).round_offsets().round_lengths()
            win = win.intersection(rasterio.windows.Window(0, 0, ds.width, ds.height))
            z = ds.read(1, window=win, masked=True).astype("float64").filled(np.nan)
            inv = ~ds.window_transform(win)
            targets = _cell_centres(geom, res, max_cells)
            if len(targets) == 0:
                continue
            out[site] = _share_visible(z, inv, viewpoint, targets, res, observer_height,
                                       target_height)
    return out


def _cell_centres(geom: shapely.Geometry, res: float, max_cells: int) -> np.ndarray:
    x0, y0, x1, y1 = geom.bounds
    xs, ys = np.meshgrid(np.arange(x0 + res / 2, x1, res), np.arange(y0 + res / 2, y1, res))
    xy = np.column_stack([xs.ravel(), ys.ravel()])
    xy = xy[shapely.contains_xy(geom, xy[:, 0], xy[:, 1])]
    if len(xy) > max_cells:
        xy = xy[:: int(np.ceil(len(xy) / max_cells))]
    return xy


def _share_visible(z: np.ndarray, inv: object, viewpoint: shapely.Point, targets: np.ndarray,
                   res: float, observer_height: float, target_height: float) -> float:
    def to_pix(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        col, row = inv @ (x, y)  # type: ignore[operator]
        return np.asarray(col) - 0.5, np.asarray(row) - 0.5

    eye = _bilinear(z, *to_pix(np.array([viewpoint.x]), np.array([viewpoint.y])))[0]
    end = _bilinear(z, *to_pix(targets[:, 0], targets[:, 1]))
    if np.isnan(eye):
        return float("nan")
    eye += observer_height
    length = np.hypot(targets[:, 0] - viewpoint.x, targets[:, 1] - viewpoint.y)
    n = max(int(length.max() / res), 2)
    t = np.linspace(0.0, 1.0, n + 1)[1:-1]
    xs = viewpoint.x + (targets[:, 0:1] - viewpoint.x) * t
    ys = viewpoint.y + (targets[:, 1:2] - viewpoint.y) * t
    ground = _bilinear(z, *to_pix(xs, ys))
    sight = eye + ((end + target_height)[:, None] - eye) * t
    blocked = (np.nan_to_num(ground, nan=-np.inf) > sight + 1e-6).any(axis=1)
    valid = ~np.isnan(end)
    return float((~blocked & valid).sum() / valid.sum()) if valid.any() else float("nan")
