"""Coverage: which districts are beyond reach of any facility, over the road network.

The question of a city that wants one community centre within reach of each of
its community associations (seed 003: 99 associations), or of a town that
checks every evacuee has a shelter within walking distance. Districts (points or
polygons, as their centroids) and facilities (existing or candidate) are placed
on the road network; each district gets its nearest facility, the network
distance to it, and a ``beyond`` flag against the threshold.

``siteplan coverage DISTRICTS FACILITIES --roads ROADS OUTPUT`` runs it on files.
"""

from __future__ import annotations

import logging
from pathlib import Path

import geopandas as gpd
import pandas as pd

from pipeline import network as nw
from pipeline.config import LayerSpec
from pipeline.crs import metric_crs_for
from pipeline.layers import read_vector

logger = logging.getLogger(__name__)


def coverage_table(
    districts: gpd.GeoDataFrame,
    facilities: gpd.GeoDataFrame,
    roads: gpd.GeoDataFrame,
    *,
    threshold: float,
    tolerance: float = 0.5,
    facility_label: str | None = None,
) -> gpd.GeoDataFrame:
    """Nearest facility per district and whether it lies beyond ``threshold`` metres.

    Parameters
    ----------
    districts, facilities : GeoDataFrame
        Points or polygons, in the roads' metric CRS.
    roads : GeoDataFrame
        Road centre lines (not necessarily noded).
    threshold : float
        Reach in metres (network distance plus the connectors to the road).
    tolerance : float
        Line ends closer than this are joined when building the network.
    facility_label : str, optional
        Column of ``facilities`` naming them (default: their index).

    Returns
    -------
    GeoDataFrame
        The districts with ``facility``, ``distance`` (m), ``network_distance``,
        ``connector`` and ``beyond`` columns.

    Examples
    --------
    >>> from shapely.geometry import LineString, Point
    >>> roads = gpd.GeoDataFrame(geometry=[LineString([(0, 0), (2000, 0)])], crs=6677)
    >>> centres = gpd.GeoDataFrame({"name": ["Hall"]}, geometry=[Point(0, 10)], crs=6677)
    >>> districts = gpd.GeoDataFrame({"district": ["near", "far"]},
    ...                              geometry=[Point(500, 0), Point(1900, 0)], crs=6677)
    >>> coverage_table(districts, centres, roads, threshold=1000,
    ...                facility_label="name")[["district", "facility", "distance", "beyond"]]
      district facility  distance  beyond
    0     near     Hall     510.0   False
    1      far     Hall    1910.0    True
    """
    net = nw.network_from_lines(roads, tolerance=tolerance)
    fac = facilities.set_index(facility_label) if facility_label else facilities
    result = nw.coverage(districts, fac, net, threshold=threshold)
    out = districts.join(result)
    n_beyond = int(out["beyond"].sum())
    logger.info("coverage: %d of %d districts beyond %.0f m of any of %d facilities", n_beyond,
                len(out), threshold, len(fac))
    return out


def coverage_from_files(
    districts: Path,
    facilities: Path,
    roads: Path,
    *,
    threshold: float,
    crs: str = "auto",
    facility_label: str | None = None,
) -> gpd.GeoDataFrame:
    """:func:`coverage_table` on three vector files, each checked and brought into one metric CRS."""
    from pyproj import CRS

    probe = read_vector(LayerSpec(path=districts), name="districts", crs=CRS.from_epsg(4326),
                        family=_family(districts))
    if crs == "auto":
        lon, lat = probe.union_all().envelope.centroid.coords[0]
        target = metric_crs_for(lon, lat)
    else:
        target = CRS.from_user_input(crs)
    frames = [read_vector(LayerSpec(path=p), name=n, crs=target, family=f) for p, n, f in
              ((districts, "districts", _family(districts)),
               (facilities, "facilities", _family(facilities)), (roads, "roads", "line"))]
    return coverage_table(*frames, threshold=threshold, facility_label=facility_label)


def _family(path: Path) -> str:
    """'point' or 'polygon', from the first geometry of the file."""
    import pyogrio

    kind = pyogrio.read_info(path)["geometry_type"] or ""
    return "polygon" if "Polygon" in kind else "point"


def summary(table: pd.DataFrame) -> pd.DataFrame:
    """Districts per facility and how many are beyond reach."""
    return table.groupby("facility", dropna=False).agg(
        districts=("beyond", "size"), beyond=("beyond", "sum"),
        mean_distance=("distance", "mean"), max_distance=("distance", "max"))
