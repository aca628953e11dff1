"""Read road ways from OpenStreetMap files (``.osm``, ``.osm.bz2``, ``.pbf``).

The reader streams the file once with pyosmium's :class:`osmium.FileProcessor`,
keeping node locations in memory so that each way with a ``highway=*`` tag
becomes one LineString in EPSG:4326.  The OSM node ids of every way are kept
in a ``nodes`` column, so that :func:`pipeline.network.network_from_osm` can
build a graph whose nodes carry their OSM ids (topology from the ids, not from
coordinates: a bridge over a street shares no node with it and is not joined).
"""

from __future__ import annotations

import logging
from os import PathLike
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from pipeline.errors import InputNotFoundError, LayerError

logger = logging.getLogger(__name__)

#: Tags copied to columns, in this order (missing tags become None).
ROAD_TAGS: tuple[str, ...] = ("name", "highway", "oneway", "maxspeed", "width", "lanes", "junction")
#: Columns of the frame returned by :func:`read_osm_roads`.
ROAD_COLUMNS: tuple[str, ...] = ("osmid", *ROAD_TAGS, "nodes", "geometry")


def read_osm_roads(path: str | PathLike[str]) -> gpd.GeoDataFrame:
    """Read every way tagged ``highway=*`` from an OSM XML or PBF file.

    Parameters
    ----------
    path : str or path-like
        ``.osm``, ``.osm.bz2``, ``.osm.gz``, ``.pbf`` or ``.osm.pbf`` file
        (pyosmium picks the format from the suffix).

    Returns
    -------
    geopandas.GeoDataFrame
        One row per way, in file order, EPSG:4326 LineStrings, columns
        ``osmid`` (int64), the tags ``name``, ``highway``, ``oneway``,
        ``maxspeed``, ``width``, ``lanes``, ``junction`` as raw strings
        (string dtype, NA when absent), and ``nodes``: the list of OSM node ids of the way's
        vertices.  Nodes missing from the file (cut at the extract's edge)
        are dropped from both the geometry and ``nodes``; a way left with
        fewer than two located nodes is skipped and counted in the log.

    Raises
    ------
    InputNotFoundError
        When ``path`` does not exist.
    LayerError
        When pyosmium cannot read the file.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> xml = '''<osm version="0.6">
    ...  <node id="1" lat="35.0" lon="139.0"/><node id="2" lat="35.001" lon="139.0"/>
    ...  <way id="10"><nd ref="1"/><nd ref="2"/><tag k="highway" v="residential"/></way>
    ... </osm>'''
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "tiny.osm"
    >>> _ = f.write_text(xml)
    >>> roads = read_osm_roads(f)
    >>> roads[["osmid", "highway"]].to_dict("records"), roads.loc[0, "nodes"]
    ([{'osmid': 10, 'highway': 'residential'}], [1, 2])
    """
    path = Path(path)
    if not path.is_file():
        raise InputNotFoundError(
            f"OSM file {path}: not found; give the path of a .osm, .osm.bz2 or .pbf extract"
        )
    try:
        rows, coords, parts, skipped = _collect_ways(path)
    except RuntimeError as err:  # pyosmium reports parse and format errors as RuntimeError
        raise LayerError(
            f"OSM file {path}: pyosmium cannot read it ({err}); "
            "check that it is OSM XML (.osm, .osm.bz2) or PBF (.pbf)"
        ) from err
    frame = pd.DataFrame(rows, columns=["osmid", *ROAD_TAGS, "nodes"])
    frame["osmid"] = frame["osmid"].astype("int64")
    for tag in ROAD_TAGS:  # one dtype whatever the file holds (missing tags are NA)
        frame[tag] = frame[tag].astype("str")
    xy = np.asarray(coords, dtype=float).reshape(-1, 2)
    geoms = shapely.linestrings(xy, indices=np.asarray(parts, dtype=np.intp)) if rows else []
    roads = gpd.GeoDataFrame(frame, geometry=np.asarray(geoms, dtype=object), crs="EPSG:4326")
    logger.info(
        "read %d highway ways from %s (%d skipped with < 2 located nodes)",
        len(roads),
        path.name,
        skipped,
    )
    return roads


def _collect_ways(path: Path) -> tuple[list[list[object]], list[float], list[int], int]:
    """Stream the file and gather way attributes, flat coordinates and part ids.

    The loop over ways is inherent to pyosmium's streaming interface; the
    geometries are built afterwards in one vectorised call.
    """
    import osmium

    processor = (
        osmium.FileProcessor(str(path))
        .with_locations()
        .with_filter(osmium.filter.EntityFilter(osmium.osm.WAY))
        .with_filter(osmium.filter.KeyFilter("highway"))
    )
    rows: list[list[object]] = []
    coords: list[float] = []
    parts: list[int] = []
    skipped = 0
    for way in processor:
        if not isinstance(way, osmium.osm.Way):  # the filters let only ways through
            continue
        refs = [(n.ref, n.lon, n.lat) for n in way.nodes if n.location.valid()]
        if len(refs) < 2:
            skipped += 1
            continue
        tags = way.tags
        rows.append([way.id, *(tags.get(k) for k in ROAD_TAGS), [r[0] for r in refs]])
        for _, lon, lat in refs:
            coords.extend((lon, lat))
        parts.extend([len(rows) - 1] * len(refs))
    return rows, coords, parts, skipped
