"""The maps stage: the council's interactive map, offline, and the static figures.

:func:`map_from_frames` is a pure builder: frames and rendered rasters in, a
:class:`folium.Map` out. :func:`run_stage` reads the study's outputs, renders
the rasters, builds the map, writes ``index.html`` (self-contained by default,
through :func:`pipeline.offline.save_offline`) and the PNG figures of
:mod:`pipeline.figures`.

What the map shows
------------------
- the candidate parcels coloured by their overall mark (``pipeline.qgis.
  MARK_COLOURS``), a categorical legend, the name as tooltip and a popup with the
  overall mark and rank, the key metrics with units and marks, and an inline SVG
  elevation profile along the route from the town centre with each scenario's
  design water level;
- each scenario's depth raster as an image overlay warped to Web Mercator
  (EPSG:3857, Leaflet's projection, so the pixels line up with the tiles),
  coloured with the national hazard-map depth legend, with its own toggle and
  its own legend (shown while the layer is on);
- a DEM hillshade (the base layer offline), roads, access routes, walking
  isochrones, the town centre and shelters, a layer control, a scale bar, a title.

Safety: every attribute value (names, labels, formatted metrics) passes through
:func:`pipeline.offline.escape_html` exactly once before it reaches a popup,
tooltip, legend, layer name or the title; nothing is escaped again later
(popups are built from pre-escaped feature properties, see ``_ParcelPopup``).

Depth colours
-------------
The eight depth ranks and colours of MLIT's 水害ハザードマップ作成の手引き
(2016): standard ranks ~0.5 / 0.5-3 / 3-5 / 5-10 / 10-20 / 20 m~ as RGB
(247,245,169) (255,216,192) (255,183,183) (255,145,145) (242,133,201)
(220,122,220), with the detailed-version splits 0-0.3 m (255,255,179),
0.3-0.5 m (247,245,169), 0.5-1 m (248,225,166) and 1-3 m (255,216,192) as
used by the GSI hazard-map portal's "new legend" tiles. Sources: MLIT slide
"水害ハザードマップに表示する浸水深 ... 配色" (H28 下水道による都市浸水対策,
p. 44) and the portal legend as read by several public tools.
"""

from __future__ import annotations

import base64
import functools
import io
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from pipeline.offline import escape_html
from pipeline.qgis import MARK_COLOURS

if TYPE_CHECKING:
    import folium
    import geopandas as gpd

    from pipeline.config import Criterion, Scenario

logger = logging.getLogger(__name__)

__all__ = [
    "DEPTH_BREAKS",
    "DEPTH_COLOURS",
    "LEVEL_COLOURS",
    "POI_COLOURS",
    "MapImage",
    "depth_classes",
    "depth_image",
    "depth_legend_labels",
    "format_metric",
    "hillshade",
    "hillshade_image",
    "key_metrics",
    "map_from_frames",
    "png_data_uri",
    "popup_properties",
    "profile_svg",
    "read_mercator",
    "run_stage",
    "scenario_levels",
    "shaded_relief",
    "site_profiles",
    "text",
]

DEPTH_BREAKS: tuple[float, ...] = (0.3, 0.5, 1.0, 3.0, 5.0, 10.0, 20.0)
"""Upper bounds (m) of the national depth ranks; the last rank is 20 m and deeper."""

DEPTH_COLOURS: tuple[str, ...] = (
    "#ffffb3", "#f7f5a9", "#f8e1a6", "#ffd8c0", "#ffb7b7", "#ff9191", "#f285c9", "#dc7adc",
)
"""Colours of the eight depth ranks (see the module docstring for the source)."""

LEVEL_COLOURS: tuple[str, ...] = ("#1f4e9c", "#00838f", "#6a3d9a", "#b15928", "#33a02c")
"""Line colours of the design water levels, one per scenario in study order."""

POI_COLOURS = {"town_centre": "#b2182b", "shelter": "#1b7837", "town_hall": "#542788"}
MERCATOR = "EPSG:3857"
SEA_RGB = (214, 233, 245)

_TEXT: dict[str, dict[str, Any]] = {
    "en": {
        "parcels": "Candidate sites (overall mark)", "labels": "Site labels",
        "routes": "Access routes", "roads": "Roads", "isochrones": "Walking isochrones",
        "places": "Town centre and shelters", "hillshade": "Hillshade (offline base map)",
        "depth": "Inundation depth", "overall": "Overall", "rank": "Rank",
        "ground": "Lowest ground", "profile": "Elevation along the route from the town centre",
        "distance": "distance (m)", "elevation": "m T.P.", "legend": "Overall mark",
        "from_centre": "from the town centre", "from_street": "from the central street",
        "walk": "min walk", "capacity": "capacity",
        "kinds": {"town_centre": "town centre", "shelter": "shelter", "town_hall": "town hall"},
        "marks": {"◎": "best", "○": "acceptable", "△": "weak", "×": "unacceptable",
                  "—": "not rated"},
        "classes": ("< 0.3 m", "0.3–0.5 m", "0.5–1 m", "1–3 m", "3–5 m", "5–10 m", "10–20 m",
                    "≥ 20 m"),
    },
    "ja": {
        "parcels": "候補地（総合評価）", "labels": "候補地名", "routes": "アクセス経路",
        "roads": "道路", "isochrones": "徒歩圏", "places": "市街地中心・避難所",
        "hillshade": "陰影起伏図（オフライン背景）", "depth": "浸水深", "overall": "総合評価",
        "rank": "順位", "ground": "最低地盤高", "profile": "市街地中心からの経路の標高断面",
        "distance": "距離 (m)", "elevation": "m T.P.", "legend": "総合評価",
        "from_centre": "市街地中心から", "from_street": "中央通りから", "walk": "分（徒歩）",
        "capacity": "収容人数",
        "kinds": {"town_centre": "市街地中心", "shelter": "避難所", "town_hall": "役場"},
        "marks": {"◎": "適切", "○": "可", "△": "やや不利", "×": "不適", "—": "評価なし"},
        "classes": ("0.3m未満", "0.3〜0.5m", "0.5〜1.0m", "1.0〜3.0m", "3.0〜5.0m", "5.0〜10.0m",
                    "10.0〜20.0m", "20.0m以上"),
    },
}


def text(lang: str) -> dict[str, Any]:
    """The map's fixed wording in ``lang`` ('en' or 'ja'; anything else gives English).

    Examples
    --------
    >>> text("ja")["overall"], text("en")["rank"]
    ('総合評価', 'Rank')
    """
    return _TEXT.get(lang, _TEXT["en"])


# --------------------------------------------------------------------------- rasters


@dataclass(frozen=True)
class MapImage:
    """A raster rendered for the map: a PNG data URI placed by its lat/lon bounds.

    Attributes
    ----------
    name : str
        Layer name, plain text (escaped when drawn).
    url : str
        ``data:image/png;base64,...``.
    bounds : ((float, float), (float, float))
        ``((south, west), (north, east))`` in degrees, as Leaflet wants them; the
        image is in Web Mercator, so these corners place every pixel exactly.
    kind : {"depth", "hillshade"}
    show : bool
        Shown when the page opens.
    """

    name: str
    url: str
    bounds: tuple[tuple[float, float], tuple[float, float]]
    kind: Literal["depth", "hillshade"] = "depth"
    show: bool = True


def depth_classes(depth: np.ndarray, *, wet_threshold: float = 0.0) -> np.ndarray:
    """Index of the national depth rank of every cell: 0 dry or no data, 1-8 the ranks.

    Parameters
    ----------
    depth : ndarray
        Depths in metres; NaN for no data.
    wet_threshold : float
        Depths at or below it count as dry (transparent on the map).

    Returns
    -------
    ndarray of uint8
        Same shape; rank ``k`` (1-8) means ``DEPTH_BREAKS[k-2] <= depth < DEPTH_BREAKS[k-1]``.

    Examples
    --------
    >>> depth_classes(np.array([np.nan, 0.0, 0.1, 0.3, 2.0, 13.9, 25.0])).tolist()
    [0, 0, 1, 2, 4, 7, 8]
    """
    depth = np.asarray(depth, dtype="float64")
    wet = np.isfinite(depth) & (depth > wet_threshold)
    ranks = np.searchsorted(np.asarray(DEPTH_BREAKS), np.where(wet, depth, 0.0), side="right")
    return np.where(wet, ranks + 1, 0).astype("uint8")


def depth_legend_labels(lang: str = "en") -> list[tuple[str, str]]:
    """``(colour, label)`` of the eight depth ranks, shallowest first.

    Examples
    --------
    >>> depth_legend_labels()[0], depth_legend_labels("ja")[-1]
    (('#ffffb3', '< 0.3 m'), ('#dc7adc', '20.0m以上'))
    """
    return list(zip(DEPTH_COLOURS, text(lang)["classes"]))


def hillshade(
    dem: np.ndarray,
    *,
    cellsize: float,
    azimuth: float = 315.0,
    altitude: float = 45.0,
    z_factor: float = 1.0,
) -> np.ndarray:
    """Lambertian hillshade of a DEM on a square grid whose first row is the north edge.

    Parameters
    ----------
    dem : ndarray
        Elevations (m); NaN for no data.
    cellsize : float
        Ground size of a cell in metres (on a Web Mercator grid: the Mercator
        cell size times the cosine of the latitude).
    azimuth, altitude : float
        Sun direction, degrees clockwise from north, and height above the horizon.
    z_factor : float
        Vertical exaggeration.

    Returns
    -------
    ndarray of float
        Illumination in [0, 1]; NaN where the DEM has no data.

    Examples
    --------
    >>> rises_east = np.tile(np.arange(5.0), (5, 1))  # faces west, towards the NW sun
    >>> facing_sun = hillshade(rises_east, cellsize=1.0)[2, 2]
    >>> bool(facing_sun > hillshade(rises_east[:, ::-1], cellsize=1.0)[2, 2])
    True
    """
    z = np.asarray(dem, dtype="float64")
    nodata = ~np.isfinite(z)
    if nodata.all():
        return np.full(z.shape, np.nan)
    filled = np.where(nodata, np.nanmin(z), z) * z_factor
    if min(z.shape) < 2:
        shade = np.full(z.shape, math.sin(math.radians(altitude)))
    else:
        d_south, d_east = np.gradient(filled, cellsize)
        normal = np.stack([-d_east, d_south, np.ones_like(filled)])
        normal /= np.linalg.norm(normal, axis=0)
        az, alt = math.radians(azimuth), math.radians(altitude)
        sun = np.array([math.sin(az) * math.cos(alt), math.cos(az) * math.cos(alt),
                        math.sin(alt)])
        shade = np.clip(np.tensordot(sun, normal, axes=1), 0.0, 1.0)
    return np.where(nodata, np.nan, shade)


def read_mercator(
    path: str | Path,
    *,
    max_size: int = 1024,
    resampling: Literal["bilinear", "nearest", "average"] = "bilinear",
    layer: str = "raster",
) -> tuple[np.ndarray, tuple[tuple[float, float], tuple[float, float]], float]:
    """Read band 1 of a raster warped to Web Mercator, at most ``max_size`` pixels a side.

    Parameters
    ----------
    path : str or Path
        Any raster GDAL reads, in any CRS.
    max_size : int
        Longest side of the result; larger rasters are downsampled in the warp.
    resampling : {"bilinear", "nearest", "average"}
    layer : str
        Layer name for messages.

    Returns
    -------
    (ndarray, bounds, float)
        Values as float64 with NaN for no data (first row north); bounds
        ``((south, west), (north, east))`` in degrees; the Mercator cell size (m).

    Examples
    --------
    >>> import tempfile, rasterio
    >>> from affine import Affine
    >>> tif = Path(tempfile.mkdtemp()) / "d.tif"
    >>> with rasterio.open(tif, "w", driver="GTiff", width=40, height=20, count=1,
    ...                    dtype="float32", crs="EPSG:6681", nodata=-9999,
    ...                    transform=Affine(5, 0, 69340, 0, -5, -100035)) as ds:
    ...     ds.write(np.ones((1, 20, 40), "float32"))
    >>> values, ((s, w), (n, e)), cell = read_mercator(tif, max_size=16)
    >>> max(values.shape) <= 16, round(w, 2), round(n, 2)
    (True, 145.1, 43.1)
    """
    import rasterio
    from rasterio.enums import Resampling
    from rasterio.vrt import WarpedVRT

    from pipeline.raster import open_raster_checked

    info = open_raster_checked(path, layer=layer)
    with rasterio.open(info.path) as src:
        transform, width, height = _mercator_grid(src, max_size)
        with WarpedVRT(src, crs=MERCATOR, transform=transform, width=width, height=height,
                       resampling=Resampling[resampling], add_alpha=src.nodata is None) as vrt:
            values = vrt.read(1, masked=True).astype("float64").filled(np.nan)
    return values, _lonlat_bounds(transform, width, height), float(transform.a)


def _mercator_grid(src: Any, max_size: int) -> tuple[Any, int, int]:
    """Web Mercator grid covering ``src``: its own resolution, coarsened to ``max_size``."""
    import warnings

    from affine import Affine
    from rasterio.warp import calculate_default_transform

    with warnings.catch_warnings():  # rasterio 1.4 multiplies Affines with `*`
        warnings.simplefilter("ignore", PendingDeprecationWarning)
        native, width, height = calculate_default_transform(
            src.crs, MERCATOR, src.width, src.height, *src.bounds)
    left, top = native.c, native.f
    right, bottom = left + native.a * width, top + native.e * height
    cell = native.a * max(1.0, max(width, height) / max_size)
    width = max(1, min(max_size, math.ceil((right - left) / cell - 1e-9)))
    height = max(1, min(max_size, math.ceil((top - bottom) / cell - 1e-9)))
    return Affine(cell, 0.0, left, 0.0, -cell, top), width, height


def _lonlat_bounds(transform: Any, width: int, height: int
                   ) -> tuple[tuple[float, float], tuple[float, float]]:
    from pyproj import Transformer

    to_lonlat = Transformer.from_crs(MERCATOR, "EPSG:4326", always_xy=True)
    west, north = to_lonlat.transform(transform.c, transform.f)
    east, south = to_lonlat.transform(transform.c + transform.a * width,
                                      transform.f + transform.e * height)
    return (float(south), float(west)), (float(north), float(east))


def png_data_uri(image: np.ndarray, *, palette: Sequence[str] | None = None) -> str:
    """Encode an image as a PNG ``data:`` URI.

    Parameters
    ----------
    image : ndarray of uint8
        ``(h, w, 4)`` RGBA, ``(h, w)`` grey, or ``(h, w)`` palette indices when
        ``palette`` is given (index 0 is transparent).
    palette : sequence of str, optional
        ``#rrggbb`` colours of indices 1, 2, ...

    Returns
    -------
    str

    Examples
    --------
    >>> uri = png_data_uri(np.array([[0, 1], [2, 1]], "uint8"), palette=["#ff0000", "#00ff00"])
    >>> uri.startswith("data:image/png;base64,")
    True
    """
    from PIL import Image

    array = np.ascontiguousarray(image, dtype="uint8")
    if array.ndim == 3 and array.shape[2] == 4 and (array[..., 3] == 255).all():
        array = np.ascontiguousarray(array[..., :3])  # opaque: RGB is a quarter smaller
    img = Image.fromarray(array)
    options: dict[str, Any] = {"compress_level": 6}
    if palette is not None:
        rgb = [0, 0, 0] + [int(c[i:i + 2], 16) for c in palette for i in (1, 3, 5)]
        img.putpalette(rgb)
        options["transparency"] = 0
    buffer = io.BytesIO()
    img.save(buffer, format="PNG", **options)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def depth_image(
    path: str | Path,
    *,
    name: str,
    wet_threshold: float = 0.0,
    max_size: int = 1024,
    show: bool = True,
) -> MapImage:
    """A depth raster coloured with the national legend, in Web Mercator, for an overlay.

    Dry cells (depth at or below ``wet_threshold``) and no data are transparent.

    Examples
    --------
    >>> import tempfile, rasterio
    >>> from affine import Affine
    >>> tif = Path(tempfile.mkdtemp()) / "depth.tif"
    >>> with rasterio.open(tif, "w", driver="GTiff", width=4, height=4, count=1,
    ...                    dtype="float32", crs="EPSG:6681", nodata=-9999,
    ...                    transform=Affine(5, 0, 69340, 0, -5, -100035)) as ds:
    ...     ds.write(np.full((1, 4, 4), 2.0, "float32"))
    >>> depth_image(tif, name="Tsunami").url.startswith("data:image/png")
    True
    """
    values, bounds, _ = read_mercator(path, max_size=max_size, layer=name)
    ranks = depth_classes(values, wet_threshold=wet_threshold)
    return MapImage(name, png_data_uri(ranks, palette=DEPTH_COLOURS), bounds, "depth", show)


def shaded_relief(dem: np.ndarray, *, cellsize: float) -> np.ndarray:
    """RGBA shaded relief: a gentle elevation tint times a hillshade, sea (no data) pale blue.

    Examples
    --------
    >>> shaded_relief(np.array([[np.nan, 1.0], [2.0, 3.0]]), cellsize=5.0).shape
    (2, 2, 4)
    """
    shade = hillshade(dem, cellsize=cellsize, z_factor=2.0)
    land = np.isfinite(dem)
    low, high = np.array([238.0, 242.0, 226.0]), np.array([214.0, 196.0, 160.0])
    if land.any():
        lo, hi = np.nanpercentile(dem, [2, 98])
        t = np.clip((np.where(land, dem, lo) - lo) / max(hi - lo, 1e-9), 0.0, 1.0)
    else:
        t = np.zeros(dem.shape)
    tint = low + (high - low) * t[..., None]
    rgb = tint * (0.45 + 0.55 * np.nan_to_num(shade, nan=1.0))[..., None]
    rgb = np.where(land[..., None], rgb, np.array(SEA_RGB, dtype="float64"))
    alpha = np.full(dem.shape + (1,), 255.0)
    return np.concatenate([rgb, alpha], axis=-1).round().astype("uint8")


def hillshade_image(path: str | Path, *, name: str, max_size: int = 1024) -> MapImage:
    """The DEM as shaded relief in Web Mercator: the offline base map.

    The hillshade is computed on the warped grid with the ground cell size
    (Mercator cell size times the cosine of the latitude), so slopes are true.

    Examples
    --------
    >>> import tempfile, rasterio
    >>> from affine import Affine
    >>> tif = Path(tempfile.mkdtemp()) / "dem.tif"
    >>> with rasterio.open(tif, "w", driver="GTiff", width=30, height=20, count=1,
    ...                    dtype="float32", crs="EPSG:6681", nodata=-9999,
    ...                    transform=Affine(5, 0, 69340, 0, -5, -100035)) as ds:
    ...     ds.write(np.arange(600, dtype="float32").reshape(1, 20, 30) / 10)
    >>> image = hillshade_image(tif, name="Hillshade")
    >>> image.kind, image.show, image.url.startswith("data:image/png;base64,")
    ('hillshade', True, True)
    """
    values, bounds, cell = read_mercator(path, max_size=max_size, layer="dem")
    latitude = (bounds[0][0] + bounds[1][0]) / 2
    rgba = shaded_relief(values, cellsize=cell * math.cos(math.radians(latitude)))
    return MapImage(name, png_data_uri(rgba), bounds, "hillshade", True)


# --------------------------------------------------------------------------- popups


def _nice_step(span: float, ticks: int = 4) -> float:
    raw = max(span, 1e-9) / ticks
    power = 10 ** math.floor(math.log10(raw))
    return next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)


def _ticks(lo: float, hi: float, ticks: int = 4) -> np.ndarray:
    step = _nice_step(hi - lo, ticks)
    return np.arange(math.ceil(lo / step) * step, hi + step * 1e-6, step)


def _short_label(label: str) -> str:
    """A scenario label without its parenthesis, for chart lines."""
    return label.split(" (")[0].split("（")[0].strip() or label


def profile_svg(
    distance: Sequence[float] | np.ndarray,
    elevation: Sequence[float] | np.ndarray,
    *,
    levels: Sequence[tuple[str, float]] = (),
    lang: str = "en",
    width: int = 340,
    height: int = 170,
    max_points: int = 160,
) -> str:
    """An inline SVG chart of an elevation profile with design water levels as lines.

    Parameters
    ----------
    distance, elevation : array-like
        Metres along the route and ground elevation (m T.P.).
    levels : sequence of (str, float)
        Label (plain text, escaped here) and level (m T.P.) of each line.
    lang : {"en", "ja"}
    width, height : int
        Size in CSS pixels.
    max_points : int
        The profile is thinned to about this many vertices.

    Returns
    -------
    str
        ``<svg>...</svg>``; every label is escaped once.

    Examples
    --------
    >>> svg = profile_svg([0, 100, 200], [3.2, 20.0, 42.0], levels=[("<b>Tsunami</b>", 13.9)])
    >>> svg.startswith("<svg"), "&lt;b&gt;Tsunami&lt;/b&gt;: 13.9 m" in svg, "<b>" in svg
    (True, True, False)
    """
    d, z = np.asarray(distance, "float64"), np.asarray(elevation, "float64")
    keep = np.isfinite(d) & np.isfinite(z)
    d, z = d[keep], z[keep]
    if len(d) > max_points:
        pick = np.unique(np.linspace(0, len(d) - 1, max_points).round().astype(int))
        d, z = d[pick], z[pick]
    t = text(lang)
    values = [v for _, v in levels if np.isfinite(v)]
    zmin = min([0.0, *z.tolist(), *values])
    zmax = max([1.0, *z.tolist(), *values]) * 1.08
    dmax = float(d.max()) if len(d) and d.max() > 0 else 1.0
    box = (42.0, 20.0, width - 10.0, height - 30.0)  # left, top, right, bottom
    sx = (box[2] - box[0]) / dmax
    sy = (box[3] - box[1]) / max(zmax - zmin, 1e-9)

    def x(v: float) -> float:
        return box[0] + v * sx

    def y(v: float) -> float:
        return box[3] - (v - zmin) * sy

    parts = [_svg_axes(box, dmax, zmin, zmax, x, y, t)]
    if len(d):
        line = " ".join(f"{x(a):.1f},{y(b):.1f}" for a, b in zip(d, z))
        ground = f"{x(d[0]):.1f},{box[3]:.1f} {line} {x(d[-1]):.1f},{box[3]:.1f}"
        parts.append(f'<polygon points="{ground}" fill="#e3d3b0" stroke="none"/>'
                     f'<polyline points="{line}" fill="none" stroke="#6b4f2a" '
                     'stroke-width="1.6"/>')
    drawn = [(i, label, level) for i, (label, level) in enumerate(levels) if np.isfinite(level)]
    parts += [_svg_level(i, label, level, box, y, right=j % 2 == 1)
              for j, (i, label, level) in enumerate(drawn)]
    title = escape_html(t["profile"])
    return (f'<svg xmlns="http://www.w3.org/2000/svg" class="siteplan-profile" width="{width}" '
            f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
            f'aria-label="{title}" font-size="10" font-family="sans-serif"><title>{title}</title>'
            + "".join(parts) + "</svg>")


def _svg_axes(box: tuple[float, float, float, float], dmax: float, zmin: float, zmax: float,
              x: Any, y: Any, t: Mapping[str, Any]) -> str:
    left, top, right, bottom = box
    out = [(f'<rect x="{left}" y="{top}" width="{right - left}" height="{bottom - top}" '
           'fill="#fbfbf8" stroke="#999" stroke-width="0.6"/>')]
    for v in _ticks(zmin, zmax):
        out.append(f'<line x1="{left}" x2="{right}" y1="{y(v):.1f}" y2="{y(v):.1f}" '
                   'stroke="#ddd" stroke-width="0.5"/>'
                   f'<text x="{left - 4}" y="{y(v) + 3:.1f}" text-anchor="end">{v:g}</text>')
    for v in _ticks(0.0, dmax):
        out.append(f'<text x="{x(v):.1f}" y="{bottom + 12}" text-anchor="middle">{v:g}</text>')
    out.append(f'<text x="{(left + right) / 2:.1f}" y="{bottom + 25}" text-anchor="middle" '
               f'fill="#444">{escape_html(t["distance"])}</text>'
               f'<text x="4" y="{top - 9}" fill="#444">{escape_html(t["elevation"])}</text>')
    return "".join(out)


def _svg_level(i: int, label: str, level: float, box: tuple[float, float, float, float],
               y: Any, *, right: bool = False) -> str:
    """A design water level: a dashed line and its label (left, or right to avoid overlaps)."""
    colour = LEVEL_COLOURS[i % len(LEVEL_COLOURS)]
    x0, _, x1, _ = box
    anchor = f'x="{x1 - 4}" text-anchor="end"' if right else f'x="{x0 + 4}"'
    return (f'<line x1="{x0}" x2="{x1}" y1="{y(level):.1f}" y2="{y(level):.1f}" '
            f'stroke="{colour}" stroke-width="1.4" stroke-dasharray="6 3"/>'
            f'<text {anchor} y="{y(level) - 3:.1f}" fill="{colour}" paint-order="stroke" '
            f'stroke="#fff" stroke-width="3">{escape_html(label)}: {level:.1f} m</text>')


def scenario_levels(
    sites: pd.DataFrame, scenarios: Sequence[Scenario]
) -> dict[Any, list[tuple[str, float]]]:
    """Each site's design water levels: ``(short scenario label, level m T.P.)``.

    One entry per scenario, in study order (so a scenario keeps its line colour
    on every chart). The level is the hazard stage's ``<scenario>_level`` (the
    run-up, or the lowest ground plus the deepest water); NaN where the scenario
    leaves the site dry. Without that column, the scenario's ``runup`` is used.

    Examples
    --------
    >>> from pipeline.config import Scenario
    >>> s = [Scenario(name="tsunami", kind="tsunami", label="Tsunami (L2)", runup=13.9),
    ...      Scenario(name="flood", kind="flood", depth=Path("f.tif"))]
    >>> frame = pd.DataFrame({"tsunami_level": [13.9], "flood_level": [None]}, index=["S2"])
    >>> scenario_levels(frame, s)
    {'S2': [('Tsunami', 13.9), ('flood', nan)]}
    """
    out: dict[Any, list[tuple[str, float]]] = {site: [] for site in sites.index}
    for scenario in scenarios:
        column = f"{scenario.name}_level"
        if column in sites:
            values = pd.to_numeric(sites[column], errors="coerce")
        elif scenario.runup is not None:
            values = pd.Series(scenario.runup, index=sites.index, dtype="float64")
        else:
            continue
        label = _short_label(scenario.label or scenario.name)
        for site, value in values.items():
            out[site].append((label, float(value)))
    return out


def key_metrics(
    columns: Sequence[str], criteria: Sequence[Criterion], *, lang: str = "en"
) -> list[tuple[str, str]]:
    """The popup's metric rows: ``(column, label)``, lowest ground then each criterion.

    Labels are the criterion's own (as in the comparison table), else
    :func:`pipeline.columns.label`. Without criteria: the ground, every
    scenario margin, the site area and the distance from the centre.

    Examples
    --------
    >>> key_metrics(["ground_min", "tsunami_margin", "site_area"], [], lang="ja")
    [('ground_min', '最低地盤高'), ('tsunami_margin', '標高余裕（tsunami）'), ('site_area', '敷地面積')]
    """
    from pipeline.columns import label

    rows = [("ground_min", label("ground_min", lang))] if "ground_min" in columns else []
    if criteria:
        for c in criteria:
            if c.metric in columns:
                own = c.label_ja if lang == "ja" else c.label
                rows.append((c.metric, own or label(c.metric, lang)))
        return rows
    for column in columns:
        if column.endswith("_margin"):
            scenario = column[: -len("_margin")]
            rows.append((column, f"{label(column, lang)}（{scenario}）" if lang == "ja"
                         else f"{label(column, lang)} ({scenario})"))
    rows += [(c, label(c, lang)) for c in ("site_area", "dist_centre_m") if c in columns]
    return rows


def popup_properties(
    sites: pd.DataFrame,
    rows: Sequence[tuple[str, str]],
    *,
    lang: str = "en",
    profiles: Mapping[Any, str] | None = None,
) -> pd.DataFrame:
    """The escaped feature properties the parcel popups, tooltips and labels are built from.

    Columns: ``name``, ``overall``, ``rank``, ``v<i>`` (value with unit) and
    ``m<i>`` (mark, or ``""``) for each of ``rows``, and ``profile`` (an SVG or
    ``""``). Every text is escaped once; the SVGs are markup built with escaped text.

    Examples
    --------
    >>> sites = pd.DataFrame({"name": ["<i>A</i>"], "tsunami_margin": [28.1],
    ...                       "mark_tsunami_margin": ["◎"], "overall": ["◎"], "rank": [1]})
    >>> props = popup_properties(sites, [("tsunami_margin", "Margin")])
    >>> props.loc[0, ["name", "v0", "m0", "rank"]].tolist()
    ['&lt;i&gt;A&lt;/i&gt;', '28.1 m', '◎', '1']
    """
    from pipeline.columns import describe

    names = _display_names(sites, lang)
    out = pd.DataFrame({"name": names.map(escape_html)}, index=sites.index)
    out["overall"] = sites["overall"].map(escape_html) if "overall" in sites else "—"
    out["rank"] = sites["rank"].map(_rank_text) if "rank" in sites else ""
    for i, (column, _) in enumerate(rows):
        doc = describe(column)
        unit = doc.unit if doc else ""
        out[f"v{i}"] = [escape_html(format_metric(v, unit)) for v in sites[column].tolist()]
        marks = sites.get(f"mark_{column}")
        out[f"m{i}"] = marks.map(escape_html) if marks is not None else ""
    out["profile"] = [(profiles or {}).get(site, "") for site in sites.index]
    return out


def format_metric(value: object, unit: str) -> str:
    """A metric for the popup: :func:`pipeline.report.format_value`, shares always in %,
    and m² / m³ for areas and volumes.

    Examples
    --------
    >>> format_metric(0.0, "share"), format_metric(18700.0, "m2"), format_metric(28.1, "m")
    ('0 %', '18,700 m²', '28.1 m')
    """
    from pipeline.report import format_value

    if unit == "share" and isinstance(value, (int, float, np.number)) \
            and not isinstance(value, (bool, np.bool_)) and np.isfinite(value):
        return f"{float(value) * 100:.0f} %"
    text = format_value(value, unit)
    return text.replace(" m2", " m²").replace(" m3", " m³") if unit in ("m2", "m3") else text


def _rank_text(value: object) -> str:
    try:
        return escape_html(int(value))  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return escape_html(value)


def _display_names(sites: pd.DataFrame, lang: str) -> pd.Series:
    """Site names in ``lang``: ``name_ja`` in Japanese where given, else ``name``, else the id."""
    ids = pd.Series(sites.index.astype(str), index=sites.index)
    names = sites["name"].astype(object) if "name" in sites else ids
    names = names.where(names.notna() & (names.astype(str) != ""), ids)
    if lang == "ja" and "name_ja" in sites:
        ja = sites["name_ja"].astype(object)
        names = ja.where(ja.notna() & (ja.astype(str) != ""), names)
    return names.astype(str)


def site_profiles(
    profiles: pd.DataFrame | None,
    levels: Mapping[Any, Sequence[tuple[str, float]]],
    *,
    lang: str = "en",
    kind: str = "from_centre",
) -> dict[Any, str]:
    """One :func:`profile_svg` per site that has a ``kind`` profile in ``profiles``.

    Examples
    --------
    >>> profiles = pd.DataFrame({"site_id": ["S2", "S2"], "kind": ["from_centre"] * 2,
    ...                          "distance_m": [0.0, 600.0], "elevation_m": [3.2, 44.0]})
    >>> svgs = site_profiles(profiles, {"S2": [("Tsunami", 13.9)]})
    >>> list(svgs), "Tsunami: 13.9 m" in svgs["S2"]
    (['S2'], True)
    """
    if profiles is None or len(profiles) == 0:
        return {}
    mine = profiles[profiles["kind"] == kind].sort_values(["site_id", "distance_m"])
    return {site: profile_svg(group["distance_m"], group["elevation_m"],
                              levels=levels.get(site, ()), lang=lang)
            for site, group in mine.groupby("site_id", sort=False)}


# --------------------------------------------------------------------------- folium elements

_CSS = """
.leaflet-container, .siteplan-popup, .siteplan-legend, .siteplan-title, .siteplan-label {
  font-family: "Segoe UI", "Helvetica Neue", Arial, "Liberation Sans", "DejaVu Sans",
    "Hiragino Sans", "Meiryo", "Noto Sans CJK JP", "IPAPGothic", "IPAGothic", sans-serif; }
.leaflet-control-layers { font-size: 12px; line-height: 1.3; }
.leaflet-control-layers-expanded { padding: 4px 8px 4px 6px; }
.leaflet-control-scale-line:not(:first-child) { display: none; }
.siteplan-popup { font-size: 12px; line-height: 1.35; }
.siteplan-popup-name { font-size: 15px; font-weight: bold; margin-bottom: 2px; }
.siteplan-popup-overall { font-size: 13px; margin-bottom: 6px; }
.siteplan-popup table { border-collapse: collapse; margin-bottom: 6px; }
.siteplan-popup th { text-align: left; font-weight: normal; color: #333; padding: 1px 10px 1px 0; }
.siteplan-popup td { text-align: right; white-space: nowrap; padding: 1px 0 1px 6px; }
.siteplan-popup-profile { font-size: 11px; color: #444; margin-top: 2px; }
.siteplan-mark { display: inline-block; min-width: 1.3em; text-align: center; border-radius: 3px;
  font-weight: bold; padding: 0 2px; font-size: 1.1em; line-height: 1.25; }
.siteplan-legend { background: rgba(255,255,255,0.93); padding: 6px 9px; border-radius: 5px;
  box-shadow: 0 1px 5px rgba(0,0,0,0.35); font-size: 13px; line-height: 1.45; color: #222; }
.siteplan-legend b { display: block; margin-bottom: 2px; }
.siteplan-depth-legend { max-width: 230px; }
.siteplan-legend i { display: inline-block; width: 15px; height: 13px; margin-right: 6px;
  vertical-align: -2px; border: 1px solid #666; }
.siteplan-legend i.line { height: 0; border: 0; border-top-width: 3px; vertical-align: 4px; }
.siteplan-legend i.dot { border-radius: 50%; width: 11px; height: 11px; }
.siteplan-title { position: absolute; top: 10px; left: 50%; transform: translateX(-50%);
  z-index: 1000; background: rgba(255,255,255,0.93); padding: 5px 14px; border-radius: 5px;
  box-shadow: 0 1px 5px rgba(0,0,0,0.35); font-size: 17px; font-weight: bold;
  pointer-events: none; max-width: 55%; text-align: center; }
.siteplan-label-icon { background: none; border: none; }
.siteplan-label { position: absolute; transform: translate(-50%, -100%); white-space: nowrap;
  font-size: 12px; font-weight: bold; color: #111; pointer-events: none;
  text-shadow: 0 0 3px #fff, 0 0 3px #fff, 0 0 2px #fff; }
"""


def _mark_styles() -> dict[str, str]:
    """Inline style of each mark badge: its colour, with white text on the dark ones."""
    dark = {"◎", "×"}
    return {mark: f"background:{colour};color:{'#fff' if mark in dark else '#111'}"
            for mark, colour in MARK_COLOURS.items()}


def _mark_badge(mark: str) -> str:
    """HTML badge of an (escaped) mark."""
    style = _mark_styles().get(mark, "background:#bdbdbd;color:#111")
    return f'<span class="siteplan-mark" style="{style}">{mark}</span>'


def _template(source: str) -> Any:
    from jinja2 import Template

    return Template(source)


_POPUP_JS = """
{% macro script(this, kwargs) %}
{{ this._parent.get_name() }}.bindPopup(function (layer) {
    var p = layer.feature.properties, t = {{ this.words|tojson }};
    var styles = {{ this.styles|tojson }}, labels = {{ this.labels|tojson }};
    function badge(m) {
        return m ? '<span class="siteplan-mark" style="' + (styles[m] || "background:#bdbdbd")
            + '">' + m + "</span>" : "";
    }
    var rows = "";
    for (var i = 0; i < labels.length; i++) {
        rows += "<tr><th>" + labels[i] + "</th><td>" + p["v" + i] + "</td><td>"
            + badge(p["m" + i]) + "</td></tr>";
    }
    return '<div class="siteplan-popup"><div class="siteplan-popup-name">' + p.name + "</div>"
        + '<div class="siteplan-popup-overall">' + t.overall + " " + badge(p.overall)
        + (p.rank ? " &middot; " + t.rank + " " + p.rank : "") + "</div>"
        + (labels.length ? "<table>" + rows + "</table>" : "")
        + (p.profile ? '<div class="siteplan-popup-profile">' + t.profile + "</div>" + p.profile
           : "")
        + "</div>";
}, {{ this.options|tojson }});
{% endmacro %}
"""

_LEGEND_JS = """
{% macro script(this, kwargs) %}
var {{ this.get_name() }} = L.control({position: {{ this.position|tojson }}});
{{ this.get_name() }}.onAdd = function () {
    var div = L.DomUtil.create("div", {{ this.css_class|tojson }});
    div.id = {{ this.element_id|tojson }};
    div.innerHTML = {{ this.html|tojson }};
    L.DomEvent.disableClickPropagation(div);
    return div;
};
{%- if this.layer %}
(function (map, layer, legend) {
    if (map.hasLayer(layer)) { legend.addTo(map); }
    map.on("overlayadd", function (e) { if (e.layer === layer) { legend.addTo(map); } });
    map.on("overlayremove", function (e) { if (e.layer === layer) { legend.remove(); } });
})({{ this._parent.get_name() }}, {{ this.layer }}, {{ this.get_name() }});
{%- else %}
{{ this.get_name() }}.addTo({{ this._parent.get_name() }});
{%- endif %}
{% endmacro %}
"""

_PAGE_HTML = """
{% macro header(this, kwargs) %}<style>{{ this.css }}</style>{% endmacro %}
{% macro html(this, kwargs) %}
{%- if this.title -%}
<div class="siteplan-title" id="siteplan-title">{{ this.title }}</div>
{%- endif %}
{% endmacro %}
"""


@functools.cache
def _elements() -> dict[str, type]:
    """The MacroElement classes, built on first use (importing this module stays light)."""
    from branca.element import MacroElement

    class ParcelPopup(MacroElement):  # type: ignore[misc]
        """Binds to a GeoJson layer a popup built from pre-escaped feature properties."""

        _template = _template(_POPUP_JS)

        def __init__(self, labels: Sequence[str], words: Mapping[str, str]) -> None:
            super().__init__()
            self._name = "ParcelPopup"
            self.labels = list(labels)
            self.words = dict(words)
            self.styles = _mark_styles()
            self.options = {"maxWidth": 420, "minWidth": 300,  # clear of the title box
                            "autoPanPaddingTopLeft": [50, 60],
                            "autoPanPaddingBottomRight": [20, 20]}

    class Legend(MacroElement):  # type: ignore[misc]
        """A legend as a Leaflet control; shown while ``layer`` is on, when given."""

        _template = _template(_LEGEND_JS)

        def __init__(self, html: str, *, element_id: str, position: str = "bottomright",
                     layer: str = "", css_class: str = "siteplan-legend") -> None:
            super().__init__()
            self._name = "Legend"
            self.html, self.element_id, self.position = html, element_id, position
            self.layer, self.css_class = layer, css_class

    class Page(MacroElement):  # type: ignore[misc]
        """The page's stylesheet and its (escaped) title."""

        _template = _template(_PAGE_HTML)

        def __init__(self, title: str) -> None:
            super().__init__()
            self._name = "SiteplanPage"
            self.css, self.title = _CSS, title

    return {"ParcelPopup": ParcelPopup, "Legend": Legend, "Page": Page}


# --------------------------------------------------------------------------- map layers


def _to_wgs84(frame: gpd.GeoDataFrame, *, simplify: float = 0.0, digits: int = 6
              ) -> gpd.GeoDataFrame:
    """``frame`` in EPSG:4326 for drawing, simplified first in its metric CRS, rounded."""
    import shapely

    out = frame
    if simplify > 0 and frame.crs is not None and frame.crs.is_projected:
        out = frame.set_geometry(frame.geometry.simplify(simplify, preserve_topology=True))
    out = out.to_crs(4326)
    rounded = shapely.transform(out.geometry.values, lambda xy: np.round(xy, digits))
    return out.set_geometry(rounded, crs=4326)


_PANES = {"hillshade": ("siteplan-hillshade", 150), "depth": ("siteplan-depth", 350)}
"""Map panes of the raster images: the hillshade under the tiles' pane (200), the depth
overlays between the tiles and the vectors (400), so that an image switched off and on
again is not drawn over the parcels."""


def _add_panes(m: folium.Map) -> None:
    from folium.map import CustomPane

    for name, z_index in _PANES.values():
        CustomPane(name, z_index=z_index, pointer_events=False).add_to(m)


def _image_overlay(image: MapImage, *, opacity: float = 0.75) -> Any:
    from folium.raster_layers import ImageOverlay

    return ImageOverlay(image.url, bounds=[list(image.bounds[0]), list(image.bounds[1])],
                        name=escape_html(image.name), show=image.show, pixelated=False,
                        opacity=1.0 if image.kind == "hillshade" else opacity, interactive=False,
                        pane=_PANES[image.kind][0])


def _add_parcels(m: folium.Map, sites: gpd.GeoDataFrame, props: pd.DataFrame,
                 rows: Sequence[tuple[str, str]], t: Mapping[str, Any]) -> Any:
    import folium

    data = _to_wgs84(sites[[sites.geometry.name]].join(props))
    layer = folium.GeoJson(
        data, name=escape_html(t["parcels"]),
        style_function=lambda f: {
            "color": "#222", "weight": 1.5, "fillOpacity": 0.72,
            "fillColor": MARK_COLOURS.get(f["properties"]["overall"], MARK_COLOURS["—"])},
        highlight_function=lambda f: {"weight": 3.5, "color": "#000"},
        tooltip=folium.GeoJsonTooltip(fields=["name"], labels=False),
        zoom_on_click=False,
    )
    words = {"overall": escape_html(t["overall"]), "rank": escape_html(t["rank"]),
             "profile": escape_html(t["profile"])}
    _elements()["ParcelPopup"]([escape_html(label) for _, label in rows], words).add_to(layer)
    return layer.add_to(m)


def _add_labels(m: folium.Map, sites: gpd.GeoDataFrame, props: pd.DataFrame,
                t: Mapping[str, Any]) -> None:
    """Permanent labels (mark and name) above each parcel, so its colour stays visible."""
    import folium
    import geopandas as gpd

    b = sites.bounds
    tops = gpd.points_from_xy((b["minx"] + b["maxx"]) / 2, b["maxy"], crs=sites.crs)
    points = _to_wgs84(gpd.GeoDataFrame(geometry=tops, index=sites.index))
    group = folium.FeatureGroup(name=escape_html(t["labels"])).add_to(m)
    for site, point in points.geometry.items():
        html = (f'<div class="siteplan-label">{_mark_badge(props.at[site, "overall"])} '
                f'{props.at[site, "name"]}</div>')
        folium.Marker([point.y, point.x], interactive=False, keyboard=False,
                      icon=folium.DivIcon(html=html, class_name="siteplan-label-icon",
                                          icon_size=(0, 0))).add_to(group)


def _add_lines(m: folium.Map, frame: gpd.GeoDataFrame, labels: pd.Series, *, name: str,
               style: Any, show: bool = True, simplify: float = 0.5) -> Any:
    """A GeoJson layer of lines or areas with an escaped tooltip ``label`` per feature."""
    import folium

    data = _to_wgs84(frame[[frame.geometry.name]].assign(label=labels.map(escape_html),
                                                         **_style_columns(frame)),
                     simplify=simplify)
    return folium.GeoJson(data, name=escape_html(name), style_function=style, show=show,
                          tooltip=folium.GeoJsonTooltip(fields=["label"], labels=False),
                          zoom_on_click=False).add_to(m)


def _style_columns(frame: gpd.GeoDataFrame) -> dict[str, Any]:
    """Numeric style inputs carried into the GeoJson (kind, minutes, width), plain types."""
    out: dict[str, Any] = {}
    if "kind" in frame:
        out["kind"] = frame["kind"].astype(str).map(escape_html)
    if "minutes" in frame:
        out["minutes"] = pd.to_numeric(frame["minutes"], errors="coerce").fillna(0).astype(float)
    if "_width" in frame:
        out["w"] = frame["_width"].astype(float)
    return out


def _route_style(feature: Mapping[str, Any]) -> dict[str, Any]:
    if feature["properties"].get("kind") == "from_street":
        return {"color": "#e66101", "weight": 3.5, "dashArray": "7 5", "opacity": 0.95}
    return {"color": "#1f4e9c", "weight": 4, "opacity": 0.9}


def _isochrone_style(feature: Mapping[str, Any]) -> dict[str, Any]:
    minutes = feature["properties"].get("minutes", 15.0)
    shade = {5.0: "#0868ac", 10.0: "#43a2ca"}.get(minutes, "#7bccc4")
    return {"color": shade, "weight": 1, "fillColor": shade, "fillOpacity": 0.1, "opacity": 0.5}


def _road_style(feature: Mapping[str, Any]) -> dict[str, Any]:
    width = feature["properties"].get("w", 6.0)
    return {"color": "#6e6e6e", "weight": float(np.clip(width / 2.0, 1.5, 6.0)), "opacity": 0.9}


def _add_roads(m: folium.Map, roads: gpd.GeoDataFrame | None, t: Mapping[str, Any], *,
               name_column: str, width_column: str) -> None:
    if roads is None or len(roads) == 0:
        return
    names = roads[name_column] if name_column in roads else pd.Series("", index=roads.index)
    width = pd.to_numeric(roads[width_column], errors="coerce") if width_column in roads \
        else pd.Series(np.nan, index=roads.index)
    frame = roads.assign(_width=width.fillna(6.0))
    _add_lines(m, frame, names.astype(object), name=t["roads"], style=_road_style)


def _add_routes(m: folium.Map, routes: gpd.GeoDataFrame | None, names: pd.Series,
                t: Mapping[str, Any]) -> None:
    if routes is None or len(routes) == 0:
        return
    site = routes["site_id"].map(names).fillna(routes["site_id"].astype(str))
    words = routes["kind"].map({"from_centre": t["from_centre"],
                                "from_street": t["from_street"]}).fillna(routes["kind"])
    length = routes.geometry.length.map(lambda v: f"{v:,.0f} m")
    _add_lines(m, routes, site + ": " + words + ", " + length, name=t["routes"],
               style=_route_style)


def _add_isochrones(m: folium.Map, isochrones: gpd.GeoDataFrame | None, names: pd.Series,
                    t: Mapping[str, Any]) -> None:
    if isochrones is None or len(isochrones) == 0:
        return
    frame = isochrones.sort_values("minutes", ascending=False)
    site = frame["site_id"].map(names).fillna(frame["site_id"].astype(str))
    label = site + ": " + frame["minutes"].map(lambda v: f"{v:g}") + " " + t["walk"]
    minutes = "/".join(f"{v:g}" for v in sorted(frame["minutes"].unique()))
    _add_lines(m, frame, label, name=f"{t['isochrones']} ({minutes} min)",
               style=_isochrone_style, show=False, simplify=2.0)


def _add_places(m: folium.Map, poi: gpd.GeoDataFrame | None, t: Mapping[str, Any], *,
                name_column: str, kind_column: str) -> None:
    """The town centre, shelters and other points as circle markers (no icon images)."""
    import folium

    if poi is None or len(poi) == 0:
        return
    group = folium.FeatureGroup(name=escape_html(t["places"])).add_to(m)
    points = _to_wgs84(poi)
    for _, row in points.iterrows():
        kind = str(row.get(kind_column, "") or "")
        name = escape_html(row.get(name_column, ""))
        detail = escape_html(t["kinds"].get(kind, kind.replace("_", " ")))
        capacity = row.get("capacity")
        if capacity is not None and pd.notna(capacity) and float(capacity) > 0:
            detail += f", {escape_html(t['capacity'])} {escape_html(int(capacity))}"
        folium.CircleMarker(
            [row.geometry.y, row.geometry.x], radius=9 if kind == "town_centre" else 7,
            color="#fff", weight=2, fill=True, fill_opacity=0.95,
            fill_color=POI_COLOURS.get(kind, "#444444"),
            tooltip=folium.Tooltip(name), popup=folium.Popup(f"<b>{name}</b><br>{detail}"),
        ).add_to(group)


def _marks_legend(t: Mapping[str, Any], *, routes: bool, places: bool) -> str:
    rows = [f"<b>{escape_html(t['legend'])}</b>"]
    rows += [f'<i style="background:{MARK_COLOURS[mark]}"></i>{escape_html(mark)} '
             f"{escape_html(word)}" for mark, word in t["marks"].items() if mark != "—"]
    if routes:
        rows += [(f'<i class="line" style="border-top:3px solid #1f4e9c"></i>'
                 f"{escape_html(t['from_centre'])}"),
                 (f'<i class="line" style="border-top:3px dashed #e66101"></i>'
                 f"{escape_html(t['from_street'])}")]
    if places:
        rows += [f'<i class="dot" style="background:{colour}"></i>'
                 f"{escape_html(t['kinds'][kind])}" for kind, colour in POI_COLOURS.items()]
    return rows[0] + "".join(f"<div>{row}</div>" for row in rows[1:])


def _depth_legend(name: str, lang: str) -> str:
    rows = [f"<b>{escape_html(name)}</b>"]
    rows += [f'<i style="background:{colour}"></i>{escape_html(label)}'
             for colour, label in depth_legend_labels(lang)]
    return rows[0] + "".join(f"<div>{row}</div>" for row in rows[1:])


def _fit(m: folium.Map, *frames: gpd.GeoDataFrame | None) -> None:
    boxes = [_to_wgs84(f).total_bounds for f in frames if f is not None and len(f)]
    west, south = min(b[0] for b in boxes), min(b[1] for b in boxes)
    east, north = max(b[2] for b in boxes), max(b[3] for b in boxes)
    pad_x, pad_y = (east - west) * 0.08 + 1e-4, (north - south) * 0.08 + 1e-4
    m.fit_bounds([[south - pad_y, west - pad_x], [north + pad_y, east + pad_x]],
                 padding_top_left=(20, 50), padding_bottom_right=(330, 20))


def map_from_frames(
    sites: gpd.GeoDataFrame,
    *,
    routes: gpd.GeoDataFrame | None = None,
    isochrones: gpd.GeoDataFrame | None = None,
    profiles: pd.DataFrame | None = None,
    rasters: Sequence[MapImage] = (),
    roads: gpd.GeoDataFrame | None = None,
    poi: gpd.GeoDataFrame | None = None,
    criteria: Sequence[Criterion] = (),
    scenarios: Sequence[Scenario] = (),
    title: str = "",
    lang: str = "en",
    offline: bool = True,
    road_columns: tuple[str, str] = ("name", "width"),
    poi_columns: tuple[str, str] = ("name", "kind"),
    labels: bool | None = None,
    prefer_canvas: bool | None = None,
) -> folium.Map:
    """Build the council map from frames and rendered rasters (no file is read or written).

    Parameters
    ----------
    sites : GeoDataFrame
        One row per parcel, indexed by site id, in a projected CRS: ``name``
        (and ``name_ja``), the metrics, ``mark_<metric>``, ``overall``, ``rank``
        (the score stage's sites table).
    routes : GeoDataFrame, optional
        Access routes: ``site_id``, ``kind`` (``from_centre``/``from_street``), lines.
    isochrones : GeoDataFrame, optional
        Walking isochrones: ``site_id``, ``minutes``, polygons.
    profiles : DataFrame, optional
        ``site_id, kind, distance_m, elevation_m``; the ``from_centre`` profile
        becomes the popup chart.
    rasters : sequence of MapImage
        Depth overlays (``kind="depth"``) and at most one hillshade (the offline base).
    roads, poi : GeoDataFrame, optional
        Road lines and points (town centre, shelters).
    criteria, scenarios : sequence
        The study's criteria (popup rows) and scenarios (design water levels).
    title : str
        Plain text; escaped here.
    lang : {"en", "ja"}
    offline : bool
        Offline, no tile layer is shown at load and the hillshade is the base.
    road_columns, poi_columns : (str, str)
        ``(name, width)`` of roads and ``(name, kind)`` of points.
    labels : bool, optional
        Permanent site labels; by default when there are at most 50 sites.
    prefer_canvas : bool, optional
        Draw vectors on a canvas; by default beyond 2,000 sites.

    Returns
    -------
    folium.Map
        Save it with :func:`pipeline.offline.save_offline`.

    Examples
    --------
    >>> import geopandas as gpd
    >>> from shapely.geometry import box
    >>> sites = gpd.GeoDataFrame({"name": ["<b>Hill</b>"], "overall": ["◎"], "rank": [1]},
    ...                          geometry=[box(70000, -101000, 70100, -100900)],
    ...                          index=pd.Index(["S2"], name="site_id"), crs=6681)
    >>> m = map_from_frames(sites, title="Demo")
    >>> parcels = [c for c in m._children.values() if type(c).__name__ == "GeoJson"][0]
    >>> parcels.data["features"][0]["properties"]["name"]
    '&lt;b&gt;Hill&lt;/b&gt;'
    >>> "<b>Hill" in m.get_root().render()
    False
    """
    import folium

    from pipeline.offline import add_basemaps

    t = text(lang)
    m = folium.Map(tiles=None, control_scale=True, zoom_snap=0.25, zoom_delta=0.5,
                   prefer_canvas=len(sites) > 2000 if prefer_canvas is None else prefer_canvas)
    _add_panes(m)
    hill = [r for r in rasters if r.kind == "hillshade"]
    add_basemaps(m, offline=offline, fallback=_image_overlay(hill[0]) if hill else None)
    depth = [(r, _image_overlay(r).add_to(m)) for r in rasters if r.kind == "depth"]
    names = _display_names(sites, lang)
    _add_isochrones(m, isochrones, names, t)
    _add_roads(m, roads, t, name_column=road_columns[0], width_column=road_columns[1])
    _add_routes(m, routes, names, t)
    rows = key_metrics(list(sites.columns), criteria, lang=lang)
    svgs = site_profiles(profiles, scenario_levels(sites, scenarios), lang=lang)
    props = popup_properties(sites, rows, lang=lang, profiles=svgs)
    _add_parcels(m, sites, props, rows, t)
    if labels if labels is not None else len(sites) <= 50:
        _add_labels(m, sites, props, t)
    _add_places(m, poi, t, name_column=poi_columns[0], kind_column=poi_columns[1])
    _add_legends(m, depth, t, lang, routes=routes is not None and len(routes) > 0,
                 places=poi is not None and len(poi) > 0)
    m.get_root().add_child(_elements()["Page"](escape_html(title)))
    folium.LayerControl(collapsed=False).add_to(m)
    _fit(m, sites, routes)
    return m


def _add_legends(m: folium.Map, depth: Sequence[tuple[MapImage, Any]], t: Mapping[str, Any],
                 lang: str, *, routes: bool, places: bool) -> None:
    legend = _elements()["Legend"]
    legend(_marks_legend(t, routes=routes, places=places),
           element_id="siteplan-legend").add_to(m)
    for i, (image, layer) in enumerate(depth):
        legend(_depth_legend(image.name, lang), element_id=f"siteplan-depth-legend-{i}",
               position="bottomleft", layer=layer.get_name(),
               css_class="siteplan-legend siteplan-depth-legend").add_to(m)


# --------------------------------------------------------------------------- the stage


def _read_outputs(ctx: Any) -> dict[str, Any]:
    """The score stage's sites table and the access stage's routes, isochrones, profiles."""
    import geopandas as gpd

    from pipeline.errors import InputNotFoundError

    path = ctx.output / "sites.gpkg"
    if not path.exists():
        raise InputNotFoundError(f"maps stage: {path} is missing; run the score stage first "
                                 "(`siteplan score`)")
    sites = gpd.read_file(path, layer="sites", engine="pyogrio").set_index("site_id")
    out: dict[str, Any] = {"sites": sites.to_crs(ctx.crs)}
    for key in ("routes", "isochrones"):
        p = ctx.stage_path(key, ".gpkg")
        out[key] = gpd.read_file(p, engine="pyogrio").to_crs(ctx.crs) if p.exists() else None
    profiles = ctx.stage_path("profiles")
    out["profiles"] = pd.read_parquet(profiles) if profiles.exists() else None
    out["roads"] = ctx.roads
    out["poi"] = ctx.vector("poi", "point")
    return out


def _map_rasters(ctx: Any, lang: str, *, max_size: int = 1024) -> list[MapImage]:
    """The hillshade and one depth overlay per scenario with a depth raster (first shown)."""
    t = text(lang)
    images = [hillshade_image(ctx.dem, name=t["hillshade"], max_size=max_size)]
    depth = [s for s in ctx.study.scenario if s.depth is not None]
    for i, scenario in enumerate(depth):
        name = f"{t['depth']}: {scenario.label or scenario.name}"
        images.append(depth_image(scenario.depth, name=name, max_size=max_size, show=i == 0,
                                  wet_threshold=ctx.study.hazard.wet_threshold))
    return images


def _write_map(m: folium.Map, path: Path, *, offline: bool) -> Path:
    from pipeline._io import write_atomic
    from pipeline.offline import save_offline

    if offline:
        return save_offline(m, path)
    return write_atomic(path, lambda tmp: m.save(str(tmp)))


def run_stage(ctx: Any) -> tuple[dict[str, Path], str]:
    """The ``maps`` stage: ``index.html`` (offline by default) and the PNG figures.

    Parameters
    ----------
    ctx : pipeline.runner.Context

    Returns
    -------
    (dict of str to Path, str)
        ``{"map", "overlay", "profiles"}`` paths and a one-line summary.
    """
    from pipeline import figures

    study = ctx.study
    lang = ctx.options.lang or study.study.lang
    offline = study.maps.offline if ctx.options.offline is None else ctx.options.offline
    frames = _read_outputs(ctx)
    rasters = _map_rasters(ctx, lang)
    roads_spec, poi_spec = study.layers.roads, study.layers.poi
    m = map_from_frames(
        frames["sites"], routes=frames["routes"], isochrones=frames["isochrones"],
        profiles=frames["profiles"], rasters=rasters, roads=frames["roads"], poi=frames["poi"],
        criteria=study.criterion, scenarios=study.scenario,
        title=study.maps.title or study.study.name, lang=lang, offline=offline,
        road_columns=(roads_spec.name_column, roads_spec.width_column) if roads_spec
        else ("name", "width"),
        poi_columns=(poi_spec.name_column, poi_spec.kind_column) if poi_spec
        else ("name", "kind"))
    paths = {"map": _write_map(m, ctx.output / "index.html", offline=offline)}
    paths.update(figures.write_figures(ctx, frames, lang=lang))
    size = paths["map"].stat().st_size
    summary = (f"index.html {size / 1e6:.2f} MB ({'offline' if offline else 'online'}): "
               f"{len(frames['sites'])} parcels, {len(rasters) - 1} depth overlay(s); "
               "figures/overlay.png, figures/profiles.png")
    return paths, summary
