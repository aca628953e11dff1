"""The bundled default study: a synthetic coastal town modelled on Hamanaka (Kiritappu).

:func:`write_demo_layers` writes every input layer of the default study (DEM, hazard
depths, parcels, roads, points of interest, population) into a folder, in about a
second. Nothing is random at run time: the layout is written down below, the little
terrain noise there is comes from a fixed seed, and two runs give identical rasters
(byte for byte) and identical frames. Elevations and depths are rounded to 1 cm, as in
the GSI DEM.

The place
---------
A 3.0 km x 2.5 km square of 5 m pixels in EPSG:6681 (JGD2011 / plane rectangular
zone XIII) whose town-centre point sits at about 43.08 N, 145.12 E (Kiritappu,
Hamanaka, Hokkaido); its south-west corner is the projection of that point, less the
local offset of the town centre, rounded to 5 m, so every design vertex below (local
metres east ``u`` and north ``v`` of that corner, multiples of 5) lies on pixel
edges. The landforms are invented; the numbers they produce are the published ones.

* **Sea** to the south (no data, as in the GSI DEM), behind a wavy coast at
  v = 245-295 m and a 90 m beach.
* **Low town**: a coastal plain at 3.2 m T.P. (the current hall's ground), rising
  east of u = 1500 m to 6.6 m and 8.5 m where the spa road and site 1's road leave
  the central street, and on an apron north of the street up to 16 m in front of
  site 1.
* **Bluff and upland** north of v = 750-800 m: a 10 m bluff, then ground rising
  inland at 8.6 % easing to 60 m above the plain, with a steep knoll behind site 1,
  a round hill under site 2, a gentle rise under site 3 and the knoll of the
  existing shelter at the top of the evacuation road.
* **River** in a 260 m wide valley at u = 470 m whose floor climbs 0.5 % inland,
  with a 1.5 m deep channel.

The published figures (planning-facts.md section 1) and how they are built in
-----------------------------------------------------------------------------
* Run-up 13.9 m: ``tsunami_depth.tif`` = 13.9 - ground on land below 13.9 m that
  is connected to the sea (10.7 m at the current hall, 0 on the three candidates).
* Ground 16 / 42 / 45 m (minimum DEM value inside the parcel): each candidate
  has a band at least 15 m wide along its low edge that is exactly at that level
  (site 1: its front edge only; sites 2 and 3: all round, and site 2's edge rises
  to 44 m at its entrance); inside the band the natural ground fades in.
* Areas 15,000 / 18,700 / 17,000 m2: exact, with pixel-aligned edges.
* Cut 630,000 / 135,000 / 130,000 m3 at pads 16 / 42 / 45 m: the knoll behind
  site 1 rises steeply to ~79 m within the parcel; the hills under sites 2 and 3
  reach ~64 m and ~70 m. Their heights were tuned to give the published cuts
  (within 0.5 %). The published fills (2,500 / 9,000 / 15,000 m3) are *not*
  reproduced: with the pad at the lowest ground, fill is zero by definition.
* Routes from the central street (network distance to the parcel boundary, mean
  grade): site 1 100 m at 7.5 % (8.5 -> 16.0 m); site 2 600 m at 6.8 % along the
  675 m evacuation road (5.5 m carriageway, from the town's 3.2 m) and its branch,
  reaching the site's edge at 44.0 m (at 42.0 m the route would have to start at
  1.2 m, below the town); site 3 600 m at 6.4 % along the spa road (6.6 ->
  45.0 m). An entrance placed mid-contact (the last 5 m of road) is 2.5 m shorter.
  Each hill road is carved into the DEM: within 15 m of its centre line the ground
  follows the road's linear profile, blending into the terrain over the next 35 m,
  so the grade sampled along the road is that constant value. Where the site-2
  branch leaves the evacuation road both corridors are tilted across onto one
  plane, so both stay linear through the junction. Lengths are solved for, and
  roads share a vertex wherever they meet or cross.
* Entrances: site 3 has two (the spa road and a link from the top of the
  evacuation road, ~130 m apart); sites 1 and 2 one. Roads end on the boundary.
* Evacuation population 1,080 people (``population.gpkg``); the other shelter
  takes 500 (``poi.gpkg``).
* River flood: the planned-scale (L1) and maximum-scale (L2) water surfaces lie
  1.0 m and 3.0 m above the valley floor at the river, so the riverside site
  (lowest ground 4.2 m) floods up to 1.0 m and 3.0 m; the surface is lowered by
  2 % per metre beyond 150 m from the river, which keeps the town dry.
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import shapely

logger = logging.getLogger(__name__)

DEMO_CRS = "EPSG:6681"
"""CRS of every demo layer except ``poi.gpkg`` (EPSG:4326 on purpose)."""

DEMO_FILES: tuple[str, ...] = (
    "dem.tif", "tsunami_depth.tif", "flood_planned.tif", "flood_max.tif",
    "parcels.gpkg", "roads.gpkg", "poi.gpkg", "population.gpkg",
)
"""Names of the files :func:`write_demo_layers` writes."""

STUDY_BBOX_LONLAT: tuple[float, float, float, float] = (145.10147, 43.07357, 145.13864, 43.09637)
"""Study bounds (west, south, east, north) in degrees, rounded outwards to 1e-5."""

NODATA = -9999.0
RUNUP = 13.9
PIXEL = 5.0
_SIZE = (3000.0, 2500.0)                 # local extent (m): u east, v north
_ANCHOR_LONLAT = (145.12, 43.08)         # Kiritappu
_ANCHOR_LOCAL = (1500.0, 700.0)          # the town-centre point on the central street
_SEED = 6681
_CORRIDOR, _BLEND = 15.0, 35.0           # hill roads: exact profile, then blend (m)
_PEOPLE = 1080


@dataclass(frozen=True)
class _Road:
    """A road in local metres, with its Japanese name and, for hill roads, its profile."""

    name: str
    name_ja: str
    line: shapely.LineString
    width: float
    oneway: bool = False
    z: tuple[float, float] | None = None   # elevations at start and end (carved roads)
    cross: float = 0.0                     # cross slope of the carved corridor (+ = left up)


@dataclass(frozen=True)
class _Site:
    """A parcel in local metres and its attributes."""

    site_id: str
    name: str
    name_ja: str
    polygon: shapely.Polygon
    zone_kind: str
    coverage_ratio: float
    far: float
    pad: float
    corner: bool


# --------------------------------------------------------------------------- public API


def study_origin() -> tuple[float, float]:
    """South-west corner of the demo grid in EPSG:6681, a multiple of 5 m.

    Returns
    -------
    tuple of float
        ``(x, y)``: the projected Kiritappu point (145.12 E, 43.08 N) minus the local
        offset of the town centre, rounded to 5 m.

    Examples
    --------
    >>> study_origin()
    (69340.0, -102535.0)
    """
    from pyproj import Transformer

    to_plane = Transformer.from_crs("EPSG:4326", DEMO_CRS, always_xy=True)
    x, y = to_plane.transform(*_ANCHOR_LONLAT)
    return (PIXEL * round((x - _ANCHOR_LOCAL[0]) / PIXEL),
            PIXEL * round((y - _ANCHOR_LOCAL[1]) / PIXEL))


def study_bounds(crs: str = DEMO_CRS) -> tuple[float, float, float, float]:
    """Bounds ``(west, south, east, north)`` of the demo grid.

    Parameters
    ----------
    crs : str, default ``"EPSG:6681"``
        CRS of the answer; any other CRS gets the transformed (densified) bounds.

    Returns
    -------
    tuple of float

    Examples
    --------
    >>> study_bounds()
    (69340.0, -102535.0, 72340.0, -100035.0)
    >>> [round(b, 3) for b in study_bounds("EPSG:4326")]
    [145.101, 43.074, 145.139, 43.096]
    """
    x0, y0 = study_origin()
    bounds = (x0, y0, x0 + _SIZE[0], y0 + _SIZE[1])
    if crs == DEMO_CRS:
        return bounds
    from pyproj import Transformer

    west, south, east, north = Transformer.from_crs(DEMO_CRS, crs, always_xy=True) \
        .transform_bounds(*bounds, densify_pts=21)
    return (west, south, east, north)


def write_demo_layers(folder: Path) -> dict[str, Path]:
    """Write the demo study's layers into ``folder``, replacing files of the same name.

    Parameters
    ----------
    folder : Path
        Destination folder; created when missing.

    Returns
    -------
    dict of str to Path
        File name (see :data:`DEMO_FILES`) to written path.

    Examples
    --------
    >>> import tempfile
    >>> paths = write_demo_layers(Path(tempfile.mkdtemp()))
    >>> sorted(paths) == sorted(DEMO_FILES)
    True
    """
    from rasterio.transform import Affine

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    x0, y0 = study_origin()
    transform = Affine(PIXEL, 0.0, x0, 0.0, -PIXEL, y0 + _SIZE[1])
    sites, roads = _sites(), _roads()
    rasters = _rasters(sites, roads)
    paths = {name: folder / name for name in DEMO_FILES}
    for name, array in rasters.items():
        _write_raster(paths[name], array, transform)
    frames = {
        "parcels": _parcels_frame(sites, (x0, y0)),
        "roads": _roads_frame(roads, (x0, y0)),
        "poi": _poi_frame((x0, y0)),
        "population": _population_frame(sites, roads, (x0, y0)),
    }
    for layer, frame in frames.items():
        _write_gpkg(frame, paths[f"{layer}.gpkg"], layer)
    logger.info("demo layers: %d files in %s (%d x %d pixels, %d parcels, %d roads, %d people)",
                len(paths), folder, *rasters["dem.tif"].shape[::-1], len(sites), len(roads),
                _PEOPLE)
    return paths


# --------------------------------------------------------------------------- layout: parcels


@functools.cache
def _sites() -> tuple[_Site, ...]:
    """The current hall, the three published candidates and the riverside site."""
    box = shapely.box
    s2 = box(1390, 1030, 1540, 1160).difference(box(1390, 1120, 1410, 1160))   # 18,700 m2
    s3 = box(1900, 1240, 2040, 1365).difference(box(2020, 1340, 2040, 1365))   # 17,000 m2
    return (
        _Site("S0", "Current town hall (Kiritappu)", "現庁舎", box(1150, 620, 1250, 670),
              "other", 0.8, 2.0, 3.2, True),
        _Site("S1", "Site 1: next to town (bluff)", "候補地1", box(2240, 800, 2360, 925),
              "residential", 0.6, 2.0, 16.0, False),
        _Site("S2", "Site 2: hilltop", "候補地2", s2, "other", 0.6, 2.0, 42.0, False),
        _Site("S3", "Site 3: next to spa Yuyu", "候補地3", s3, "other", 0.6, 2.0, 45.0, False),
        _Site("S4", "Riverside site", "河川沿い候補地", box(490, 950, 570, 1050),
              "residential", 0.6, 2.0, 4.2, False),
    )


# --------------------------------------------------------------------------- layout: roads

_CENTRAL_V = 700.0
_NS_STREETS = (950.0, 1100.0, 1400.0, 1650.0, 1850.0)   # town streets running north-south
_EW_STREETS = (470.0, 580.0)                           # and east-west
_A, _B, _P1 = (1300.0, 700.0), (2050.0, 700.0), (2300.0, 700.0)   # hill roads leave here
_Z_A, _Z_B, _Z_P1 = 3.2, 6.6, 8.5                       # central street at those points
_EVAC_LENGTH, _EVAC_HEADING = 675.0, math.atan2(501.5, 451.6)   # north-east, up the bluff
_EVAC_END = (_A[0] + _EVAC_LENGTH * math.cos(_EVAC_HEADING),      # the existing shelter
             _A[1] + _EVAC_LENGTH * math.sin(_EVAC_HEADING))


@functools.cache
def _roads() -> tuple[_Road, ...]:
    """Town streets plus the hill roads (with their carved profiles)."""
    return _town_streets() + _hill_roads()


def _town_streets() -> tuple[_Road, ...]:
    """Central street, a grid of town streets, the hall's lane and the riverside road.

    Streets share a vertex wherever they cross, so a network builder joins them
    whether or not it joins plain crossings.
    """
    line = shapely.LineString
    stops = sorted({600.0, 1200.0, 1500.0, 2400.0, _A[0], _B[0], _P1[0], *_NS_STREETS})
    roads = [_Road("Central street", "中央通り", line([(u, _CENTRAL_V) for u in stops]), 10.0)]
    for i, u in enumerate(_NS_STREETS, start=1):
        vs = [420.0, *_EW_STREETS, _CENTRAL_V, 730.0]
        roads.append(_Road(f"Street {i}", f"{i}丁目通り", line([(u, v) for v in vs]), 6.0))
    for v, name, ja, oneway in zip(_EW_STREETS, ("Harbour street", "Shore street"),
                                   ("港通り", "浜通り"), (True, False), strict=True):
        us = [900.0, *_NS_STREETS, 1900.0]
        roads.append(_Road(name, ja, line([(u, v) for u in us]), 6.0, oneway))
    roads.append(_Road("Town hall lane", "役場前通り", line([(1200, 700), (1200, 670)]), 4.0))
    roads.append(_Road("Riverside road", "川沿い道路",
                       line([(600, 700), (530, 770), (530, 950)]), 4.0))
    return tuple(roads)


def _hill_roads() -> tuple[_Road, ...]:
    """Evacuation road, access roads to sites 1-3 and the site-3 link, with profiles.

    Lengths are solved so that the network distance from the central street to each
    entrance is the published one: S1 100 m, S2 600 m (evacuation road + branch),
    S3 600 m (spa road); the profiles then give 7.5 %, 6.8 % and 6.4 %.
    """
    line = shapely.LineString
    evac_full = line([_A, _EVAC_END])
    e2 = (1540.0, 1095.0)                                   # middle of S2's east edge
    d2 = _solve(lambda d: d + shapely.Point(e2).distance(evac_full.interpolate(d)) - 600.0,
                300.0, _EVAC_LENGTH)
    j2 = evac_full.interpolate(d2)
    evac, branch = line([_A, (j2.x, j2.y), _EVAC_END]), line([(j2.x, j2.y), e2])
    cross_evac, cross_branch = _junction_cross_slopes(evac_full, branch, 0.068, 0.068)
    e3a, e3b = (1990.0, 1240.0), (1900.0, 1330.0)           # S3: south and west edges
    uk = _solve(lambda u: line([_B, (u, 950.0), e3a]).length - 600.0, 1600.0, 2020.0)
    z_j2, z_end = _Z_A + 0.068 * d2, _Z_A + 0.068 * _EVAC_LENGTH   # 49.1 m at the shelter
    return (
        _Road("Evacuation road", "避難道路", evac, 5.5, z=(_Z_A, z_end), cross=cross_evac),
        _Road("Hilltop access road", "高台取付道路", branch, 5.5,
              z=(z_j2, z_j2 + 0.068 * branch.length), cross=cross_branch),
        _Road("Spa road", "温泉通り", line([_B, (uk, 950.0), e3a]), 6.0,
              z=(_Z_B, _Z_B + 0.064 * 600.0)),
        _Road("Spa link road", "温泉連絡道路", line([_EVAC_END, e3b]), 5.0, z=(z_end, 45.0)),
        _Road("Bluff road", "候補地1取付道路", line([_P1, (2300, 800)]), 5.0,
              z=(_Z_P1, _Z_P1 + 0.075 * 100.0)),
    )


def _junction_cross_slopes(main: shapely.LineString, branch: shapely.LineString,
                           grade_main: float, grade_branch: float) -> tuple[float, float]:
    """Cross slopes that put two straight ramps meeting at a junction on one plane.

    The plane's gradient ``g`` solves ``g . d_main = grade_main`` and ``g . d_branch =
    grade_branch`` (``d``: unit directions); each corridor then tilts by ``g . n``
    across (``n``: its left normal), so the DEM is linear along both centre lines
    right through the junction.
    """
    dirs = []
    for road in (main, branch):
        xy = shapely.get_coordinates(road)
        dirs.append((xy[-1] - xy[0]) / np.hypot(*(xy[-1] - xy[0])))
    gradient = np.linalg.solve(np.array(dirs), np.array([grade_main, grade_branch]))
    main_cross, branch_cross = (float(gradient @ np.array([-d[1], d[0]])) for d in dirs)
    return main_cross, branch_cross


def _solve(f: Callable[[float], float], lo: float, hi: float) -> float:
    """Root of a monotonic ``f`` between ``lo`` and ``hi`` by bisection (to 0.1 mm)."""
    f_lo = f(lo)
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        if (f(mid) > 0) == (f_lo > 0):
            lo, f_lo = mid, f(mid)
        else:
            hi = mid
        if hi - lo < 1e-4:
            break
    return 0.5 * (lo + hi)


def _river() -> shapely.LineString:
    """River centre line, from the north edge to the sea (straight beside site S4)."""
    return shapely.LineString([(500, 2510), (485, 1900), (470, 1300), (470, 750),
                               (455, 500), (445, 150)])


# --------------------------------------------------------------------------- terrain


def _smoothstep(x: np.ndarray) -> np.ndarray:
    """0 below 0, 1 above 1, a smooth S in between."""
    t = np.clip(x, 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def _pixel_centres() -> tuple[np.ndarray, np.ndarray]:
    """Local coordinates (u east, v north; m) of every pixel centre, row 0 north."""
    cols = np.arange(int(_SIZE[0] / PIXEL)) * PIXEL + PIXEL / 2
    rows = _SIZE[1] - PIXEL / 2 - np.arange(int(_SIZE[1] / PIXEL)) * PIXEL
    return np.meshgrid(cols, rows)


def _coast(u: np.ndarray) -> np.ndarray:
    """Northing of the shore line (m)."""
    return 270.0 + 25.0 * np.sin(2 * np.pi * u / 1500.0)


def _lowland_mask(u: np.ndarray, v: np.ndarray, d_river: np.ndarray) -> np.ndarray:
    """Coastal plain (south of the bluff foot) and the river's valley floor."""
    foot = np.interp(u, [1900.0, 2150.0], [750.0, 800.0])
    return (v <= foot) | ((d_river <= 130.0) & (v >= 700.0))


def _lowland_level(u: np.ndarray, v: np.ndarray, d_river: np.ndarray) -> np.ndarray:
    """Ground of the low land: the plain with its eastern apron, and the valley floor."""
    apron = np.interp(u, [1800.0, 2250.0], [0.0, 0.075]) * np.maximum(v - _CENTRAL_V, 0.0)
    plain = np.interp(u, [1500.0, 2050.0, 2300.0, 3000.0], [3.2, 6.6, 8.5, 12.0]) + apron
    across = 0.004 * np.maximum(d_river - 20.0, 0.0) * _smoothstep((v - 750.0) / 100.0)
    floor = 3.2 + 0.005 * np.maximum(v - 750.0, 0.0) + across
    return np.where((d_river <= 130.0) & (v >= 750.0), floor, plain)


def _hills(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Knoll behind site 1, hills under sites 2 and 3, the shelter's knoll (m added)."""
    def bump(cu: float, cv: float, height: float, sigma: float) -> np.ndarray:
        return height * np.exp(-((u - cu) ** 2 + (v - cv) ** 2) / (2 * sigma**2))

    knoll = (_smoothstep((v - 805.0) / 60.0) * np.exp(-(np.maximum(v - 960.0, 0.0) / 220.0) ** 2)
             * np.exp(-(np.abs(u - 2300.0) / 170.0) ** 4))
    return (44.2 * knoll + bump(1470.0, 1095.0, 29.15, 70.0) + bump(1970.0, 1300.0, 15.7, 75.0)
            + bump(*_EVAC_END, 18.0, 70.0))


def _noise(shape: tuple[int, int]) -> np.ndarray:
    """Smooth random relief with unit standard deviation (fixed seed)."""
    from scipy.ndimage import gaussian_filter

    field = gaussian_filter(np.random.default_rng(_SEED).standard_normal(shape), 12.0)
    return field / field.std()


def _natural_terrain(u: np.ndarray, v: np.ndarray, d_river: np.ndarray,
                     sea: np.ndarray) -> np.ndarray:
    """Ground before the parcels are levelled and the hill roads carved (m T.P.)."""
    from scipy.ndimage import distance_transform_edt, gaussian_filter

    low = _lowland_mask(u, v, d_river)
    level = _lowland_level(u, v, d_river)
    d_low, (ri, ci) = distance_transform_edt(~low, sampling=PIXEL, return_indices=True)
    foot = level[ri, ci]                      # low ground nearest each upland pixel,
    foot += (gaussian_filter(foot, 30.0) - foot) * _smoothstep(d_low / 150.0)   # smoothed
    rise = 10.0 * _smoothstep(d_low / 40.0) + 60.0 * (1.0 - np.exp(-d_low / 700.0))
    upland = foot + rise + _hills(u, v) + 1.5 * _noise(u.shape) * _smoothstep(d_low / 60.0)
    z = np.where(low, level, upland)
    d_sea = distance_transform_edt(~sea, sampling=PIXEL)
    z = 0.3 + (z - 0.3) * _smoothstep(d_sea / 90.0)          # beach
    return z - 1.5 * (1.0 - _smoothstep((d_river - 5.0) / 5.0))   # river channel


def _level_sites(z: np.ndarray, u: np.ndarray, v: np.ndarray,
                 sites: tuple[_Site, ...]) -> np.ndarray:
    """Put each candidate's low edge exactly at its published ground level.

    Within 15 m of the low edge (S1: its front; S2, S3: the whole boundary) the
    ground is the edge level; the natural ground's excess fades in over the next
    25 m. Outside, a 5 m ring at the edge level blends into the terrain over 25 m.
    """
    for site in sites:
        if site.site_id not in ("S1", "S2", "S3"):
            continue
        poly = site.polygon
        sel = _near(u, v, poly, 35.0)
        pu, pv = u[sel], v[sel]
        inside = shapely.contains_xy(poly, pu, pv)
        dist = shapely.distance(poly.boundary, shapely.points(pu, pv))
        signed = np.where(inside, dist, -dist)
        if site.site_id == "S1":
            band, edge = pv - poly.bounds[1], np.full(pu.shape, site.pad)
        else:
            band, edge = signed, _edge_level(site, pu)
        target = edge + np.maximum(z[sel] - edge, 0.0) * _smoothstep((band - 15.0) / 25.0)
        weight = np.where(inside, 1.0, 1.0 - _smoothstep((-signed - 5.0) / 25.0))
        z[sel] = z[sel] * (1.0 - weight) + target * weight
    return z


def _edge_level(site: _Site, u: np.ndarray) -> np.ndarray:
    """Level of a hilltop's edge band: flat, except S2's rises to 44 m at its entrance."""
    if site.site_id != "S2":
        return np.full(u.shape, site.pad)
    west, east = site.polygon.bounds[0] + 15.0, site.polygon.bounds[2]
    return site.pad + 2.0 * np.clip((u - west) / (east - west), 0.0, 1.0)


def _near(u: np.ndarray, v: np.ndarray, geom: shapely.Geometry, margin: float) -> np.ndarray:
    """Mask of the pixels within the bounding box of ``geom`` grown by ``margin``."""
    west, south, east, north = geom.bounds
    return ((u >= west - margin) & (u <= east + margin)
            & (v >= south - margin) & (v <= north + margin))


def _carve_roads(z: np.ndarray, u: np.ndarray, v: np.ndarray, roads: tuple[_Road, ...],
                 sites: tuple[_Site, ...]) -> np.ndarray:
    """Set each hill road's corridor to its linear profile, outside the parcels.

    A pixel follows the nearest hill road (a road's end caps yield to a road passing
    through); within ``_CORRIDOR`` of its centre line exactly, fading into the
    terrain over the next ``_BLEND`` metres.
    """
    rank = np.full(z.shape, np.inf)
    best = np.full(z.shape, np.inf)
    level = np.zeros(z.shape)
    for road in roads:
        if road.z is None:
            continue
        sel = _near(u, v, road.line, _CORRIDOR + _BLEND)
        dist, along, left = _road_frame(road.line, u[sel], v[sel])
        on_cap = (along <= 0.0) | (along >= road.line.length)
        closer = dist + 10.0 * on_cap < rank[sel]
        rank[sel] = np.where(closer, dist + 10.0 * on_cap, rank[sel])
        best[sel] = np.where(closer, dist, best[sel])
        grade = (road.z[1] - road.z[0]) / road.line.length
        profile = road.z[0] + grade * along + road.cross * left
        level[sel] = np.where(closer, profile, level[sel])
    weight = 1.0 - _smoothstep((best - _CORRIDOR) / _BLEND)
    parcels = shapely.union_all([s.polygon for s in sites])
    weight[shapely.contains_xy(parcels, u, v)] = 0.0
    return z * (1.0 - weight) + level * weight


def _road_frame(line: shapely.LineString, u: np.ndarray,
                v: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distance of points to ``line``, position along it and signed offset (left +; m).

    Beyond either end the position continues for one pixel along the end segment
    (negative before the start), so that the profile stays linear where a DEM
    sampler interpolates across a road's end.
    """
    pts = shapely.points(u, v)
    dist = shapely.distance(line, pts)
    along = shapely.line_locate_point(line, pts)
    foot = shapely.get_coordinates(shapely.line_interpolate_point(line, along))
    ahead, behind = (shapely.get_coordinates(shapely.line_interpolate_point(
        line, np.clip(along + step, 0.0, line.length))) for step in (0.5, -0.5))
    tangent = (ahead - behind) / np.hypot(*(ahead - behind).T)[:, None]
    left = tangent[:, 0] * (v - foot[:, 1]) - tangent[:, 1] * (u - foot[:, 0])
    xy = shapely.get_coordinates(line)
    for end, inner, sign in ((xy[0], xy[1], -1.0), (xy[-1], xy[-2], 1.0)):
        out = (end - inner) / np.hypot(*(end - inner))
        beyond = np.clip((u - end[0]) * out[0] + (v - end[1]) * out[1], 0.0, PIXEL)
        at_end = along <= 0.0 if sign < 0 else along >= line.length
        along = np.where(at_end, along + sign * beyond, along)
    return dist, along, left


# --------------------------------------------------------------------------- hazards


def _tsunami_depth(z: np.ndarray, sea: np.ndarray) -> np.ndarray:
    """Run-up minus ground on land below the run-up that is connected to the sea."""
    from scipy.ndimage import label

    wet = sea | (z < RUNUP)
    labels, _ = label(wet)
    reached = np.isin(labels, np.unique(labels[sea]))
    return np.where(reached & ~sea, RUNUP - z, 0.0)


def _flood_depth(z: np.ndarray, v: np.ndarray, d_river: np.ndarray, rise: float) -> np.ndarray:
    """River flood: a water surface ``rise`` m above the valley floor at the river.

    The surface drops 2 % per metre beyond 150 m from the river, and the flood
    fades out towards the river mouth (north of v = 450-700 m it is full).
    """
    surface = 3.2 + 0.005 * np.maximum(v - 750.0, 0.0) + rise
    surface = surface - 0.02 * np.maximum(d_river - 150.0, 0.0)
    return np.maximum(surface - z, 0.0) * _smoothstep((v - 450.0) / 250.0)


def _rasters(sites: tuple[_Site, ...], roads: tuple[_Road, ...]) -> dict[str, np.ndarray]:
    """The DEM and the three depth grids (float32, ``NODATA`` at sea), by file name."""
    u, v = _pixel_centres()
    sea = v < _coast(u)
    d_river = shapely.distance(_river(), shapely.points(u, v))
    z = _natural_terrain(u, v, d_river, sea)
    z = _carve_roads(_level_sites(z, u, v, sites), u, v, roads, sites)
    z = np.round(z, 2)
    grids = {
        "dem.tif": z,
        "tsunami_depth.tif": _tsunami_depth(z, sea),
        "flood_planned.tif": _flood_depth(z, v, d_river, 1.0),
        "flood_max.tif": _flood_depth(z, v, d_river, 3.0),
    }
    return {name: np.where(sea, NODATA, np.round(g, 2)).astype("float32")
            for name, g in grids.items()}


# --------------------------------------------------------------------------- vector layers


def _to_plane(geoms: Any, origin: tuple[float, float]) -> np.ndarray:
    """Shift local geometries by the grid origin (EPSG:6681 coordinates)."""
    return shapely.transform(np.asarray(geoms, dtype=object), lambda xy: xy + np.array(origin))


def _parcels_frame(sites: tuple[_Site, ...], origin: tuple[float, float]) -> Any:
    """``parcels`` layer: one polygon per site."""
    import geopandas as gpd

    data = {
        "site_id": [s.site_id for s in sites], "name": [s.name for s in sites],
        "name_ja": [s.name_ja for s in sites], "zone_kind": [s.zone_kind for s in sites],
        "coverage_ratio": [s.coverage_ratio for s in sites], "far": [s.far for s in sites],
        "pad_elevation": [s.pad for s in sites], "corner": [s.corner for s in sites],
    }
    return gpd.GeoDataFrame(data, geometry=_to_plane([s.polygon for s in sites], origin),
                            crs=DEMO_CRS)


def _roads_frame(roads: tuple[_Road, ...], origin: tuple[float, float]) -> Any:
    """``roads`` layer: un-noded centre lines with name, width and one-way flag."""
    import geopandas as gpd

    data = {"name": [r.name for r in roads], "name_ja": [r.name_ja for r in roads],
            "width": [r.width for r in roads], "oneway": [r.oneway for r in roads]}
    return gpd.GeoDataFrame(data, geometry=_to_plane([r.line for r in roads], origin),
                            crs=DEMO_CRS)


def _poi_frame(origin: tuple[float, float]) -> Any:
    """``poi`` layer in EPSG:4326: town centre, the existing shelter, the current hall."""
    import geopandas as gpd

    points = shapely.points([_ANCHOR_LOCAL, _EVAC_END, (1200.0, 645.0)])
    data = {"name": ["Town centre", "Existing shelter (hill)", "Town hall (current)"],
            "name_ja": ["市街地中心", "既存避難所（高台）", "町役場（現庁舎）"],
            "kind": ["town_centre", "shelter", "town_hall"], "capacity": [0, 500, 0]}
    frame = gpd.GeoDataFrame(data, geometry=_to_plane(points, origin), crs=DEMO_CRS)
    return frame.to_crs("EPSG:4326")


def _population_frame(sites: tuple[_Site, ...], roads: tuple[_Road, ...],
                      origin: tuple[float, float]) -> Any:
    """``population`` layer: ~200 houses along the town streets, 1,080 people in all."""
    import geopandas as gpd

    rng = np.random.default_rng(_SEED + 1)
    town = [r.line for r in roads if r.z is None and r.name != "Riverside road"]
    frontage = shapely.intersection(shapely.union_all(town), shapely.box(900, 420, 1900, 730))
    parts = shapely.get_parts(shapely.line_merge(frontage))
    counts = (shapely.length(parts) // 20.0).astype(int)
    which = np.repeat(np.arange(len(parts)), counts)
    along = (np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)) * 20.0 + 10.0
    here = shapely.get_coordinates(shapely.line_interpolate_point(parts[which], along))
    ahead = shapely.get_coordinates(shapely.line_interpolate_point(parts[which], along + 1.0))
    normal = (ahead - here)[:, ::-1] * np.array([-1.0, 1.0])
    normal /= np.linalg.norm(normal, axis=1, keepdims=True)
    pts = shapely.points(np.concatenate([here + 12.0 * normal, here - 12.0 * normal]))
    clear = shapely.distance(shapely.union_all([r.line for r in roads]), pts) > 8.0
    clear &= ~shapely.intersects(shapely.union_all([s.polygon for s in sites]).buffer(5.0), pts)
    pts = pts[clear]
    pts = pts[np.sort(rng.choice(len(pts), size=min(200, len(pts)), replace=False))]
    people = _split(_PEOPLE, rng.integers(2, 9, size=len(pts)))
    return gpd.GeoDataFrame({"people": people}, geometry=_to_plane(pts, origin), crs=DEMO_CRS)


def _split(total: int, weights: np.ndarray) -> np.ndarray:
    """Integers proportional to ``weights`` summing exactly to ``total`` (largest remainder)."""
    share = weights / weights.sum() * total
    out = np.floor(share).astype("int64")
    order = np.argsort(-(share - out), kind="stable")
    out[order[: total - out.sum()]] += 1
    return out


# --------------------------------------------------------------------------- writers


def _write_raster(path: Path, array: np.ndarray, transform: Any) -> None:
    """Float32 GeoTIFF, 256 x 256 tiles, deflate with the floating-point predictor."""
    import rasterio

    profile = {"driver": "GTiff", "width": array.shape[1], "height": array.shape[0],
               "count": 1, "dtype": "float32", "crs": DEMO_CRS, "transform": transform,
               "nodata": NODATA, "tiled": True, "blockxsize": 256, "blockysize": 256,
               "compress": "deflate", "predictor": 3}
    path.unlink(missing_ok=True)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(array, 1)


def _write_gpkg(frame: Any, path: Path, layer: str) -> None:
    """One-layer GeoPackage, replacing the file; byte-identical on every run.

    GDAL stamps GeoPackages with the current time unless ``OGR_CURRENT_DATE`` is set.
    """
    import pyogrio

    path.unlink(missing_ok=True)
    before = pyogrio.get_gdal_config_option("OGR_CURRENT_DATE")
    pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": "2017-07-01T00:00:00.000Z"})
    try:
        frame.to_file(path, layer=layer, driver="GPKG", engine="pyogrio")
    finally:
        pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": before})


# --------------------------------------------------------------------------- the study file


def demo_study_text() -> str:
    """The bundled study file (``layers/study.toml``) that goes with the demo layers."""
    return (Path(__file__).parent / "templates" / "demo_study.toml").read_text(encoding="utf-8")


def write_demo_study(folder: Path, *, overwrite: bool = False, only_missing: bool = False) -> Path:
    """Write the demo layers and their study file into ``folder``.

    The files are generated in a temporary folder first and moved into place one
    by one, so an interrupted call leaves no half-written file. A file already
    there with the same content is left alone; one with different content (a
    user's edit) is replaced only with ``overwrite``.

    Parameters
    ----------
    folder : Path
        Destination; created when missing.
    overwrite : bool
        Replace files whose content differs from the generated ones.
    only_missing : bool
        Write only the files that are missing (used by ``siteplan run``).

    Returns
    -------
    Path
        The study file.

    Raises
    ------
    OutputError
        A file differs from the demo's and ``overwrite`` is false.

    Examples
    --------
    >>> import tempfile
    >>> study = write_demo_study(Path(tempfile.mkdtemp()) / "demo")
    >>> sorted(p.name for p in study.parent.iterdir())[:3]
    ['dem.tif', 'flood_max.tif', 'flood_planned.tif']
    """
    import filecmp
    import os
    import tempfile

    from pipeline.errors import OutputError

    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".demo.", dir=folder))
    except OSError as err:
        raise OutputError(f"cannot write the demo study into {folder}: {err.strerror}") from None
    try:
        write_demo_layers(tmp)
        (tmp / "study.toml").write_text(demo_study_text(), encoding="utf-8")
        names = [*DEMO_FILES, "study.toml"]
        if only_missing:
            names = [n for n in names if not (folder / n).exists()]
        changed = [n for n in names if (folder / n).exists()
                   and not filecmp.cmp(tmp / n, folder / n, shallow=False)]
        if changed and not overwrite:
            raise OutputError(f"{folder} already holds {', '.join(changed)} with other content; "
                              "pass --overwrite to replace them, or choose another folder")
        for name in names:
            os.replace(tmp / name, folder / name)
    finally:
        for leftover in tmp.iterdir():
            leftover.unlink()
        tmp.rmdir()
    return folder / "study.toml"


def ensure_demo_layers(study: Any) -> None:
    """Generate the missing layers of a demo study (``[study] demo = true``); no-op otherwise."""
    if not study.study.demo:
        return
    missing = [n for n in DEMO_FILES if not (study.folder / n).exists()]
    if missing:
        logger.info("demo study: generating %s in %s", ", ".join(missing), study.folder)
        write_demo_study(study.folder, only_missing=True)
