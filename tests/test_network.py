"""Tests for pipeline.network, checked by hand and against networkx."""

from __future__ import annotations

import math
from pathlib import Path

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import pytest
import rasterio
import shapely
from affine import Affine
from shapely import LineString, Point, box

from pipeline.errors import CRSError, LayerError, NetworkError, RasterError
from pipeline.network import (
    RoadNetwork,
    coverage,
    distance_matrix,
    distances_to_points,
    edge_travel_times,
    entrances,
    ignore_oneway,
    isochrones,
    multi_source_distances,
    nearest_nodes,
    network_from_lines,
    network_from_osm,
    point_distance_matrix,
    route_grade,
    shortest_path,
    snap_points,
    street_nodes,
)

CRS = "EPSG:6677"  # JGD2011 / Japan Plane Rectangular CS IX (metres)
UTM10 = "EPSG:32610"  # for the Oakland extract


def frame(geoms: list, crs: str = CRS, **cols: list) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(cols, geometry=geoms, crs=crs)


def grid_lines(n: int = 10, block: float = 100.0) -> gpd.GeoDataFrame:
    """n streets each way, each street one LineString through all its crossings."""
    ticks = np.arange(n) * block
    rows = [LineString([(x, y) for x in ticks]) for y in ticks]
    cols = [LineString([(x, y) for y in ticks]) for x in ticks]
    return frame(rows + cols, name=[f"row{i}" for i in range(n)] + [f"col{i}" for i in range(n)])


def node_at(net: RoadNetwork, x: float, y: float) -> int:
    idx, d = nearest_nodes(net, [[x, y]])
    assert d[0] < 1e-6
    return int(idx[0])


def to_networkx(net: RoadNetwork, weight: np.ndarray | None = None) -> nx.DiGraph:
    """Reference graph from the network's edges (lightest of parallel edges)."""
    w = net.edges["length"].to_numpy() if weight is None else weight
    g = nx.DiGraph()
    g.add_nodes_from(range(net.n_nodes))
    e = net.edges
    for u, v, one, wt in zip(e["u"], e["v"], e["oneway"], w):
        for a, b in ((u, v),) if one else ((u, v), (v, u)):
            if a != b and (not g.has_edge(a, b) or g[a][b]["w"] > wt):
                g.add_edge(a, b, w=wt)
    return g


@pytest.fixture(scope="module")
def grid() -> RoadNetwork:
    return network_from_lines(grid_lines())


@pytest.fixture(scope="module")
def oakland(fixtures_dir: Path) -> RoadNetwork:
    return network_from_osm(fixtures_dir / "osm" / "West-Oakland.osm.bz2", crs=UTM10)


# ----------------------------------------------------------------------------- noding


def test_grid_nodes_edges_and_hand_distances(grid: RoadNetwork) -> None:
    assert (grid.n_nodes, grid.n_edges) == (100, 180)
    assert np.allclose(grid.edges["length"], 100.0)
    assert grid.adjacency.nnz == 360
    origin = node_at(grid, 0, 0)
    dist, nearest = multi_source_distances(grid, [origin])
    manhattan = grid.coords.sum(axis=1)  # 100 m blocks: distance = dx + dy
    assert np.allclose(dist, manhattan)
    assert (nearest == 0).all()


def test_grid_distances_equal_networkx(grid: RoadNetwork) -> None:
    g = to_networkx(grid)
    sources = [node_at(grid, 0, 0), node_at(grid, 900, 400), node_at(grid, 300, 700)]
    dist, nearest = multi_source_distances(grid, sources)
    ref = nx.multi_source_dijkstra_path_length(g, sources, weight="w")
    assert np.allclose(dist, [ref[i] for i in range(grid.n_nodes)])
    matrix = distance_matrix(grid, sources, np.arange(grid.n_nodes))
    assert np.allclose(matrix.min(axis=0), dist)
    assert np.allclose(matrix[nearest, np.arange(grid.n_nodes)], dist)


def test_t_junction_without_shared_vertex_is_joined() -> None:
    lines = frame([LineString([(0, 0), (200, 0)]), LineString([(100, 0.2), (100, 80)])])
    net = network_from_lines(lines)
    assert (net.n_nodes, net.n_edges) == (4, 3)
    junction = node_at(net, 100, 0)  # the main street got a vertex at the T
    assert np.count_nonzero((net.edges[["u", "v"]] == junction).to_numpy()) == 3
    d = distance_matrix(net, [node_at(net, 0, 0)], [node_at(net, 100, 80)])
    assert d[0, 0] == pytest.approx(180.0)


def test_endpoints_within_tolerance_snap_together() -> None:
    lines = frame([LineString([(0, 0), (100, 0)]), LineString([(100.3, 0), (200, 0)])])
    joined = network_from_lines(lines, tolerance=0.5)
    assert joined.n_nodes == 3
    far = node_at(joined, 200, 0)
    assert distance_matrix(joined, [0], [far])[0, 0] == pytest.approx(200.0)
    apart = network_from_lines(lines, tolerance=0.2)
    assert apart.n_nodes == 4
    assert math.isinf(distance_matrix(apart, [0], [node_at(apart, 200, 0)])[0, 0])


def test_crossings_without_vertex_are_not_joined_unless_asked() -> None:
    lines = frame([LineString([(0, 0), (100, 100)]), LineString([(0, 100), (100, 0)])])
    bridge = network_from_lines(lines)
    assert (bridge.n_nodes, bridge.n_edges) == (4, 2)
    crossing = network_from_lines(lines, join_crossings=True)
    assert (crossing.n_nodes, crossing.n_edges) == (5, 4)
    d = distance_matrix(crossing, [node_at(crossing, 0, 0)], [node_at(crossing, 0, 100)])
    assert d[0, 0] == pytest.approx(2 * math.hypot(50, 50))


def test_shared_interior_vertex_joins_and_dense_line_is_not_collapsed() -> None:
    wiggly = LineString([(0, 0), (0.2, 0), (0.4, 0), (0.6, 0), (50, 0), (100, 0)])
    lines = frame([wiggly, LineString([(50, -50), (50, 0), (50, 50)])])
    net = network_from_lines(lines, tolerance=0.5)
    assert (net.n_nodes, net.n_edges) == (5, 4)
    assert net.edges["length"].sum() == pytest.approx(200.0)


def test_attributes_are_carried_and_multilines_exploded() -> None:
    multi = shapely.MultiLineString([[(0, 0), (100, 0)], [(100, 0), (100, 100)]])
    lines = frame([multi, LineString([(100, 100), (0, 100)])], name=["a", "b"], width=[5.5, 3.0])
    lines.index = ["r1", "r2"]
    net = network_from_lines(lines)
    assert net.n_edges == 3
    assert net.edges["name"].tolist() == ["a", "a", "b"]
    assert net.edges["width"].tolist() == [5.5, 5.5, 3.0]
    assert net.edges["source_index"].tolist() == ["r1", "r1", "r2"]
    assert net.edges.crs == lines.crs
    assert net.node_ids.tolist() == list(range(net.n_nodes))


def test_parallel_edges_keep_the_shortest() -> None:
    lines = frame([LineString([(0, 0), (100, 0)]), LineString([(0, 0), (50, 40), (100, 0)])])
    net = network_from_lines(lines)
    assert (net.n_nodes, net.n_edges) == (2, 2)
    assert net.adjacency[0, 1] == pytest.approx(100.0)
    assert shortest_path(net, 0, 1).length == pytest.approx(100.0)


def test_oneway_column_forward_and_reverse() -> None:
    lines = frame(
        [
            LineString([(0, 0), (100, 0)]),
            LineString([(100, 0), (100, 100)]),
            LineString([(0, 0), (0, 100)]),
        ],
        oneway=["yes", "-1", None],
    )
    net = network_from_lines(lines, oneway_column="oneway")
    a, b, c = node_at(net, 0, 0), node_at(net, 100, 0), node_at(net, 100, 100)
    assert net.edges["oneway"].tolist() == [True, True, False]
    # the "-1" street was reversed: it runs from (100, 100) to (100, 0)
    assert shapely.get_coordinates(net.edges.geometry.iloc[1]).tolist() == [[100, 100], [100, 0]]
    assert distance_matrix(net, [a], [b])[0, 0] == pytest.approx(100)
    assert math.isinf(distance_matrix(net, [b], [a])[0, 0])
    assert math.isinf(distance_matrix(net, [b], [c])[0, 0])
    walk = ignore_oneway(net)
    assert distance_matrix(walk, [b], [a, c]).tolist() == [[100.0, 100.0]]


def test_bad_inputs_raise_clear_errors() -> None:
    line = LineString([(0, 0), (1, 1)])
    with pytest.raises(CRSError, match="geographic"):
        network_from_lines(frame([line], crs="EPSG:4326"))
    with pytest.raises(CRSError, match="no CRS"):
        network_from_lines(gpd.GeoDataFrame(geometry=[line]))
    with pytest.raises(LayerError, match="Polygon"):
        network_from_lines(frame([box(0, 0, 1, 1)]))
    net = network_from_lines(frame([line]))
    with pytest.raises(NetworkError, match="node positions"):
        multi_source_distances(net, [5])
    with pytest.raises(NetworkError, match="shape"):
        multi_source_distances(net, [0], weight=np.ones(3))


def test_real_lines_keep_their_length(fixtures_dir: Path) -> None:
    roads = gpd.read_file(fixtures_dir / "inasafe" / "exposure" / "roads.shp")
    roads = roads.to_crs(roads.estimate_utm_crs())
    net = network_from_lines(roads)
    assert net.edges["length"].sum() == pytest.approx(roads.length.sum(), rel=1e-9)
    assert (net.edges["length"] > 0).all()
    assert set(net.edges["NAME"].dropna()) == set(roads["NAME"].dropna())
    joined = network_from_lines(roads, join_crossings=True)
    assert joined.n_nodes > net.n_nodes and joined.n_edges > net.n_edges


# ----------------------------------------------------------------------------- OSM fixture


def test_osm_fixture_nodes_and_edges_from_readme(oakland: RoadNetwork) -> None:
    hub = oakland.index_of(53098262)[0]
    e = oakland.edges
    touching = e[(e["u"] == hub) | (e["v"] == hub)]
    other = np.where(touching["u"] == hub, touching["v"], touching["u"])
    names = dict(zip(oakland.node_ids[other].tolist(), touching["name"]))
    assert names[53092170] == "8th Street"
    assert names[667744075] == "8th Street"
    assert names[53060438] == "Willow Street"
    assert names[53027353] == "Willow Street"
    assert oakland.edges.crs.to_epsg() == 32610
    assert e.loc[e["name"] == "7th Street", "oneway"].all()


def test_osm_fixture_distances_equal_networkx(oakland: RoadNetwork) -> None:
    g = to_networkx(oakland)
    sources = oakland.index_of([53098262, 53027353, 53131081])
    dist, nearest = multi_source_distances(oakland, sources)
    ref = nx.multi_source_dijkstra_path_length(g, sources.tolist(), weight="w")
    reached = np.isfinite(dist)
    assert reached.sum() == len(ref)
    assert np.allclose(dist[reached], [ref[i] for i in np.flatnonzero(reached)])
    every = np.arange(oakland.n_nodes)
    matrix = distance_matrix(oakland, sources, every, max_bytes=1)  # one source per batch
    for row, s in zip(matrix, sources):
        one = nx.single_source_dijkstra_path_length(g, int(s), weight="w")
        assert np.allclose(row, [one.get(i, np.inf) for i in every])
    assert np.allclose(matrix[nearest[reached], every[reached]], dist[reached])


def test_osm_fixture_shortest_path_matches_networkx(oakland: RoadNetwork) -> None:
    g = to_networkx(oakland)
    s, t = oakland.index_of([667744075, 53060438])
    route = shortest_path(oakland, int(s), int(t))
    assert route.length == pytest.approx(nx.dijkstra_path_length(g, int(s), int(t), weight="w"))
    start, end = shapely.get_coordinates(route)[[0, -1]]
    assert np.allclose(start, oakland.coords[s]) and np.allclose(end, oakland.coords[t])


def test_tiny_osm_oneway_tags_and_ids(tmp_path: Path) -> None:
    xml = """<osm version="0.6">
     <node id="1" lat="35.0" lon="139.0"/><node id="2" lat="35.001" lon="139.0"/>
     <node id="3" lat="35.002" lon="139.0"/><node id="4" lat="35.001" lon="139.001"/>
     <node id="5" lat="35.001" lon="138.999"/>
     <way id="10"><nd ref="1"/><nd ref="2"/><nd ref="3"/>
      <tag k="highway" v="primary"/><tag k="oneway" v="yes"/><tag k="maxspeed" v="25 mph"/></way>
     <way id="11"><nd ref="4"/><nd ref="2"/><tag k="highway" v="service"/>
      <tag k="oneway" v="-1"/><tag k="width" v="4 m"/></way>
     <way id="12"><nd ref="5"/><nd ref="2"/><tag k="highway" v="footway"/></way>
    </osm>"""
    path = tmp_path / "t.osm"
    path.write_text(xml, encoding="utf-8")
    net = network_from_osm(path, crs=CRS)
    assert sorted(net.node_ids.tolist()) == [1, 2, 3, 4, 5]
    e = net.edges.assign(a=net.node_ids[net.edges["u"]], b=net.node_ids[net.edges["v"]])
    assert e[["osmid", "a", "b", "oneway"]].values.tolist() == [
        [10, 1, 2, True],
        [10, 2, 3, True],
        [11, 2, 4, True],  # oneway=-1: reversed to run with the traffic
        [12, 5, 2, False],
    ]
    assert e["speed_kmh"].iloc[0] == pytest.approx(25 * 1.609344)
    assert e["width"].iloc[2] == 4.0
    one, two, four = net.index_of([1, 2, 4])
    assert math.isinf(distance_matrix(net, [two], [one])[0, 0])
    assert np.isfinite(distance_matrix(net, [one], [four])[0, 0])
    walk = network_from_osm(path, crs=CRS, oneway=False)
    assert not walk.edges["oneway"].any()
    with pytest.raises(NetworkError, match="not graph nodes"):
        net.index_of([99])
    with pytest.raises(CRSError, match="geographic"):
        network_from_osm(path, crs="EPSG:4326")


def test_osm_travel_time_weight_equals_networkx(oakland: RoadNetwork) -> None:
    seconds = edge_travel_times(oakland, default_kmh=25.0)
    g = to_networkx(oakland, seconds)
    src = oakland.index_of([53098262])
    dist, _ = multi_source_distances(oakland, src, weight=seconds)
    ref = nx.single_source_dijkstra_path_length(g, int(src[0]), weight="w")
    assert np.allclose([dist[i] for i in ref], list(ref.values()))


# ----------------------------------------------------------------------------- points


def test_snap_points_and_point_distances(grid: RoadNetwork) -> None:
    snap = snap_points(grid, [[130.0, 4.0], [5000.0, 5000.0]], max_distance=100)
    assert snap.loc[0, "connector"] == pytest.approx(4.0)
    assert (snap.loc[0, "x"], snap.loc[0, "y"]) == pytest.approx((130.0, 0.0))
    assert snap.loc[1, "edge"] == -1 and np.isnan(snap.loc[1, "connector"])
    d = point_distance_matrix(grid, [[130.0, 4.0]], [[170.0, -3.0], [100.0, 260.0], [110, 0]])
    # same edge: 40 m along it; to (100, 260): back 30 m to (100, 0) then 260 m up
    assert d[0].tolist() == pytest.approx([40.0, 290.0, 20.0])
    back = point_distance_matrix(grid, [[170.0, -3.0], [100.0, 260.0]], [[130.0, 4.0]])
    assert back[:, 0].tolist() == pytest.approx([40.0, 290.0])


def test_point_distances_respect_oneway_on_the_same_edge() -> None:
    lines = frame([LineString([(0, 0), (100, 0)])], oneway=["yes"])
    net = network_from_lines(lines, oneway_column="oneway")
    d = point_distance_matrix(net, [[20.0, 0.0], [70.0, 0.0]], [[20.0, 0.0], [70.0, 0.0]])
    assert d[0, 1] == pytest.approx(50.0)
    assert math.isinf(d[1, 0])


def test_distances_from_a_named_street(grid: RoadNetwork) -> None:
    row0 = street_nodes(grid, "row0")
    assert len(row0) == 10
    d, near = distances_to_points(
        grid, row0, [[230.0, 302.0], [500.0, 40.0], [5000.0, 0.0]], max_distance=100
    )
    # (230, 302) snaps onto row 3: up 300 m from (200, 0), then 30 m east
    assert d[:2].tolist() == pytest.approx([330.0, 40.0])
    assert grid.coords[row0[near[1]]].tolist() == [500.0, 0.0]
    assert math.isinf(d[2]) and near[2] == -1
    with pytest.raises(NetworkError, match="row0"):
        street_nodes(grid, "Ekimae-dori")


def test_shortest_path_between_points_on_the_road(grid: RoadNetwork) -> None:
    route = shortest_path(grid, (130.0, 4.0), (300.0, 250.0))
    # 70 m to (200, 0), then 100 east, then 250 north
    assert route.length == pytest.approx(420.0)
    assert shapely.get_coordinates(route)[[0, -1]].tolist() == [[130.0, 0.0], [300.0, 250.0]]
    same = shortest_path(grid, (130.0, 4.0), (170.0, 1.0))
    assert same.length == pytest.approx(40.0)
    with pytest.raises(NetworkError, match="farther"):
        shortest_path(grid, (5000.0, 0.0), 0, max_distance=50)


def test_travel_times_walk_and_drive(grid: RoadNetwork) -> None:
    walk = edge_travel_times(grid, speed_kmh=4.8)
    assert np.allclose(walk, 100 / (4.8 / 3.6))
    edges = grid.edges.copy()
    edges["speed_kmh"] = np.where(edges["name"] == "row0", 60.0, np.nan)
    fast = RoadNetwork(grid.coords, grid.node_ids, edges, grid.crs, grid.adjacency)
    drive = edge_travel_times(fast, default_kmh=30.0)
    assert np.allclose(drive[edges["name"] == "row0"], 6.0)
    assert np.allclose(drive[edges["name"] != "row0"], 12.0)
    far = node_at(grid, 900, 0)
    t, _ = multi_source_distances(fast, [node_at(grid, 0, 0)], weight=drive)
    assert t[far] == pytest.approx(54.0)


# ----------------------------------------------------------------------------- entrances


def test_entrances_counts_one_two_and_none() -> None:
    roads = frame([LineString([(0, 0), (400, 0)]), LineString([(200, 0), (200, 150)])])
    net = network_from_lines(roads)
    parcels = frame(
        [
            box(20, 3, 120, 80),  # fronts the main street: one entrance
            box(150, 30, 250, 120),  # the side street runs through: two
            box(260, 2, 300, 40),  # a corner lot frontage: one
            box(600, 0, 650, 50),  # no road near: none, 200 m connector
        ],
        name=["front", "through", "corner", "remote"],
    ).set_index("name")
    got = entrances(parcels, net)
    assert got.index.tolist() == parcels.index.tolist()
    assert got["n_entrances"].tolist() == [1, 2, 1, 0]
    assert got.loc["remote", "connector"] == pytest.approx(200.0)
    assert got.loc["front", "connector"] == pytest.approx(3.0)
    assert got.crs == net.crs
    through = shapely.get_coordinates(got.loc["through", "entrances"])
    assert sorted(through[:, 1].round(0).tolist()) == [30.0, 120.0]
    assert np.allclose(through[:, 0], 200.0)
    assert got.loc["remote", "entrances"].is_empty
    assert got.loc["remote", "nearest_road_point"].equals(Point(400, 0))


def test_entrance_contacts_close_together_count_once() -> None:
    # two roads reach the parcel 10 m apart: one entrance; 60 m apart: two
    roads = frame(
        [
            LineString([(0, 0), (0, -50)]),
            LineString([(10, 0), (10, -50)]),
            LineString([(70, 0), (70, -50)]),
        ]
    )
    net = network_from_lines(roads)
    near = frame([box(-20, 0, 30, 40)])
    both = frame([box(-20, 0, 90, 40)])
    assert entrances(near, net)["n_entrances"].tolist() == [1]
    assert entrances(both, net)["n_entrances"].tolist() == [2]
    assert entrances(both, net, merge_distance=80)["n_entrances"].tolist() == [1]
    with pytest.raises(CRSError, match="EPSG:6677"):
        entrances(both.to_crs("EPSG:4326"), net)


# ----------------------------------------------------------------------------- coverage


def test_coverage_nearest_facility_and_threshold(grid: RoadNetwork) -> None:
    facilities = frame([Point(0, 0), Point(900, 900)], name=["west", "east"]).set_index("name")
    districts = frame(
        [Point(130, 104), Point(800, 900), Point(450, 450), Point(5000, 5000)],
        code=[11, 12, 13, 14],
    ).set_index("code")
    got = coverage(districts, facilities, grid, threshold=500, max_distance=100)
    assert got.index.tolist() == [11, 12, 13, 14]
    assert got["facility"].tolist()[:3] == ["west", "east", "west"]
    assert pd.isna(got.loc[14, "facility"])
    # (130, 104) snaps 4 m onto (130, 100): 230 m along the road
    assert got.loc[11, "network_distance"] == pytest.approx(230.0)
    assert got.loc[11, "connector"] == pytest.approx(4.0)
    assert got.loc[11, "distance"] == pytest.approx(234.0)
    assert got.loc[13, "distance"] == pytest.approx(900.0)  # a mid-block point
    assert got["beyond"].tolist() == [False, False, True, True]
    assert math.isinf(got.loc[14, "distance"])


# ----------------------------------------------------------------------------- isochrones


def test_isochrones_cover_reached_edges_only(grid: RoadNetwork) -> None:
    origin = node_at(grid, 0, 0)
    # 4.8 km/h: 400 m in 5 min, 800 m in 10 min
    iso = isochrones(grid, [origin], minutes=(5, 10), speed_kmh=4.8, buffer=10.0)
    assert iso["distance"].tolist() == pytest.approx([400.0, 800.0])
    assert iso.crs == grid.crs
    five, ten = iso.geometry.tolist()
    assert ten.contains(five)
    dist, _ = multi_source_distances(grid, [origin])
    e = grid.edges
    full = np.maximum(dist[e["u"]], dist[e["v"]]) <= 400 + 1e-9
    assert all(five.buffer(1e-6).contains(g) for g in e.geometry[full])
    # nodes farther than 400 m + buffer are outside; (0, 400) and (200, 200) are inside
    far = grid.coords[dist > 400 + 10.0 + 1e-6]
    assert not shapely.intersects(five, shapely.points(far)).any()
    assert five.contains(Point(0, 400)) and five.contains(Point(200, 200))
    # partial edge: (450, 0) is 450 m away, beyond 400 m + 10 m buffer
    assert five.contains(Point(405, 0)) and not five.contains(Point(415, 0))
    # not a convex hull: the middle of an unreached block corner is out
    assert not five.contains(Point(350, 350))
    assert iso["reached_length"].iloc[0] == pytest.approx(2 * sum(range(1, 5)) * 100.0)


# ----------------------------------------------------------------------------- grades


def write_plane_dem(path: Path, grade: float, *, nodata_at: tuple[int, int] | None = None) -> Path:
    """A 5 m DEM rising along x by ``grade`` (z = grade * x)."""
    x = np.arange(100) * 5.0 + 2.5
    z = np.repeat((grade * x)[None, :], 80, axis=0)
    if nodata_at is not None:
        z[nodata_at] = -9999.0
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=100,
        height=80,
        count=1,
        dtype="float64",
        crs=CRS,
        transform=Affine(5, 0, 0, 0, -5, 400),
        nodata=-9999.0,
    ) as dst:
        dst.write(z, 1)
    return path


def test_route_grade_on_planar_dem(tmp_path: Path) -> None:
    dem = write_plane_dem(tmp_path / "plane.tif", 0.068)
    along = route_grade(LineString([(50, 200), (350, 200)]), dem, crs=CRS)
    assert along["length"] == pytest.approx(300.0)
    assert along["mean_grade_pct"] == pytest.approx(6.8)
    assert along["max_grade_pct"] == pytest.approx(6.8)
    assert along["rise"] == pytest.approx(0.068 * 300)
    assert len(along["distances"]) == len(along["elevations"]) == 61
    diagonal = route_grade(LineString([(50, 50), (250, 250)]), dem, step=5.0)
    assert diagonal["mean_grade_pct"] == pytest.approx(6.8 / math.sqrt(2))
    across = route_grade(LineString([(200, 50), (200, 350)]), dem)
    assert across["mean_grade_pct"] == pytest.approx(0.0, abs=1e-9)


def test_route_grade_up_and_down_and_windowed_max(tmp_path: Path) -> None:
    dem = write_plane_dem(tmp_path / "plane.tif", 0.05)
    there_and_back = LineString([(100, 200), (300, 200), (200, 200)])
    g = route_grade(there_and_back, dem, window=20.0)
    assert g["length"] == pytest.approx(300.0)
    assert g["rise"] == pytest.approx(5.0)
    assert g["climb"] == pytest.approx(10.0)
    assert g["mean_grade_pct"] == pytest.approx(5.0)
    assert g["max_grade_pct"] == pytest.approx(5.0)


def test_route_grade_errors(tmp_path: Path) -> None:
    dem = write_plane_dem(tmp_path / "plane.tif", 0.05, nodata_at=(40, 40))
    with pytest.raises(RasterError, match="outside"):
        route_grade(LineString([(100, 200), (900, 200)]), dem)
    with pytest.raises(RasterError, match="nodata"):
        route_grade(LineString([(150, 200), (250, 200)]), dem)
    with pytest.raises(CRSError, match="geographic"):
        route_grade(LineString([(100, 200), (150, 200)]), dem, crs="EPSG:4326")


# ----------------------------------------------------------------------------- bundled study


def test_bundled_study_routes_grades_and_entrances(tmp_path: Path) -> None:
    """The kernels reproduce the published Hamanaka figures on the bundled demo layers."""
    demo = pytest.importorskip("pipeline.demo")
    paths = demo.write_demo_layers(tmp_path)
    roads = gpd.read_file(paths["roads.gpkg"])
    parcels = gpd.read_file(paths["parcels.gpkg"]).set_index("site_id")
    net = ignore_oneway(network_from_lines(roads, oneway_column="oneway"))
    got = entrances(parcels, net)
    assert got.loc[["S1", "S2", "S3"], "n_entrances"].tolist() == [1, 1, 2]
    street = street_nodes(net, "Central street")
    published = {"S1": (100.0, 7.5), "S2": (600.0, 6.8), "S3": (600.0, 6.4)}
    for site, (distance, grade) in published.items():
        points = shapely.get_coordinates(got.loc[site, "entrances"])
        d, near = distances_to_points(net, street, points)
        k = int(np.argmin(d))
        route = shortest_path(net, int(street[near[k]]), tuple(points[k]))
        assert route.length == pytest.approx(d[k])
        assert d[k] == pytest.approx(distance, abs=5.0)  # entrance mid-contact: 2.5 m short
        profile = route_grade(route, paths["dem.tif"], crs=net.crs)
        assert profile["mean_grade_pct"] == pytest.approx(grade, abs=0.05)
