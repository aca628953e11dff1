"""Road-network kernel: noding, a sparse directed graph, and the queries on it.

Build a :class:`RoadNetwork` from un-noded lines (:func:`network_from_lines`)
or from an OSM extract (:func:`network_from_osm`), then ask it for distances
(:func:`multi_source_distances`, :func:`distance_matrix`,
:func:`point_distance_matrix`, :func:`distances_to_points`), routes
(:func:`shortest_path`), parcel entrances (:func:`entrances`), coverage
(:func:`coverage`), walking isochrones (:func:`isochrones`) and the grade of a
route on a DEM (:func:`route_grade`).

Design
------
* **Engine**: ``scipy.sparse.csgraph.dijkstra`` on a CSR matrix.  Two-way edges
  are stored in both directions, one-way edges only from ``u`` to ``v``; of
  parallel edges the lightest is kept.  networkx is used only by the tests and
  the benchmark as the reference.
* **Noding rule** (lines): a graph node is put where lines share a vertex
  (within ``tolerance``), at every line end, and where a line *ends* on or
  within ``tolerance`` of another line's interior (a T-junction: a vertex is
  inserted there).  Lines that merely cross, with no shared vertex, are **not**
  joined by default, as at a bridge or an underpass; pass
  ``join_crossings=True`` for data drawn without grade separation.
* **Snapping**: vertices of different lines closer than ``tolerance`` are
  merged (single linkage, cKDTree); vertices of one line are merged only when
  they lie more than ``2 * tolerance`` apart along it (the line comes back to
  itself), so a densely drawn curve is never collapsed.  A merged node takes
  the coordinates of an interior vertex of a line when it has one, else of the
  inserted T-junction point, else of a line end.
* **OSM node policy**: topology comes from OSM node ids, not coordinates.
  Graph nodes are way ends plus nodes used more than once (by two ways, or
  twice by one way); they keep their OSM ids in ``node_ids``.  This is
  osmnx's simplified graph, except that osmnx also dissolves a node where
  exactly two ways meet end to end; here such a node stays.
* **Points on the road**: queries from points project each point onto the
  nearest *edge* and split it virtually, so distances start on the road, not
  at the nearest node; the projection distance is reported as ``connector``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from os import PathLike
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import scipy.sparse as sp
import shapely
from pyproj import CRS
from scipy.sparse.csgraph import connected_components, dijkstra
from scipy.spatial import cKDTree

from pipeline.errors import CRSError, LayerError, NetworkError, RasterError

logger = logging.getLogger(__name__)

#: Default walking speed (km/h), the usual planning figure for evacuation on foot.
WALK_KMH = 4.8
#: Default driving speed (km/h) for edges without a speed.
DRIVE_KMH = 30.0
#: Memory budget (bytes) of one batch of a distance matrix.
MATRIX_BYTES = 256 * 2**20

_TRUE = frozenset({"yes", "true", "1", "t", "y"})
_REVERSE = frozenset({"-1", "reverse"})
_RESERVED = ("u", "v", "length", "oneway", "speed_kmh", "source_index", "geometry")

Weight = str | np.ndarray


@dataclass(frozen=True, eq=False)
class RoadNetwork:
    """A road network in a metric CRS, with a sparse directed adjacency.

    Attributes
    ----------
    coords : numpy.ndarray
        ``(N, 2)`` node coordinates in ``crs``.
    node_ids : numpy.ndarray
        ``(N,)`` int64 node ids: OSM ids when built from OSM, else ``0..N-1``.
    edges : geopandas.GeoDataFrame
        One row per edge: ``u``, ``v`` (node positions), ``length`` (m),
        ``oneway`` (bool, travel only from ``u`` to ``v``), ``speed_kmh``
        (float, NaN when unknown), geometry oriented from ``u`` to ``v``, and
        the carried attributes of the source line (``name``, ``width``, ...).
    crs : pyproj.CRS
        The projected CRS of coordinates and geometries.
    adjacency : scipy.sparse.csr_array
        ``(N, N)`` edge lengths; two-way edges in both directions; of
        parallel edges the shortest.
    """

    coords: np.ndarray
    node_ids: np.ndarray
    edges: gpd.GeoDataFrame
    crs: CRS
    adjacency: sp.csr_array

    def __repr__(self) -> str:
        return f"RoadNetwork({self.n_nodes} nodes, {self.n_edges} edges, {self.crs.to_string()})"

    @property
    def n_nodes(self) -> int:
        """Number of nodes."""
        return int(self.coords.shape[0])

    @property
    def n_edges(self) -> int:
        """Number of edges (rows of :attr:`edges`)."""
        return len(self.edges)

    @cached_property
    def node_tree(self) -> cKDTree:
        """KD-tree over the node coordinates (built on first use)."""
        return cKDTree(self.coords)

    @cached_property
    def edge_tree(self) -> shapely.STRtree:
        """STR-tree over the edge geometries (built on first use)."""
        return shapely.STRtree(self.edges.geometry.values._data)

    def index_of(self, ids: Any) -> np.ndarray:
        """Node positions of node ids (e.g. OSM ids).

        Raises
        ------
        NetworkError
            When an id is not a node of the network.

        Examples
        --------
        >>> net = _example_network()
        >>> net.index_of([3, 0]).tolist()
        [3, 0]
        """
        ids = np.atleast_1d(np.asarray(ids, dtype=np.int64))
        pos = pd.Index(self.node_ids).get_indexer(ids)
        if (pos < 0).any():
            raise NetworkError(
                f"road network: node ids {ids[pos < 0][:5].tolist()} are not graph nodes; "
                "only way ends and shared nodes are nodes (see network_from_osm)"
            )
        return pos


# --------------------------------------------------------------------------- building


def network_from_lines(
    lines: gpd.GeoDataFrame,
    *,
    tolerance: float = 0.5,
    oneway_column: str | None = None,
    speed_column: str | None = None,
    join_crossings: bool = False,
) -> RoadNetwork:
    """Build a network from road centre lines that need not be noded.

    Parameters
    ----------
    lines : geopandas.GeoDataFrame
        LineStrings or MultiLineStrings in a projected (metric) CRS.  Every
        other column is carried to the edges cut from that line.
    tolerance : float, default 0.5
        Metres within which vertices are merged and a line end is joined to
        another line (T-junction).  ``0`` joins exact matches only.
    oneway_column : str, optional
        Column saying the line is one-way in its drawing direction
        (``True``, ``"yes"``, ``"true"``, ``"1"``) or against it (``-1``,
        ``"-1"``, ``"reverse"``, reversed on input).  Default: all two-way.
    speed_column : str, optional
        Column of speeds in km/h (numbers or strings like ``"40"``,
        ``"25 mph"``), copied to ``speed_kmh``.
    join_crossings : bool, default False
        Also join lines where they cross without a shared vertex.  Off by
        default: a crossing without a vertex is taken to be a bridge.

    Returns
    -------
    RoadNetwork
        Node ids ``0..N-1``; edges carry ``source_index`` (the label of the
        input row) and the input's columns.

    Raises
    ------
    CRSError
        When ``lines`` has no CRS or a geographic one.
    LayerError
        When geometries are not lines or nothing usable remains.

    Examples
    --------
    A street with a side street ending on it (a T-junction, no shared vertex):

    >>> import geopandas as gpd
    >>> from shapely import LineString
    >>> lines = gpd.GeoDataFrame(
    ...     {"name": ["main", "side"]},
    ...     geometry=[LineString([(0, 0), (200, 0)]), LineString([(100, 0.3), (100, 80)])],
    ...     crs="EPSG:6677")
    >>> net = network_from_lines(lines)
    >>> net.n_nodes, net.n_edges
    (4, 3)
    >>> net.edges[["u", "v", "length", "name"]].round(1).values.tolist()
    [[0, 1, 100.0, 'main'], [1, 2, 100.0, 'main'], [1, 3, 80.0, 'side']]
    """
    crs = _metric_crs(lines.crs, "road lines")
    if tolerance < 0:
        raise LayerError(f"road lines: tolerance must be >= 0 m, got {tolerance}")
    for col in (oneway_column, speed_column):
        if col is not None and col not in lines:
            raise LayerError(f"road lines: column {col!r} not found in {list(lines.columns)}")
    parts, rows = _line_parts(lines)
    reverse, oneway = _oneway_flags(lines, oneway_column, rows)
    xy, part, meas = _vertices(parts)
    extra = _junction_points(parts, tolerance, join_crossings)
    xy, part, meas, inserted = _with_inserted(xy, part, meas, extra, reverse)
    key, xy = _cluster(xy, part, meas, inserted, tolerance)
    node_xy, _, geoms, u, v, epart = _split(xy, part, key)
    attrs = _carried(lines, rows[epart])
    attrs["oneway"] = oneway[epart]
    if speed_column is not None:
        attrs["speed_kmh"] = _parse_speed(lines[speed_column].to_numpy()[rows[epart]])
    net = _assemble(node_xy, np.arange(len(node_xy), dtype=np.int64), geoms, u, v, attrs, crs)
    logger.info(
        "road network from %d lines: %d nodes, %d edges (tolerance %.2f m, crossings %s)",
        len(lines),
        net.n_nodes,
        net.n_edges,
        tolerance,
        "joined" if join_crossings else "not joined",
    )
    return net


def network_from_osm(path: str | PathLike[str], *, crs: Any, oneway: bool = True) -> RoadNetwork:
    """Build a network from the ``highway=*`` ways of an OSM extract.

    Parameters
    ----------
    path : str or path-like
        ``.osm``, ``.osm.bz2`` or ``.pbf`` file (read by
        :func:`pipeline.osm.read_osm_roads`).
    crs : anything pyproj accepts
        Projected CRS to build the network in (e.g. ``"EPSG:6677"``).
    oneway : bool, default True
        Honour ``oneway=yes/-1``, roundabouts and motorways.  Pass ``False``
        for a walking network.

    Returns
    -------
    RoadNetwork
        Nodes are way ends and nodes shared by more than one way (or used
        twice by one), with their OSM ids in ``node_ids``; edges carry
        ``osmid``, ``name``, ``highway``, ``maxspeed``, ``width`` (m, float),
        ``lanes``, ``speed_kmh`` (from ``maxspeed``).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> xml = '''<osm version="0.6">
    ...  <node id="1" lat="35.0" lon="139.0"/><node id="2" lat="35.001" lon="139.0"/>
    ...  <node id="3" lat="35.002" lon="139.0"/><node id="4" lat="35.001" lon="139.001"/>
    ...  <way id="10"><nd ref="1"/><nd ref="2"/><nd ref="3"/><tag k="highway" v="primary"/></way>
    ...  <way id="11"><nd ref="2"/><nd ref="4"/><tag k="highway" v="service"/></way>
    ... </osm>'''
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "t.osm"
    >>> _ = f.write_text(xml)
    >>> net = network_from_osm(f, crs="EPSG:6677")
    >>> sorted(net.node_ids.tolist()), net.n_edges
    ([1, 2, 3, 4], 3)
    """
    from pipeline.osm import read_osm_roads

    target = _metric_crs(CRS.from_user_input(crs), f"CRS for {path}")
    roads = read_osm_roads(path)
    if roads.empty:
        raise LayerError(f"OSM file {path}: no highway ways; check the extract covers roads")
    roads = roads.to_crs(target)
    xy, part = shapely.get_coordinates(roads.geometry.values._data, return_index=True)
    ids = np.concatenate(roads["nodes"].to_numpy()).astype(np.int64)
    flags = _osm_oneway(roads) if oneway else np.zeros(len(roads), dtype=np.int8)
    pos = np.arange(len(part)) - np.searchsorted(part, part)
    order = np.lexsort((np.where(flags[part] < 0, -pos, pos), part))
    uniq, key = np.unique(ids[order], return_inverse=True)
    node_xy, node_key, geoms, u, v, epart = _split(xy[order], part[order], key)
    attrs = pd.DataFrame(roads.drop(columns=["geometry", "nodes"]).iloc[epart])
    attrs = attrs.reset_index(drop=True)
    attrs["oneway"] = flags[epart] != 0
    attrs["speed_kmh"] = _parse_speed(attrs["maxspeed"].to_numpy())
    attrs["width"] = _leading_number(attrs["width"].to_numpy())
    net = _assemble(node_xy, uniq[node_key], geoms, u, v, attrs, target)
    logger.info("road network from %s: %d nodes, %d edges", path, net.n_nodes, net.n_edges)
    return net


def ignore_oneway(net: RoadNetwork) -> RoadNetwork:
    """The same network with every edge two-way (for walking).

    Examples
    --------
    >>> net = ignore_oneway(_example_network())
    >>> bool(net.edges["oneway"].any())
    False
    """
    edges = net.edges.copy()
    edges["oneway"] = False
    adj = _adjacency(net.n_nodes, edges, edges["length"].to_numpy())
    return replace(net, edges=edges, adjacency=adj)


def edge_travel_times(
    net: RoadNetwork,
    *,
    speed_kmh: float | None = None,
    default_kmh: float = DRIVE_KMH,
    speed_column: str = "speed_kmh",
) -> np.ndarray:
    """Travel time of each edge in seconds, to pass as ``weight=``.

    Parameters
    ----------
    net : RoadNetwork
    speed_kmh : float, optional
        One speed for every edge (walking: :data:`WALK_KMH`).  When omitted,
        each edge's ``speed_column`` is used, and ``default_kmh`` where it is
        missing or not positive (driving).
    default_kmh : float, default 30
    speed_column : str, default "speed_kmh"

    Returns
    -------
    numpy.ndarray
        Seconds per edge, aligned to ``net.edges``.

    Examples
    --------
    >>> net = _example_network()
    >>> edge_travel_times(net, speed_kmh=3.6)[:2].tolist()
    [100.0, 100.0]
    """
    length = net.edges["length"].to_numpy(dtype=float)
    if speed_kmh is not None:
        speed = np.full(len(length), float(speed_kmh))
    else:
        col = net.edges.get(speed_column)
        speed = np.full(len(length), np.nan) if col is None else col.to_numpy(dtype=float)
        speed = np.where(np.isfinite(speed) & (speed > 0), speed, float(default_kmh))
    if (speed <= 0).any():
        raise NetworkError(f"road network: speeds must be > 0 km/h, got {speed.min()}")
    return length / (speed / 3.6)


# --------------------------------------------------------------------------- queries


def nearest_nodes(net: RoadNetwork, points: Any) -> tuple[np.ndarray, np.ndarray]:
    """Nearest graph node of each point (straight-line).

    Parameters
    ----------
    net : RoadNetwork
    points : array-like or GeoSeries
        ``(K, 2)`` coordinates in ``net.crs``, or point geometries.

    Returns
    -------
    node_index, distance : numpy.ndarray
        Node positions (intp) and distances in metres.

    Examples
    --------
    >>> net = _example_network()
    >>> idx, d = nearest_nodes(net, [[98.0, 3.0]])
    >>> idx.tolist(), d.round(2).tolist()
    ([1], [3.61])
    """
    xy = _as_xy(points, net.crs, "points")
    dist, idx = net.node_tree.query(xy)
    return np.asarray(idx, dtype=np.intp), np.asarray(dist, dtype=float)


def snap_points(net: RoadNetwork, points: Any, *, max_distance: float = math.inf) -> pd.DataFrame:
    """Project each point onto its nearest edge (a virtual split of the edge).

    Parameters
    ----------
    net : RoadNetwork
    points : array-like or GeoSeries
        ``(K, 2)`` coordinates in ``net.crs``, or point geometries.
    max_distance : float, default inf
        Points farther than this from every edge are not snapped.

    Returns
    -------
    pandas.DataFrame
        One row per point, in input order: ``edge`` (edge position, -1 when
        not snapped), ``u``, ``v``, ``offset`` (metres from ``u`` along the
        edge), ``length`` (of the edge), ``connector`` (point to road, m), and
        ``x``, ``y`` of the point on the road.

    Examples
    --------
    >>> net = _example_network()
    >>> snap_points(net, [[150.0, 4.0]])[["edge", "u", "v", "offset", "connector"]]
       edge  u  v  offset  connector
    0     1  1  2    50.0        4.0
    """
    xy = _as_xy(points, net.crs, "points")
    pts = shapely.points(xy)
    kw = {"max_distance": float(max_distance)} if math.isfinite(max_distance) else {}
    (pi, ei), dist = net.edge_tree.query_nearest(pts, return_distance=True, all_matches=False, **kw)
    out = pd.DataFrame(
        {"edge": -1, "u": -1, "v": -1, "offset": np.nan, "length": np.nan, "connector": np.nan},
        index=pd.RangeIndex(len(xy)),
    )
    geoms = net.edges.geometry.values._data[ei]
    offset = shapely.line_locate_point(geoms, pts[pi])
    on_road = shapely.get_coordinates(shapely.line_interpolate_point(geoms, offset))
    out.loc[pi, "edge"] = ei
    out.loc[pi, "u"] = net.edges["u"].to_numpy()[ei]
    out.loc[pi, "v"] = net.edges["v"].to_numpy()[ei]
    out.loc[pi, "offset"] = offset
    out.loc[pi, "length"] = net.edges["length"].to_numpy()[ei]
    out.loc[pi, "connector"] = dist
    out["x"] = np.nan
    out["y"] = np.nan
    out.loc[pi, "x"] = on_road[:, 0]
    out.loc[pi, "y"] = on_road[:, 1]
    return out


def multi_source_distances(
    net: RoadNetwork, sources: Any, *, weight: Weight = "length", limit: float = math.inf
) -> tuple[np.ndarray, np.ndarray]:
    """Distance from the nearest of several source nodes to every node.

    Parameters
    ----------
    net : RoadNetwork
    sources : array-like of int
        Node positions (not ids: see :meth:`RoadNetwork.index_of`).
    weight : str or numpy.ndarray, default "length"
        ``"length"``, an edge column, or one value per edge (e.g. from
        :func:`edge_travel_times`).
    limit : float, default inf
        Stop searching past this distance (faster for local questions).

    Returns
    -------
    dist : numpy.ndarray
        ``(N,)`` distance to the nearest source, ``inf`` when not reached.
    nearest : numpy.ndarray
        ``(N,)`` position in ``sources`` of that source, ``-1`` when not reached.

    Examples
    --------
    >>> net = _example_network()
    >>> d, near = multi_source_distances(net, [0, 3])
    >>> d.tolist(), near.tolist()
    ([0.0, 80.0, 180.0, 0.0], [0, 1, 1, 1])
    """
    src = _check_nodes(net, sources, "sources")
    graph = _graph(net, weight)
    uniq = np.unique(src)
    dist, _, owner = dijkstra(
        graph, indices=uniq, min_only=True, return_predecessors=True, limit=limit
    )
    first = np.full(net.n_nodes, -1, dtype=np.intp)
    first[src[::-1]] = np.arange(len(src))[::-1]
    nearest = np.where(owner >= 0, first[np.maximum(owner, 0)], -1)
    return dist, nearest


def distance_matrix(
    net: RoadNetwork,
    sources: Any,
    targets: Any,
    *,
    weight: Weight = "length",
    limit: float = math.inf,
    max_bytes: int = MATRIX_BYTES,
) -> np.ndarray:
    """Network distances from each source node to each target node.

    Runs Dijkstra in batches of sources so that one batch's full distance
    rows stay under ``max_bytes``.

    Parameters
    ----------
    net : RoadNetwork
    sources, targets : array-like of int
        Node positions.
    weight : str or numpy.ndarray, default "length"
    limit : float, default inf
    max_bytes : int, default 256 MiB

    Returns
    -------
    numpy.ndarray
        ``(S, T)`` distances (``inf`` when not reachable).

    Examples
    --------
    >>> net = _example_network()
    >>> distance_matrix(net, [0], [2, 3]).tolist()
    [[200.0, 180.0]]
    """
    src = _check_nodes(net, sources, "sources")
    tgt = _check_nodes(net, targets, "targets")
    return _batched(_graph(net, weight), src, tgt, limit, max_bytes)


def point_distance_matrix(
    net: RoadNetwork,
    sources: Any,
    targets: Any,
    *,
    weight: Weight = "length",
    max_distance: float = math.inf,
    max_bytes: int = MATRIX_BYTES,
) -> np.ndarray:
    """Network distances between points, measured from where they meet the road.

    Each point is projected onto its nearest edge (:func:`snap_points`); the
    distance runs along the road from that projection and excludes the
    connectors (get them from :func:`snap_points`).

    Parameters
    ----------
    net : RoadNetwork
    sources, targets : array-like or GeoSeries
        Points as ``(K, 2)`` coordinates in ``net.crs`` or point geometries.
    weight : str or numpy.ndarray, default "length"
        Partial edges get the fraction of the edge weight they cover.
    max_distance : float, default inf
        Points farther than this from the road are unreachable (``inf``).
    max_bytes : int, default 256 MiB

    Returns
    -------
    numpy.ndarray
        ``(S, T)`` distances.

    Examples
    --------
    >>> net = _example_network()
    >>> point_distance_matrix(net, [[30.0, 5.0]], [[150.0, -2.0], [100.0, 50.0]]).tolist()
    [[120.0, 120.0]]
    """
    s_snap = snap_points(net, sources, max_distance=max_distance)
    t_snap = snap_points(net, targets, max_distance=max_distance)
    graph = _augmented(net, weight, s_snap, t_snap)
    n, ns = net.n_nodes, len(s_snap)
    src = n + np.arange(ns)
    tgt = n + ns + np.arange(len(t_snap))
    return _batched(graph, src, tgt, math.inf, max_bytes)


def distances_to_points(
    net: RoadNetwork,
    sources: Any,
    points: Any,
    *,
    weight: Weight = "length",
    max_distance: float = math.inf,
) -> tuple[np.ndarray, np.ndarray]:
    """Distance from the nearest of several source nodes to each point on the road.

    One multi-source Dijkstra; each point is projected onto its nearest edge
    and reached along it (the connector is not included: see
    :func:`snap_points`).  With the nodes of a street as sources
    (:func:`street_nodes`) this is the distance from that street.

    Parameters
    ----------
    net : RoadNetwork
    sources : array-like of int
        Node positions.
    points : array-like or GeoSeries
        ``(K, 2)`` coordinates in ``net.crs`` or point geometries.
    weight : str or numpy.ndarray, default "length"
    max_distance : float, default inf
        Points farther than this from the road are not reached.

    Returns
    -------
    dist : numpy.ndarray
        ``(K,)`` distances, ``inf`` when not reached.
    nearest : numpy.ndarray
        ``(K,)`` position in ``sources`` of the nearest source, ``-1`` if none.

    Examples
    --------
    >>> net = _example_network()
    >>> d, near = distances_to_points(net, street_nodes(net, "main"), [[100.0, 50.0], [30.0, 2.0]])
    >>> d.tolist(), near.tolist()
    ([50.0, 30.0], [1, 0])
    """
    src = _check_nodes(net, sources, "sources")
    snap = snap_points(net, points, max_distance=max_distance)
    graph = _augmented(net, weight, _no_snap(), snap)
    dist, _, owner = dijkstra(
        graph, indices=np.unique(src), min_only=True, return_predecessors=True
    )
    tgt = net.n_nodes + np.arange(len(snap))
    first = np.full(graph.shape[0], -1, dtype=np.intp)
    first[src[::-1]] = np.arange(len(src))[::-1]
    nearest = np.where(owner[tgt] >= 0, first[np.maximum(owner[tgt], 0)], -1)
    return dist[tgt], nearest


def street_nodes(net: RoadNetwork, name: str, *, column: str = "name") -> np.ndarray:
    """Positions of the nodes of every edge whose ``column`` equals ``name``.

    Raises
    ------
    NetworkError
        When no edge has that name (the message lists the names there are).

    Examples
    --------
    >>> street_nodes(_example_network(), "side").tolist()
    [1, 3]
    """
    if column not in net.edges:
        raise NetworkError(f"road network: no {column!r} column to find street {name!r} in")
    hit = (net.edges[column] == name).fillna(False).to_numpy(dtype=bool)
    if not hit.any():
        names = sorted(net.edges[column].dropna().astype(str).unique())
        shown = ", ".join(names[:20]) + (", ..." if len(names) > 20 else "")
        raise NetworkError(
            f"road network: no edge has {column} = {name!r}; names found: {shown}. "
            "Check [access] central_street against the roads layer"
        )
    return np.unique(net.edges.loc[hit, ["u", "v"]].to_numpy())


def shortest_path(
    net: RoadNetwork,
    source: Any,
    target: Any,
    *,
    weight: Weight = "length",
    max_distance: float = math.inf,
) -> shapely.LineString:
    """The shortest route as one LineString, from ``source`` to ``target``.

    Parameters
    ----------
    net : RoadNetwork
    source, target : int or (x, y) or shapely Point
        A node position, or a point that is projected onto its nearest edge
        (the route then starts/ends at the projection, on the road).
    weight : str or numpy.ndarray, default "length"
    max_distance : float, default inf
        Largest allowed distance from a point to the road.

    Returns
    -------
    shapely.LineString
        The edge geometries along the route, oriented and concatenated; its
        length is the route length.

    Raises
    ------
    NetworkError
        When the target cannot be reached or a point is too far from the road.

    Examples
    --------
    >>> net = _example_network()
    >>> shortest_path(net, 0, 3).wkt
    'LINESTRING (0 0, 100 0, 100 80)'
    >>> shortest_path(net, (150, 5), 3).length
    130.0
    """
    w = _edge_weights(net, weight)
    ends = [
        _route_end(net, x, max_distance, name)
        for x, name in ((source, "source"), (target, "target"))
    ]
    s_snap = ends[0] if isinstance(ends[0], pd.DataFrame) else _no_snap()
    t_snap = ends[1] if isinstance(ends[1], pd.DataFrame) else _no_snap()
    graph = _augmented(net, weight, s_snap, t_snap)
    n = net.n_nodes
    s = n if isinstance(ends[0], pd.DataFrame) else int(ends[0])
    t = n + len(s_snap) if isinstance(ends[1], pd.DataFrame) else int(ends[1])
    dist, pred = dijkstra(graph, indices=s, return_predecessors=True)
    if not np.isfinite(dist[t]):
        raise NetworkError(
            f"road network: no route from {source!r} to {target!r}; they lie on "
            "unconnected parts of the network (check noding tolerance or one-way tags)"
        )
    path = _walk(pred, s, t)
    return _route_geometry(net, w, path, s_snap, t_snap)


# --------------------------------------------------------------------------- stages' kernels


def entrances(
    parcels: gpd.GeoDataFrame,
    net: RoadNetwork,
    *,
    tolerance: float = 5.0,
    merge_distance: float = 20.0,
) -> gpd.GeoDataFrame:
    """Where each parcel meets the road network.

    A contact is the stretch of road within ``tolerance`` of the parcel
    boundary; contacts closer than ``merge_distance`` to each other are one
    entrance (a frontage along a street, or the two sides of a corner, count
    once).  Each entrance is placed at the middle of its longest contact, on
    the road, so that distances can start there.

    Parameters
    ----------
    parcels : geopandas.GeoDataFrame
        Polygons in ``net.crs``.
    net : RoadNetwork
    tolerance : float, default 5.0
        Metres between boundary and road centre line that still count as
        touching (half a carriageway plus a verge).
    merge_distance : float, default 20.0

    Returns
    -------
    geopandas.GeoDataFrame
        Aligned to ``parcels.index``: ``n_entrances`` (int), ``entrances``
        (MultiPoint on the road, the active geometry; empty when none),
        ``connector`` (distance from the parcel to the nearest road, m: the
        length of the access road a parcel without entrance needs) and
        ``nearest_road_point`` (Point on that road).

    Examples
    --------
    >>> import geopandas as gpd
    >>> from shapely import box
    >>> net = _example_network()
    >>> parcels = gpd.GeoDataFrame(geometry=[box(110, 2, 160, 40), box(80, 20, 120, 60),
    ...                                      box(300, 300, 350, 350)], crs="EPSG:6677")
    >>> entrances(parcels, net)[["n_entrances", "connector"]].round(1)
       n_entrances  connector
    0            1        2.0
    1            2        0.0
    2            0      297.3
    """
    _same_crs(parcels.crs, net.crs, "parcels")
    geoms = parcels.geometry.values._data
    boundary = shapely.boundary(geoms)
    edge_geoms = net.edges.geometry.values._data
    pi, ei = net.edge_tree.query(boundary, predicate="dwithin", distance=tolerance)
    band = shapely.buffer(boundary, tolerance)
    contact = shapely.intersection(edge_geoms[ei], band[pi])
    parts, k = shapely.get_parts(contact, return_index=True)
    owner = pi[k]
    keep = ~shapely.is_empty(parts)
    parts, owner = parts[keep], owner[keep]
    label = _cluster_contacts(parts, owner, merge_distance)
    points, count = _entrance_points(parts, owner, label, len(geoms))
    _, road_idx = net.edge_tree.query_nearest(geoms, all_matches=False)
    link = shapely.shortest_line(geoms, edge_geoms[road_idx])
    out = gpd.GeoDataFrame(
        {"n_entrances": count, "connector": shapely.length(link)},
        geometry=gpd.GeoSeries(points, crs=net.crs, index=parcels.index),
        index=parcels.index,
    ).rename_geometry("entrances")
    out["nearest_road_point"] = gpd.GeoSeries(
        shapely.get_point(link, 1), crs=net.crs, index=parcels.index
    )
    return out


def coverage(
    districts: gpd.GeoDataFrame,
    facilities: gpd.GeoDataFrame,
    net: RoadNetwork,
    *,
    threshold: float,
    max_distance: float = math.inf,
    include_connectors: bool = True,
) -> pd.DataFrame:
    """Nearest facility of each district over the network, and who is beyond reach.

    District and facility points (centroids of polygons) are projected onto
    their nearest edge; one multi-source Dijkstra from all facilities finds
    each district's nearest facility.

    Parameters
    ----------
    districts, facilities : geopandas.GeoDataFrame
        Points or polygons in ``net.crs``.
    net : RoadNetwork
    threshold : float
        Metres; a district is ``beyond`` when its distance exceeds it.
    max_distance : float, default inf
        Points farther than this from the road are not reached.
    include_connectors : bool, default True
        Add both straight connectors (point to road) to ``distance``, and
        choose the nearest facility by that total.

    Returns
    -------
    pandas.DataFrame
        Aligned to ``districts.index``: ``facility`` (label in
        ``facilities.index``, NA when none is reached), ``distance``,
        ``network_distance`` (along the road only), ``connector`` (district
        side) and ``beyond`` (bool, True also when unreached).

    Examples
    --------
    >>> import geopandas as gpd
    >>> from shapely import Point
    >>> net = _example_network()
    >>> fac = gpd.GeoDataFrame({"name": ["A", "B"]}, geometry=[Point(0, 0), Point(200, 30)],
    ...                        crs="EPSG:6677").set_index("name")
    >>> dis = gpd.GeoDataFrame(geometry=[Point(40, 5), Point(100, 60)], crs="EPSG:6677")
    >>> coverage(dis, fac, net, threshold=150)
      facility  distance  network_distance  connector  beyond
    0        A      45.0              40.0        5.0   False
    1        A     160.0             160.0        0.0    True
    """
    _same_crs(districts.crs, net.crs, "districts")
    _same_crs(facilities.crs, net.crs, "facilities")
    d_snap = snap_points(net, _centroids(districts), max_distance=max_distance)
    f_snap = snap_points(net, _centroids(facilities), max_distance=max_distance)
    if len(facilities) == 0:
        raise NetworkError("coverage: facilities is empty; give at least one facility")
    start = f_snap["connector"].fillna(0).to_numpy() if include_connectors else None
    graph = _augmented(net, "length", f_snap, d_snap, source_cost=start)
    n, nf = net.n_nodes, len(f_snap)
    dist, _, owner = dijkstra(
        graph, indices=n + np.arange(nf), min_only=True, return_predecessors=True
    )
    tgt = n + nf + np.arange(len(d_snap))
    road = dist[tgt]
    near = np.where(owner[tgt] >= 0, owner[tgt] - n, -1)
    conn = d_snap["connector"].to_numpy()
    f_conn = np.where(near >= 0, f_snap["connector"].to_numpy()[np.maximum(near, 0)], np.nan)
    total = np.where(np.isfinite(road), road + conn, np.inf) if include_connectors else road
    network = road - f_conn if include_connectors else road
    labels = pd.Series(facilities.index.take(np.maximum(near, 0)), dtype=object)
    return pd.DataFrame(
        {
            "facility": labels.where(near >= 0).to_numpy(),
            "distance": total,
            "network_distance": network,
            "connector": conn,
            "beyond": ~(total <= threshold),
        },
        index=districts.index,
    )


def isochrones(
    net: RoadNetwork,
    source_nodes: Any,
    *,
    minutes: Sequence[float] = (5, 10, 15),
    speed_kmh: float = WALK_KMH,
    buffer: float = 25.0,
) -> gpd.GeoDataFrame:
    """Areas reached within each time from the nearest source node.

    Each polygon is the union of the reached road, buffered: whole edges
    reached within the time plus the reached part of edges the walker is
    still on when time runs out.  Not a convex hull.  For walking, pass
    ``ignore_oneway(net)``.

    Parameters
    ----------
    net : RoadNetwork
    source_nodes : array-like of int
        Node positions of the site's entrances.
    minutes : sequence of float, default (5, 10, 15)
    speed_kmh : float, default 4.8
    buffer : float, default 25.0
        Metres on each side of the reached road.

    Returns
    -------
    geopandas.GeoDataFrame
        One row per time: ``minutes``, ``distance`` (m), ``reached_length``
        (m of road reached) and the polygon (larger times contain smaller).

    Examples
    --------
    >>> net = _example_network()
    >>> iso = isochrones(net, [0, 3], minutes=[0.5], speed_kmh=6.0, buffer=1.0)
    >>> iso[["minutes", "distance", "reached_length"]].round(6).values.tolist()
    [[0.5, 50.0, 100.0]]
    """
    src = _check_nodes(net, source_nodes, "source_nodes")
    reach = [speed_kmh / 3.6 * 60.0 * float(m) for m in minutes]
    dist, _ = multi_source_distances(net, src, limit=max(reach, default=0.0))
    rows = []
    for m, d_max in zip(minutes, reach):  # a handful of thresholds, each vectorised
        pieces = _reached_pieces(net, dist, d_max)
        seeds = shapely.points(net.coords[src])
        area = shapely.buffer(shapely.geometrycollections([*pieces, *seeds]), buffer)
        rows.append((float(m), d_max, float(shapely.length(pieces).sum()), area))
    frame = pd.DataFrame(rows, columns=["minutes", "distance", "reached_length", "geometry"])
    return gpd.GeoDataFrame(frame, geometry="geometry", crs=net.crs)


def route_grade(
    line: shapely.LineString,
    dem_path: str | PathLike[str],
    *,
    crs: Any = None,
    step: float = 5.0,
    window: float = 20.0,
) -> dict[str, Any]:
    """Elevation profile and grades of a route, sampled on a DEM.

    The DEM is read only over the route's bounding box and interpolated
    bilinearly every ``step`` metres (and at the end).

    Parameters
    ----------
    line : shapely.LineString
        The route, in ``crs`` (metres).
    dem_path : str or path-like
        Raster readable by rasterio; may be in another CRS (e.g. the GSI DEM
        in EPSG:6668): sample points are transformed to it.
    crs : anything pyproj accepts, optional
        CRS of ``line``; defaults to the DEM's, which must then be projected.
    step : float, default 5.0
        Sampling interval in metres.
    window : float, default 20.0
        Length over which the max grade is measured: the steepest
        ``|z(d + window) - z(d)| / window`` along the route, so that a single
        noisy DEM cell does not make a 40 % spike.  Routes shorter than the
        window use their whole length.

    Returns
    -------
    dict
        ``length`` (m), ``rise`` (end minus start, m), ``climb`` (sum of
        ascents, m), ``mean_grade_pct`` (length-weighted mean of
        ``|dz/dx|``, i.e. sum of ``|dz|`` over length, in %),
        ``max_grade_pct`` and the profile ``distances`` and ``elevations``.

    Raises
    ------
    RasterError
        When the route leaves the DEM or crosses nodata.

    Examples
    --------
    >>> import tempfile, pathlib, numpy as np, rasterio
    >>> from affine import Affine
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "plane.tif"
    >>> z = (np.arange(40) * 5.0 + 2.5)[None, :].repeat(40, 0) * 0.068
    >>> with rasterio.open(path, "w", driver="GTiff", width=40, height=40, count=1,
    ...                    dtype="float64", crs="EPSG:6677",
    ...                    transform=Affine(5, 0, 0, 0, -5, 200)) as dst:
    ...     dst.write(z, 1)
    >>> g = route_grade(shapely.LineString([(20, 100), (120, 100)]), path)
    >>> round(g["mean_grade_pct"], 6), round(g["max_grade_pct"], 6), round(g["rise"], 6)
    (6.8, 6.8, 6.8)
    """
    import rasterio

    if line.is_empty or line.length == 0:
        raise NetworkError("route_grade: the route is empty or has zero length")
    step = float(step)
    if step <= 0:
        raise NetworkError(f"route_grade: step must be > 0 m, got {step}")
    dist = np.unique(np.append(np.arange(0.0, line.length, step), line.length))
    xy = shapely.get_coordinates(shapely.line_interpolate_point(line, dist))
    with rasterio.open(dem_path) as src:
        xy = _to_raster_crs(xy, crs, src.crs, dem_path)
        z = _sample_bilinear(src, xy, dem_path)
    return _grade_profile(dist, z, float(window))


# --------------------------------------------------------------------------- private: building


def _metric_crs(crs: Any, what: str) -> CRS:
    """The CRS as pyproj.CRS, refusing a missing or geographic one."""
    if crs is None:
        raise CRSError(f"{what}: no CRS; set one with .set_crs() (e.g. EPSG:6677) first")
    crs = CRS.from_user_input(crs)
    if not crs.is_projected:
        raise CRSError(
            f"{what}: CRS {crs.to_string()} is geographic (degrees); reproject to a "
            "metric CRS such as a JGD2011 plane rectangular zone (EPSG:6669-6687)"
        )
    return crs


def _line_parts(lines: gpd.GeoDataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Single LineStrings of the frame and the row position of each."""
    geoms = lines.geometry.values._data
    kinds = shapely.get_type_id(geoms)
    bad = ~np.isin(kinds, (-1, 1, 5))  # None, LineString, MultiLineString
    if bad.any():
        found = sorted(set(lines.geometry[bad].geom_type))
        raise LayerError(
            f"road lines: {int(bad.sum())} geometries are {found}, expected LineString or "
            "MultiLineString; drop or convert them before building the network"
        )
    parts, rows = shapely.get_parts(geoms, return_index=True)
    ok = ~shapely.is_empty(parts) & (shapely.get_num_coordinates(parts) >= 2)
    if not ok.any():
        raise LayerError("road lines: no line with at least two vertices")
    return parts[ok], rows[ok]


def _oneway_flags(
    lines: gpd.GeoDataFrame, column: str | None, rows: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per part: reverse the drawing direction? and one-way? flags."""
    if column is None:
        none = np.zeros(len(rows), dtype=bool)
        return none, none
    raw = lines[column].astype("str").str.strip().str.lower().fillna("")
    raw = raw.str.replace(r"\.0$", "", regex=True).to_numpy()[rows]
    reverse = np.isin(raw, list(_REVERSE))
    return reverse, reverse | np.isin(raw, list(_TRUE))


def _vertices(parts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Vertex coordinates, part index and measure along the part.

    Consecutive repeated coordinates are dropped.
    """
    xy, part = shapely.get_coordinates(parts, return_index=True)
    same = part[1:] == part[:-1]
    rep = np.r_[False, same & (xy[1:] == xy[:-1]).all(axis=1)]
    xy, part = xy[~rep], part[~rep]
    return xy, part, _measures(xy, part)


def _measures(xy: np.ndarray, part: np.ndarray) -> np.ndarray:
    """Cumulative length along each part at each vertex (parts contiguous)."""
    step = np.zeros(len(xy))
    same = part[1:] == part[:-1]
    step[1:] = np.where(same, np.hypot(*(xy[1:] - xy[:-1]).T), 0.0)
    total = np.cumsum(step)
    start = np.flatnonzero(np.r_[True, ~same])
    group = np.cumsum(np.r_[True, ~same]) - 1
    return total - total[start][group]


def _junction_points(
    parts: np.ndarray, tolerance: float, join_crossings: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Points to insert into parts: T-junctions (and crossings when asked).

    Returns coordinates, the part to insert into and the measure along it.
    """
    tree = shapely.STRtree(parts)
    ends = np.concatenate([shapely.get_point(parts, 0), shapely.get_point(parts, -1)])
    owner = np.tile(np.arange(len(parts)), 2)
    ei, pj = tree.query(ends, predicate="dwithin", distance=tolerance)
    keep = pj != owner[ei]
    ei, pj = ei[keep], pj[keep]
    meas = shapely.line_locate_point(parts[pj], ends[ei])
    into = [pj]
    if join_crossings:
        a, b = tree.query(parts, predicate="intersects")
        a, b = a[a < b], b[a < b]
        pts, k = shapely.get_parts(shapely.intersection(parts[a], parts[b]), return_index=True)
        is_pt = shapely.get_type_id(pts) == 0
        pts, k = pts[is_pt], k[is_pt]
        for host in (a[k], b[k]):
            into.append(host)
            meas = np.concatenate([meas, shapely.line_locate_point(parts[host], pts)])
    into_arr = np.concatenate(into)
    xy = shapely.get_coordinates(shapely.line_interpolate_point(parts[into_arr], meas))
    return xy, into_arr, meas


def _with_inserted(
    xy: np.ndarray,
    part: np.ndarray,
    meas: np.ndarray,
    extra: tuple[np.ndarray, np.ndarray, np.ndarray],
    reverse: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Merge inserted points into the vertex sequence, ordered along each part.

    Parts flagged in ``reverse`` are ordered end to start.
    """
    exy, epart, emeas = extra
    all_xy = np.concatenate([xy, exy])
    all_part = np.concatenate([part, epart])
    all_meas = np.concatenate([meas, emeas])
    inserted = np.r_[np.zeros(len(xy), bool), np.ones(len(exy), bool)]
    signed = np.where(reverse[all_part], -all_meas, all_meas)
    order = np.lexsort((inserted, signed, all_part))
    return all_xy[order], all_part[order], all_meas[order], inserted[order]


def _cluster(
    xy: np.ndarray, part: np.ndarray, meas: np.ndarray, inserted: np.ndarray, tolerance: float
) -> tuple[np.ndarray, np.ndarray]:
    """Merge vertices within ``tolerance`` (single linkage); snap them together.

    Returns the cluster label of each vertex and the snapped coordinates.
    """
    pairs = cKDTree(xy).query_pairs(tolerance, output_type="ndarray")
    i, j = pairs[:, 0], pairs[:, 1]
    link = (part[i] != part[j]) | inserted[i] | inserted[j]
    link |= np.abs(meas[i] - meas[j]) > 2 * tolerance
    i, j = i[link], j[link]
    m = len(xy)
    graph = sp.coo_array((np.ones(len(i), dtype=np.int8), (i, j)), shape=(m, m))
    _, label = connected_components(graph, directed=False)
    is_end = np.r_[True, part[1:] != part[:-1]] | np.r_[part[1:] != part[:-1], True]
    priority = np.where(is_end, 2, np.where(inserted, 1, 0))
    order = np.lexsort((np.arange(m), priority, label))
    first = order[np.r_[True, label[order][1:] != label[order][:-1]]]
    return label, xy[first][label]


def _split(
    xy: np.ndarray, part: np.ndarray, key: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Cut parts into edges at node vertices.

    Parameters are the ordered vertices of all parts (contiguous per part) and
    each vertex's node key (equal keys are the same place).  A vertex is a
    node when it ends its part or its key occurs more than once.

    Returns node coordinates, node keys, edge geometries, ``u``, ``v`` (node
    positions) and the part each edge comes from.
    """
    dup = np.r_[False, (part[1:] == part[:-1]) & (key[1:] == key[:-1])]
    xy, part, key = xy[~dup], part[~dup], key[~dup]
    ok = np.bincount(part)[part] >= 2
    xy, part, key = xy[ok], part[ok], key[ok]
    if len(xy) == 0:
        raise LayerError("road lines: every line is shorter than the snapping tolerance")
    first = np.r_[True, part[1:] != part[:-1]]
    last = np.r_[part[1:] != part[:-1], True]
    is_node = first | last | (np.bincount(key)[key] >= 2)
    src = np.repeat(np.arange(len(xy)), np.where(is_node & ~first & ~last, 2, 1))
    starts = first[src] | np.r_[False, src[1:] == src[:-1]]
    edge = np.cumsum(starts) - 1
    geoms = shapely.linestrings(xy[src], indices=edge)
    begin = np.flatnonzero(starts)
    end = np.r_[begin[1:] - 1, len(src) - 1]
    node_key, node_first = np.unique(key[is_node], return_index=True)
    node_xy = xy[is_node][node_first]
    u = np.searchsorted(node_key, key[src[begin]])
    v = np.searchsorted(node_key, key[src[end]])
    return node_xy, node_key, geoms, u, v, part[src[begin]]


def _carried(lines: gpd.GeoDataFrame, rows: np.ndarray) -> pd.DataFrame:
    """Attributes of the source rows, one per edge, without reserved names."""
    drop = [c for c in lines.columns if c in _RESERVED or c == lines.geometry.name]
    attrs = pd.DataFrame(lines.drop(columns=drop)).iloc[rows].reset_index(drop=True)
    attrs.insert(0, "source_index", lines.index.take(rows))
    return attrs


def _assemble(
    node_xy: np.ndarray,
    node_ids: np.ndarray,
    geoms: np.ndarray,
    u: np.ndarray,
    v: np.ndarray,
    attrs: pd.DataFrame,
    crs: CRS,
) -> RoadNetwork:
    """Edge frame and adjacency -> RoadNetwork."""
    edges = pd.DataFrame({"u": u.astype(np.intp), "v": v.astype(np.intp)})
    edges["length"] = shapely.length(geoms)
    edges["oneway"] = attrs.pop("oneway").to_numpy(dtype=bool) if "oneway" in attrs else False
    speed = attrs.pop("speed_kmh") if "speed_kmh" in attrs else np.nan
    edges["speed_kmh"] = np.asarray(speed, dtype=float)
    edges = pd.concat([edges, attrs.reset_index(drop=True)], axis=1)
    gdf = gpd.GeoDataFrame(edges, geometry=geoms, crs=crs)
    adj = _adjacency(len(node_xy), gdf, gdf["length"].to_numpy())
    return RoadNetwork(np.asarray(node_xy, float), np.asarray(node_ids, np.int64), gdf, crs, adj)


def _adjacency(n: int, edges: pd.DataFrame, w: np.ndarray) -> sp.csr_array:
    """Directed CSR: two-way edges both ways, one-way u->v; lightest of parallels."""
    u = edges["u"].to_numpy()
    v = edges["v"].to_numpy()
    oneway = edges["oneway"].to_numpy(dtype=bool)
    loop = u == v
    back = ~oneway & ~loop
    rows = np.concatenate([u[~loop], v[back]])
    cols = np.concatenate([v[~loop], u[back]])
    data = np.concatenate([w[~loop], w[back]]).astype(float)
    return _csr_min(rows, cols, data, n)


def _csr_min(rows: np.ndarray, cols: np.ndarray, data: np.ndarray, n: int) -> sp.csr_array:
    """CSR matrix keeping the minimum of duplicate entries (zeros are edges)."""
    order = np.lexsort((data, cols, rows))
    rows, cols, data = rows[order], cols[order], data[order]
    keep = np.r_[True, (rows[1:] != rows[:-1]) | (cols[1:] != cols[:-1])]
    return sp.csr_array((data[keep], (rows[keep], cols[keep])), shape=(n, n))


def _osm_oneway(roads: gpd.GeoDataFrame) -> np.ndarray:
    """Per way: 1 one-way along, -1 one-way against the drawing, 0 two-way."""
    tag = roads["oneway"].fillna("").str.lower().to_numpy()
    implied = (roads["junction"].fillna("") == "roundabout") | (roads["highway"] == "motorway")
    flags = np.where(np.isin(tag, list(_TRUE)) | implied.to_numpy(), 1, 0)
    flags = np.where(np.isin(tag, list(_REVERSE)), -1, flags)
    return np.where(tag == "no", 0, flags).astype(np.int8)


def _leading_number(values: np.ndarray) -> np.ndarray:
    """Leading number of each value as float (``"5.5 m"`` -> 5.5); NaN if none."""
    text = pd.Series(values, dtype=object).astype("str")
    num = pd.to_numeric(text.str.extract(r"^\s*([0-9]+(?:\.[0-9]+)?)")[0], errors="coerce")
    return num.to_numpy(dtype=float)


def _parse_speed(values: np.ndarray) -> np.ndarray:
    """Speeds in km/h from numbers or OSM ``maxspeed`` strings (``"25 mph"``)."""
    text = pd.Series(values, dtype=object).astype("str")
    mph = text.str.contains("mph", na=False).to_numpy()
    out = _leading_number(values)
    return np.where(mph, out * 1.609344, out)


# --------------------------------------------------------------------------- private: queries


def _as_xy(points: Any, crs: CRS, what: str) -> np.ndarray:
    """``(K, 2)`` float coordinates of points given as array or geometries."""
    if isinstance(points, (gpd.GeoSeries, gpd.GeoDataFrame)):
        _same_crs(points.crs, crs, what)
        return shapely.get_coordinates(points.geometry.values._data)
    if isinstance(points, shapely.Geometry):
        return shapely.get_coordinates(points)
    arr = np.asarray(points)
    if arr.dtype == object:
        return shapely.get_coordinates(arr)
    return np.asarray(arr, dtype=float).reshape(-1, 2)


def _same_crs(found: Any, expected: CRS, what: str) -> None:
    """Raise CRSError unless ``found`` equals the network's CRS."""
    if found is None or CRS.from_user_input(found) != expected:
        got = "no CRS" if found is None else CRS.from_user_input(found).to_string()
        raise CRSError(
            f"{what}: CRS is {got}, the road network's is {expected.to_string()}; "
            f"reproject with .to_crs({expected.to_string()!r})"
        )


def _centroids(frame: gpd.GeoDataFrame) -> np.ndarray:
    """Point coordinates of points, centroids of other geometries."""
    return shapely.get_coordinates(shapely.centroid(frame.geometry.values._data))


def _check_nodes(net: RoadNetwork, nodes: Any, what: str) -> np.ndarray:
    """Node positions as intp, checked to be in range."""
    arr = np.atleast_1d(np.asarray(nodes)).astype(np.intp, copy=False)
    bad = (arr < 0) | (arr >= net.n_nodes)
    if bad.any() or arr.ndim != 1:
        raise NetworkError(
            f"road network: {what} must be node positions 0..{net.n_nodes - 1}, got "
            f"{arr[bad][:5].tolist()}; map OSM ids with net.index_of(...)"
        )
    return arr


def _edge_weights(net: RoadNetwork, weight: Weight) -> np.ndarray:
    """One non-negative weight per edge."""
    if isinstance(weight, str):
        if weight not in net.edges:
            raise NetworkError(f"road network: weight column {weight!r} is not an edge column")
        w = net.edges[weight].to_numpy(dtype=float)
    else:
        w = np.asarray(weight, dtype=float)
        if w.shape != (net.n_edges,):
            raise NetworkError(
                f"road network: weight has shape {w.shape}, expected ({net.n_edges},)"
            )
    if not np.isfinite(w).all() or (w < 0).any():
        raise NetworkError(
            f"road network: weight {weight if isinstance(weight, str) else 'array'} "
            "has NaN, infinite or negative values; fill them first"
        )
    return w


def _graph(net: RoadNetwork, weight: Weight) -> sp.csr_array:
    """The adjacency for a weight (the stored one for length)."""
    if isinstance(weight, str) and weight == "length":
        return net.adjacency
    return _adjacency(net.n_nodes, net.edges, _edge_weights(net, weight))


def _batched(
    graph: sp.csr_array, src: np.ndarray, tgt: np.ndarray, limit: float, max_bytes: int
) -> np.ndarray:
    """Source-by-target distances, Dijkstra run on batches of sources."""
    n = graph.shape[0]
    batch = max(1, int(max_bytes) // (8 * max(n, 1)))
    out = np.empty((len(src), len(tgt)))
    for lo in range(0, len(src), batch):  # batches bound the memory of full rows
        rows = dijkstra(graph, indices=src[lo : lo + batch], limit=limit)
        out[lo : lo + batch] = np.atleast_2d(rows)[:, tgt]
    return out


def _no_snap() -> pd.DataFrame:
    """An empty snap table."""
    cols = ("edge", "u", "v", "offset", "length", "connector", "x", "y")
    return pd.DataFrame({c: np.empty(0, dtype=float) for c in cols})


def _augmented(
    net: RoadNetwork,
    weight: Weight,
    sources: pd.DataFrame,
    targets: pd.DataFrame,
    *,
    source_cost: np.ndarray | None = None,
) -> sp.csr_array:
    """Graph with virtual nodes for snapped points: N + S sources + T targets.

    A source splits its edge and leaves towards ``v`` (and ``u`` if the edge
    is two-way); a target is entered from ``u`` (and ``v``).  A source and a
    target on the same edge are also linked directly.  ``source_cost`` adds
    a start cost per source (e.g. its connector length).
    """
    n, ns, nt = net.n_nodes, len(sources), len(targets)
    oneway = net.edges["oneway"].to_numpy(dtype=bool)
    w = _edge_weights(net, weight)
    coo = _graph(net, weight).tocoo()
    rows, cols, data = [coo.row], [coo.col], [coo.data]
    s = _split_weights(sources, w, oneway, n, source_cost)
    t = _split_weights(targets, w, oneway, n + ns, None)
    rows += [s["vid"], s["vid"][s["two"]], t["u"], t["v"][t["two"]]]
    cols += [s["v"], s["u"][s["two"]], t["vid"], t["vid"][t["two"]]]
    data += [s["wv"], s["wu"][s["two"]], t["wu"], t["wv"][t["two"]]]
    same = _same_edge_links(s, t, w)
    rows.append(same[0])
    cols.append(same[1])
    data.append(same[2])
    size = n + ns + nt
    return _csr_min(np.concatenate(rows), np.concatenate(cols), np.concatenate(data), size)


def _split_weights(
    snap: pd.DataFrame, w: np.ndarray, oneway: np.ndarray, first: int, cost: np.ndarray | None
) -> dict[str, np.ndarray]:
    """Virtual-node ids and the weights of the two halves of each snapped edge."""
    ok = snap["edge"].to_numpy() >= 0
    e = snap["edge"].to_numpy()[ok].astype(np.intp)
    length = snap["length"].to_numpy()[ok]
    frac = np.divide(snap["offset"].to_numpy()[ok], length, out=np.zeros(len(e)), where=length > 0)
    extra = np.zeros(len(e)) if cost is None else np.asarray(cost, float)[ok]
    return {
        "vid": first + np.flatnonzero(ok),
        "edge": e,
        "frac": frac,
        "u": snap["u"].to_numpy()[ok].astype(np.intp),
        "v": snap["v"].to_numpy()[ok].astype(np.intp),
        "wu": w[e] * frac + extra,
        "wv": w[e] * (1.0 - frac) + extra,
        "two": ~oneway[e],
        "cost": extra,
    }


def _same_edge_links(
    s: dict[str, np.ndarray], t: dict[str, np.ndarray], w: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Direct source->target arcs for pairs snapped onto the same edge."""
    left = pd.DataFrame({"edge": s["edge"], "sid": s["vid"], "sf": s["frac"], "c": s["cost"]})
    right = pd.DataFrame({"edge": t["edge"], "tid": t["vid"], "tf": t["frac"], "two": t["two"]})
    pairs = left.merge(right, on="edge")
    ahead = pairs["tf"].to_numpy() >= pairs["sf"].to_numpy()
    ok = ahead | pairs["two"].to_numpy(dtype=bool)
    pairs = pairs[ok]
    gap = np.abs(pairs["tf"].to_numpy() - pairs["sf"].to_numpy())
    weight = w[pairs["edge"].to_numpy(dtype=np.intp)] * gap + pairs["c"].to_numpy()
    return pairs["sid"].to_numpy(np.intp), pairs["tid"].to_numpy(np.intp), weight


def _route_end(net: RoadNetwork, end: Any, max_distance: float, what: str) -> int | pd.DataFrame:
    """A node position, or the snap of a point."""
    if isinstance(end, (int, np.integer)):
        return int(_check_nodes(net, [end], what)[0])
    snap = snap_points(
        net, np.reshape(_as_xy(end, net.crs, what), (1, 2)), max_distance=max_distance
    )
    if snap.loc[0, "edge"] < 0:
        raise NetworkError(
            f"road network: {what} {end!r} is farther than {max_distance} m from any road"
        )
    return snap


def _walk(pred: np.ndarray, s: int, t: int) -> np.ndarray:
    """Node sequence from s to t following Dijkstra predecessors.

    A loop over the path's nodes: each predecessor depends on the previous
    one, so this cannot be vectorised (it is O(path length)).
    """
    path = [t]
    while path[-1] != s:
        path.append(int(pred[path[-1]]))
    return np.asarray(path[::-1], dtype=np.intp)


def _route_geometry(
    net: RoadNetwork, w: np.ndarray, path: np.ndarray, s_snap: pd.DataFrame, t_snap: pd.DataFrame
) -> shapely.LineString:
    """Concatenate oriented edge geometries (and partial edges) along a path."""
    n = net.n_nodes
    geoms = net.edges.geometry.values._data
    pieces: list[np.ndarray] = []
    a, b = path[:-1], path[1:]
    real = (a < n) & (b < n)
    real_geoms = _hop_geometries(net, w, a[real], b[real])
    it = iter(real_geoms)
    for hop_a, hop_b, is_real in zip(a, b, real):  # path hops: a handful are virtual
        if is_real:
            pieces.append(shapely.get_coordinates(next(it)))
            continue
        # a virtual hop runs along the snapped edge of the source or the target
        snap = s_snap.iloc[0] if hop_a >= n else t_snap.iloc[0]
        node_end = {int(snap["u"]): 0.0, int(snap["v"]): float(snap["length"])}
        o0 = float(s_snap.iloc[0]["offset"]) if hop_a >= n else node_end[int(hop_a)]
        o1 = float(t_snap.iloc[0]["offset"]) if hop_b >= n else node_end[int(hop_b)]
        pieces.append(_substring_coords(geoms[int(snap["edge"])], o0, o1))
    if not pieces:
        xy = net.coords[path[:1]] if path[0] < n else s_snap[["x", "y"]].to_numpy()
        return shapely.LineString(np.repeat(xy, 2, axis=0))
    xy = np.concatenate(pieces)
    keep = np.r_[True, (xy[1:] != xy[:-1]).any(axis=1)]
    xy = xy[keep]
    return shapely.LineString(xy if len(xy) > 1 else np.repeat(xy, 2, axis=0))


def _hop_geometries(net: RoadNetwork, w: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """For each hop a->b the lightest allowed edge geometry, oriented a->b."""
    e = net.edges
    u, v = e["u"].to_numpy(), e["v"].to_numpy()
    on = np.flatnonzero(np.isin(u, a) & np.isin(v, b) | np.isin(u, b) & np.isin(v, a))
    two = ~e["oneway"].to_numpy(dtype=bool)[on]
    cand = pd.DataFrame(
        {
            "a": np.concatenate([u[on], v[on][two]]),
            "b": np.concatenate([v[on], u[on][two]]),
            "w": np.concatenate([w[on], w[on][two]]),
            "edge": np.concatenate([on, on[two]]),
            "rev": np.r_[np.zeros(len(on), bool), np.ones(int(two.sum()), bool)],
        }
    )
    hops = pd.DataFrame({"a": a, "b": b, "pos": np.arange(len(a))})
    best = hops.merge(cand, on=["a", "b"]).sort_values(["pos", "w"]).drop_duplicates("pos")
    if len(best) != len(hops):
        raise NetworkError("road network: a route hop has no edge; the adjacency is stale")
    geoms = e.geometry.values._data[best["edge"].to_numpy()]
    rev = best["rev"].to_numpy()
    geoms[rev] = shapely.reverse(geoms[rev])
    return geoms


def _substring_coords(line: shapely.LineString, start: float, end: float) -> np.ndarray:
    """Coordinates of the part of ``line`` from measure ``start`` to ``end`` (either order)."""
    lo, hi = min(start, end), max(start, end)
    sub = _substrings(np.array([line], dtype=object), np.array([lo]), np.array([hi]))[0]
    xy = shapely.get_coordinates(sub)
    return xy if start <= end else xy[::-1]


def _substrings(geoms: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """Vectorised sub-lines of ``geoms`` between measures ``start <= end``."""
    if len(geoms) == 0:
        return np.empty(0, dtype=object)
    xy, idx = shapely.get_coordinates(geoms, return_index=True)
    meas = _measures(xy, idx)
    inside = (meas > start[idx]) & (meas < end[idx])
    p0 = shapely.get_coordinates(shapely.line_interpolate_point(geoms, start))
    p1 = shapely.get_coordinates(shapely.line_interpolate_point(geoms, end))
    k = np.arange(len(geoms))
    all_xy = np.concatenate([p0, xy[inside], p1])
    all_i = np.concatenate([k, idx[inside], k])
    all_m = np.concatenate([start, meas[inside], end])
    rank = np.concatenate([np.zeros(len(k)), np.ones(int(inside.sum())), np.full(len(k), 2)])
    order = np.lexsort((rank, all_m, all_i))
    return shapely.linestrings(all_xy[order], indices=all_i[order])


def _reached_pieces(net: RoadNetwork, dist: np.ndarray, d_max: float) -> np.ndarray:
    """Edges (or their reached ends) within ``d_max`` of the sources."""
    e = net.edges
    u, v = e["u"].to_numpy(), e["v"].to_numpy()
    length = e["length"].to_numpy()
    geoms = e.geometry.values._data
    reach_u = dist[u] <= d_max
    reach_v = (dist[v] <= d_max) & ~e["oneway"].to_numpy(dtype=bool)
    ru = np.where(reach_u, np.minimum(d_max - dist[u], length), 0.0)
    rv = np.where(reach_v, np.minimum(d_max - dist[v], length), 0.0)
    full = (reach_u | reach_v) & (ru + rv >= length)
    from_u = reach_u & ~full & (ru > 0)
    from_v = reach_v & ~full & (rv > 0)
    part_u = _substrings(geoms[from_u], np.zeros(int(from_u.sum())), ru[from_u])
    part_v = _substrings(geoms[from_v], length[from_v] - rv[from_v], length[from_v])
    return np.concatenate([geoms[full], part_u, part_v])


def _cluster_contacts(parts: np.ndarray, owner: np.ndarray, merge_distance: float) -> np.ndarray:
    """Label contacts of one parcel that lie within ``merge_distance`` of each other."""
    if len(parts) == 0:
        return np.empty(0, dtype=np.intp)
    i, j = shapely.STRtree(parts).query(parts, predicate="dwithin", distance=merge_distance)
    same = owner[i] == owner[j]
    m = len(parts)
    graph = sp.coo_array((np.ones(int(same.sum()), np.int8), (i[same], j[same])), shape=(m, m))
    return connected_components(graph, directed=False)[1]


def _entrance_points(
    parts: np.ndarray, owner: np.ndarray, label: np.ndarray, n_parcels: int
) -> tuple[np.ndarray, np.ndarray]:
    """One point per contact cluster (middle of its longest contact), per parcel."""
    count = np.zeros(n_parcels, dtype=np.int64)
    points = shapely.from_wkt(np.full(n_parcels, "MULTIPOINT EMPTY", dtype=object))
    if len(parts) == 0:
        return points, count
    length = shapely.length(parts)
    order = np.lexsort((-length, label))
    best = order[np.r_[True, label[order][1:] != label[order][:-1]]]
    mid = shapely.line_interpolate_point(parts[best], 0.5, normalized=True)
    mid = np.where(shapely.get_type_id(parts[best]) == 0, parts[best], mid)
    by = owner[best]
    count = np.bincount(by, minlength=n_parcels).astype(np.int64)
    sort = np.argsort(by, kind="stable")
    have, compact = np.unique(by[sort], return_inverse=True)
    points[have] = shapely.multipoints(shapely.get_coordinates(mid[sort]), indices=compact)
    return points, count


def _to_raster_crs(xy: np.ndarray, crs: Any, raster_crs: Any, path: Any) -> np.ndarray:
    """Transform route samples to the DEM's CRS (checking the route is metric)."""
    if raster_crs is None:
        raise RasterError(f"DEM {path}: no CRS; it cannot be matched to the route")
    line_crs = _metric_crs(crs if crs is not None else raster_crs, f"route on DEM {path}")
    target = CRS.from_user_input(raster_crs)
    if line_crs == target:
        return xy
    from pyproj import Transformer

    tr = Transformer.from_crs(line_crs, target, always_xy=True)
    return np.column_stack(tr.transform(xy[:, 0], xy[:, 1]))


def _sample_bilinear(src: Any, xy: np.ndarray, path: Any) -> np.ndarray:
    """Bilinear DEM values at points, reading only the window around them."""
    from rasterio.windows import Window
    from scipy.ndimage import map_coordinates

    inv = ~src.transform
    cols = inv.a * xy[:, 0] + inv.b * xy[:, 1] + inv.c - 0.5  # pixel centres at integers
    rows = inv.d * xy[:, 0] + inv.e * xy[:, 1] + inv.f - 0.5
    outside = (cols < -0.5) | (rows < -0.5) | (cols > src.width - 0.5) | (rows > src.height - 0.5)
    if outside.any():
        raise RasterError(
            f"DEM {path}: {int(outside.sum())} of {len(xy)} samples of the route fall outside "
            "the raster; use a DEM that covers the whole route"
        )
    c0, r0 = max(int(np.floor(cols.min())), 0), max(int(np.floor(rows.min())), 0)
    c1 = min(int(np.floor(cols.max())) + 2, src.width)
    r1 = min(int(np.floor(rows.max())) + 2, src.height)
    data = src.read(1, window=Window(c0, r0, c1 - c0, r1 - r0), masked=True)
    grid = np.ma.filled(data.astype(float), np.nan)
    z = map_coordinates(grid, [rows - r0, cols - c0], order=1, mode="nearest")
    if not np.isfinite(z).all():
        raise RasterError(
            f"DEM {path}: {int((~np.isfinite(z)).sum())} samples of the route fall on nodata; "
            "fill the DEM's gaps or route around them"
        )
    return z


def _grade_profile(dist: np.ndarray, z: np.ndarray, window: float) -> dict[str, Any]:
    """Length, rise, climb, mean and windowed max grade of a profile."""
    length = float(dist[-1])
    dz = np.diff(z)
    mean = float(np.abs(dz).sum() / length * 100.0)
    span = min(window, length)
    ahead = dist[dist + span <= length + 1e-9]
    z_ahead = np.interp(ahead + span, dist, z)
    z_here = np.interp(ahead, dist, z)
    steepest = float(np.abs(z_ahead - z_here).max() / span * 100.0)
    return {
        "length": length,
        "rise": float(z[-1] - z[0]),
        "climb": float(dz[dz > 0].sum()),
        "mean_grade_pct": mean,
        "max_grade_pct": steepest,
        "distances": dist,
        "elevations": z,
    }


def _example_network() -> RoadNetwork:
    """A 4-node T for the docstring examples: (0,0)-(100,0)-(200,0), (100,0)-(100,80)."""
    lines = gpd.GeoDataFrame(
        {"name": ["main", "side"]},
        geometry=[
            shapely.LineString([(0, 0), (200, 0)]),
            shapely.LineString([(100, 0), (100, 80)]),
        ],
        crs="EPSG:6677",
    )
    return network_from_lines(lines)
