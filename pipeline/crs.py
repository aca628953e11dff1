"""Choosing the study's metric CRS.

Metric work (areas, buffers, distances) happens in one projected CRS. In Japan
that is the JGD2011 plane-rectangular zone of the study area (系番号, EPSG:6669
to 6687); elsewhere the WGS 84 UTM zone. Geographic coordinates are used only
for drawing maps.
"""

from __future__ import annotations

import logging

import numpy as np
from pyproj import CRS
from pyproj.aoi import AreaOfInterest
from pyproj.database import query_crs_info, query_utm_crs_info

from pipeline.errors import CRSError

logger = logging.getLogger(__name__)

_JGD2011_ZONES = range(6669, 6688)


def metric_crs_for(lon: float, lat: float) -> CRS:
    """The JGD2011 plane-rectangular zone (in Japan) or UTM zone containing a point.

    The plane-rectangular zones follow prefecture borders, which pyproj does not
    know; among the zones whose area of use contains the point, the one whose
    central meridian and origin latitude are nearest is taken. Outside Japan the
    WGS 84 UTM zone of the point is used.

    Parameters
    ----------
    lon, lat : float
        Longitude and latitude in degrees (WGS 84 / JGD2011).

    Returns
    -------
    pyproj.CRS

    Examples
    --------
    >>> metric_crs_for(145.12, 43.08).to_epsg()  # Kiritappu, Hokkaido: zone XIII
    6681
    >>> metric_crs_for(139.88, 36.10).to_epsg()  # Goka, Ibaraki: zone IX
    6677
    >>> metric_crs_for(106.8, -6.2).to_epsg()    # Jakarta: UTM 48S
    32748
    """
    if not (-180 <= lon <= 180 and -90 <= lat <= 90):
        raise CRSError(f"({lon}, {lat}) is not a longitude/latitude pair")
    aoi = AreaOfInterest(lon, lat, lon, lat)
    zones = [
        info for info in query_crs_info(auth_name="EPSG", area_of_interest=aoi, contains=True)
        if info.code.isdigit() and int(info.code) in _JGD2011_ZONES
    ]
    if zones:
        crs_list = [CRS.from_epsg(int(z.code)) for z in zones]
        dist = [_origin_distance(c, lon, lat) for c in crs_list]
        return crs_list[int(np.argmin(dist))]
    utm = query_utm_crs_info(datum_name="WGS 84", area_of_interest=aoi)
    if not utm:
        raise CRSError(f"no UTM zone found for ({lon}, {lat}); set [study] crs in the study file")
    return CRS.from_epsg(int(utm[0].code))


def _origin_distance(crs: CRS, lon: float, lat: float) -> float:
    op = crs.coordinate_operation
    params = {p.name: float(p.value) for p in op.params} if op is not None else {}
    lon0 = params.get("Longitude of natural origin", lon)
    lat0 = params.get("Latitude of natural origin", lat)
    return float(np.hypot((lon - lon0) * np.cos(np.radians(lat)), lat - lat0))


def resolve_crs(value: str, *, lonlat_centre: tuple[float, float] | None) -> CRS:
    """The study CRS from the study file's ``crs`` value.

    Parameters
    ----------
    value : str
        ``"auto"`` or anything pyproj accepts (``"EPSG:6681"``).
    lonlat_centre : tuple of float, optional
        Centre of the study area in lon/lat, needed for ``"auto"``.

    Examples
    --------
    >>> resolve_crs("EPSG:6681", lonlat_centre=None).to_epsg()
    6681
    >>> resolve_crs("auto", lonlat_centre=(145.12, 43.08)).to_epsg()
    6681
    """
    if value == "auto":
        if lonlat_centre is None:
            raise CRSError("crs = 'auto' needs the study area's location")
        return metric_crs_for(*lonlat_centre)
    try:
        crs = CRS.from_user_input(value)
    except Exception as err:  # pyproj raises its own CRSError
        raise CRSError(f"[study] crs = {value!r} is not a CRS pyproj knows ({err}); "
                       "use e.g. 'EPSG:6681' or 'auto'") from None
    check_metric(crs, what="[study] crs")
    return crs


def check_metric(crs: CRS, *, what: str) -> None:
    """Raise CRSError unless ``crs`` is projected with metre units.

    Examples
    --------
    >>> check_metric(CRS.from_epsg(4326), what="x")
    Traceback (most recent call last):
    ...
    pipeline.errors.CRSError: x: EPSG:4326 is geographic (degrees); metric work needs a projected CRS in metres such as a JGD2011 plane-rectangular zone (EPSG:6669-6687) or UTM
    """
    unit = crs.axis_info[0].unit_name if crs.axis_info else ""
    if not crs.is_projected or unit not in ("metre", "meter"):
        kind = "geographic (degrees)" if crs.is_geographic else f"in {unit or 'unknown units'}"
        raise CRSError(
            f"{what}: {crs.to_string()} is {kind}; metric work needs a projected CRS in metres "
            "such as a JGD2011 plane-rectangular zone (EPSG:6669-6687) or UTM"
        )
