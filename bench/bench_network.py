"""Benchmark of the road-network kernel (pipeline.network) against networkx and osmnx.

A synthetic town of ``size x size`` jittered crossings (default 500 x 500 =
250,000 nodes, ~490,000 edges) given as *un-noded* lines: every street is one
LineString through all its crossings (which share vertices) with a bend
vertex mid-block; every tenth north-south street is instead given as short
pieces whose ends lie on the east-west streets where those have no vertex
(T-junctions the builder must find and insert), with one piece in four left
out so that some are true three-way T's.

Printed:
1. time to build the network from the lines (noding + graph);
2. nearest-of-50-facilities distance (and which facility) to every node:
   scipy csgraph (``multi_source_distances``, best of 3) vs networkx on the
   same graph (best of 3): ``multi_source_dijkstra_path_length`` (distances
   only) and ``multi_source_dijkstra`` (distances and paths, from which the
   nearest facility is read, i.e. the same output as ours), with the ratios;
   results are checked equal;
3. osmnx: it has no builder for un-noded lines (its ``graph_from_*`` read OSM
   data, with topology from OSM node ids), so from lines it applies only as
   ``osmnx.convert.graph_from_gdfs`` on our noded nodes/edges; that conversion
   and networkx Dijkstra on osmnx's MultiDiGraph are timed and checked equal.
   On the real OSM fixture, ``osmnx.graph_from_xml`` is compared with
   ``network_from_osm``.

Run from the repository root::

    .venv/bin/python bench/bench_network.py            # full size, a few minutes
    .venv/bin/python bench/bench_network.py --size 100 # quick
"""

from __future__ import annotations

import argparse
import gc
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import shapely

from pipeline.network import (
    RoadNetwork,
    distance_matrix,
    multi_source_distances,
    network_from_lines,
    network_from_osm,
)

CRS = "EPSG:6677"
FIXTURE = (
    Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "osm" / "West-Oakland.osm.bz2"
)


def timed(fn: Callable[[], Any], repeat: int = 1) -> tuple[float, Any]:
    """Best wall time of ``repeat`` runs and the last result."""
    best, out = float("inf"), None
    for _ in range(repeat):
        gc.collect()
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def make_lines(
    size: int, *, block: float = 100.0, jitter: float = 10.0, seed: int = 0
) -> tuple[gpd.GeoDataFrame, int]:
    """Synthetic un-noded street lines and the expected number of edges."""
    rng = np.random.default_rng(seed)
    idx = np.arange(size) * block
    x = idx[None, :] + rng.uniform(-jitter, jitter, (size, size))  # [row j, column i]
    y = idx[:, None] + rng.uniform(-jitter, jitter, (size, size))
    t_col = np.arange(size) % 10 == 5  # north-south streets given as pieces
    # mid-block bend vertices of the east-west streets
    mx = (x[:, :-1] + x[:, 1:]) / 2
    my = (y[:, :-1] + y[:, 1:]) / 2 + rng.uniform(-3, 3, (size, size - 1))
    # on T columns the crossing lies on the segment between the two bends
    inner = np.flatnonzero(t_col & (np.arange(size) > 0) & (np.arange(size) < size - 1))
    f = (x[:, inner] - mx[:, inner - 1]) / (mx[:, inner] - mx[:, inner - 1])
    y[:, inner] = my[:, inner - 1] + f * (my[:, inner] - my[:, inner - 1])
    # east-west streets: crossing, bend, crossing, ... (no vertex at T crossings)
    ew = np.full((size, 2 * size - 1, 2), np.nan)
    ew[:, 0::2, 0], ew[:, 0::2, 1] = x, y
    ew[:, 1::2, 0], ew[:, 1::2, 1] = mx, my
    keep = np.ones(2 * size - 1, bool)
    keep[2 * inner] = False
    ew = ew[:, keep]
    # north-south streets through shared crossings, with a bend mid-block
    cols = np.flatnonzero(~t_col)
    ns = np.full((len(cols), 2 * size - 1, 2), np.nan)
    ns[:, 0::2, 0], ns[:, 0::2, 1] = x[:, cols].T, y[:, cols].T
    ns[:, 1::2, 0] = (x[:-1, cols] + x[1:, cols]).T / 2 + rng.uniform(-3, 3, (len(cols), size - 1))
    ns[:, 1::2, 1] = (y[:-1, cols] + y[1:, cols]).T / 2
    # T pieces: crossing j -> bend -> crossing j+1, one in four left out
    tj = np.arange(size - 1)[np.arange(size - 1) % 4 != 3]
    ii, jj = np.meshgrid(inner, tj, indexing="ij")
    ii, jj = ii.ravel(), jj.ravel()
    pieces = np.stack(
        [
            np.stack([x[jj, ii], y[jj, ii]], -1),
            np.stack([(x[jj, ii] + x[jj + 1, ii]) / 2 + 2.0, (y[jj, ii] + y[jj + 1, ii]) / 2], -1),
            np.stack([x[jj + 1, ii], y[jj + 1, ii]], -1),
        ],
        axis=1,
    )
    geoms = np.concatenate([_lines(ew), _lines(ns), _lines(pieces)])
    kind = ["east-west"] * len(ew) + ["north-south"] * len(ns) + ["piece"] * len(pieces)
    n_t = len(inner)  # T columns with pieces (a T column on the border would be a plain line)
    expected = size * (size - 1) + len(cols) * (size - 1) + len(pieces)
    assert n_t + len(cols) <= size
    return gpd.GeoDataFrame({"kind": kind}, geometry=geoms, crs=CRS), expected


def _lines(coords: np.ndarray) -> np.ndarray:
    """LineStrings from a (lines, vertices, 2) array."""
    n, m, _ = coords.shape
    return shapely.linestrings(coords.reshape(-1, 2), indices=np.repeat(np.arange(n), m))


def nx_from_adjacency(net: RoadNetwork) -> Any:
    """networkx DiGraph with exactly the arcs and weights of the csgraph engine."""
    import networkx as nx

    coo = net.adjacency.tocoo()
    g = nx.DiGraph()
    g.add_nodes_from(range(net.n_nodes))
    g.add_weighted_edges_from(zip(coo.row.tolist(), coo.col.tolist(), coo.data.tolist()))
    return g


def osmnx_from_network(net: RoadNetwork) -> Any:
    """osmnx MultiDiGraph from our noded nodes/edges (both directions of two-way edges)."""
    import osmnx as ox
    import pandas as pd

    nodes = gpd.GeoDataFrame(
        {"x": net.coords[:, 0], "y": net.coords[:, 1]},
        geometry=gpd.points_from_xy(net.coords[:, 0], net.coords[:, 1]),
        index=pd.Index(np.arange(net.n_nodes), name="osmid"),
        crs=net.crs,
    )
    e = net.edges[["u", "v", "length", "oneway", "geometry"]]
    back = e[~e["oneway"] & (e["u"] != e["v"])].copy()
    back["u"], back["v"] = e.loc[back.index, "v"], e.loc[back.index, "u"]
    back["geometry"] = shapely.reverse(back.geometry.values)
    both = pd.concat([e, back], ignore_index=True)
    both["key"] = both.groupby(["u", "v"]).cumcount()
    edges = gpd.GeoDataFrame(both.set_index(["u", "v", "key"]), geometry="geometry", crs=net.crs)
    return ox.convert.graph_from_gdfs(nodes, edges)


def same(a: np.ndarray, ref: dict[int, float], n: int) -> bool:
    """Our distance array equals a networkx {node: distance} dict (inf = absent)."""
    b = np.full(n, np.inf)
    b[np.fromiter(ref.keys(), int)] = np.fromiter(ref.values(), float)
    return bool(np.allclose(a, b, rtol=1e-12, atol=1e-6))


def bench_synthetic(size: int, n_sources: int, seed: int, skip_osmnx: bool) -> None:
    import networkx as nx

    lines, expected = make_lines(size, seed=seed)
    n_vertices = int(shapely.get_num_coordinates(lines.geometry.values).sum())
    print(f"synthetic: {len(lines):,} un-noded lines, {n_vertices:,} vertices")
    t_build, net = timed(lambda: network_from_lines(lines, tolerance=0.5))
    print(
        f"network_from_lines:          {t_build:8.2f} s -> {net.n_nodes:,} nodes, {net.n_edges:,} edges"
        f" (expected {size * size:,} / {expected:,})"
    )
    assert net.n_nodes == size * size and net.n_edges == expected

    rng = np.random.default_rng(seed + 1)
    sources = rng.choice(net.n_nodes, n_sources, replace=False)
    t_cs, (dist, near) = timed(lambda: multi_source_distances(net, sources), repeat=3)
    full = distance_matrix(net, sources, np.arange(net.n_nodes))
    near_ok = np.allclose(full[near, np.arange(net.n_nodes)], dist) and np.allclose(
        full.min(0), dist
    )
    print(
        f"csgraph nearest of {n_sources}:       {t_cs:8.3f} s   (nearest source checked against "
        f"the {n_sources} x N matrix: {near_ok})"
    )

    t_nxb, g = timed(lambda: nx_from_adjacency(net))
    src_set = set(sources.tolist())
    t_nx, ref = timed(lambda: nx.multi_source_dijkstra_path_length(g, src_set), repeat=3)
    print(f"networkx DiGraph build:      {t_nxb:8.2f} s")
    print(
        f"networkx multi_source_dijkstra_path_length (distances only):\n"
        f"                             {t_nx:8.3f} s   equal: {same(dist, ref, net.n_nodes)}   "
        f"ratio networkx / csgraph: {t_nx / t_cs:6.1f}x"
    )
    del ref
    t_nxp, (ref, paths) = timed(lambda: nx.multi_source_dijkstra(g, src_set), repeat=3)
    pos = {s: k for k, s in enumerate(sources.tolist())}
    owner = np.array([pos[paths[i][0]] for i in range(net.n_nodes)])
    owner_ok = np.allclose(full[owner, np.arange(net.n_nodes)], dist)
    print(
        f"networkx multi_source_dijkstra (distances + paths, i.e. nearest source, as ours):\n"
        f"                             {t_nxp:8.3f} s   equal: {same(dist, ref, net.n_nodes)}, "
        f"nearest source equally near: {owner_ok}   ratio: {t_nxp / t_cs:6.1f}x"
    )
    del paths
    g = ref = None
    gc.collect()
    if skip_osmnx:
        return
    t_oxb, mg = timed(lambda: osmnx_from_network(net))
    t_ox, ref = timed(
        lambda: nx.multi_source_dijkstra_path_length(mg, set(sources.tolist()), weight="length"),
        repeat=3,
    )
    print(
        f"osmnx graph_from_gdfs:       {t_oxb:8.2f} s   (from our noded edges; osmnx cannot node lines)"
    )
    print(
        f"networkx path_length on osmnx's MultiDiGraph:\n"
        f"                             {t_ox:8.3f} s   equal: {same(dist, ref, net.n_nodes)}   "
        f"ratio: {t_ox / t_cs:6.1f}x"
    )


def osmnx_highways(path: Path) -> Any:
    """osmnx's simplified graph of the highway ways only, lengths in EPSG:32610 metres.

    ``graph_from_xml`` keeps every way of the file (railways, ...), so the
    non-highway edges are dropped before simplifying; edge lengths are then
    recomputed from the projected geometry, as ours are (osmnx's own lengths
    are great-circle on a sphere, up to ~0.3 % off the ellipsoid).
    """
    import networkx as nx
    import osmnx as ox

    mg = ox.graph_from_xml(path, retain_all=True, simplify=False)
    mg.remove_edges_from(
        [(u, v, k) for u, v, k, d in mg.edges(keys=True, data=True) if "highway" not in d]
    )
    mg.remove_nodes_from(list(nx.isolates(mg)))
    mg = ox.project_graph(ox.simplify_graph(mg), to_crs="EPSG:32610")
    for u, v, d in mg.edges(data=True):
        a, b = mg.nodes[u], mg.nodes[v]
        line = d.get("geometry") or shapely.LineString([(a["x"], a["y"]), (b["x"], b["y"])])
        d["length"] = line.length
    return mg


def bench_osm_fixture() -> None:
    """network_from_osm vs osmnx on the West Oakland extract (timing, nodes, distances)."""
    import networkx as nx
    import osmnx as ox

    if not FIXTURE.is_file():
        print(f"OSM fixture absent ({FIXTURE}); skipped")
        return
    t_ours, net = timed(lambda: network_from_osm(FIXTURE, crs="EPSG:32610"), repeat=3)
    t_ox, _ = timed(lambda: ox.graph_from_xml(FIXTURE, retain_all=True), repeat=3)
    mg = osmnx_highways(FIXTURE)
    ours = set(net.node_ids.tolist())
    hub = 53098262
    ref = nx.single_source_dijkstra_path_length(mg, hub, weight="length")
    dist, _ = multi_source_distances(net, net.index_of([hub]))
    diff = max(abs(dist[net.index_of([n])[0]] - ref[n]) for n in ref)
    print(
        f"OSM fixture: network_from_osm {t_ours * 1000:6.1f} ms ({net.n_nodes} nodes, {net.n_edges} edges);"
        f" osmnx.graph_from_xml {t_ox * 1000:6.1f} ms (all ways, simplified)"
    )
    print(
        f"  osmnx highway graph: {mg.number_of_nodes()} nodes, all in ours: {set(mg.nodes) <= ours}; "
        f"ours only (two ways meeting end to end): {len(ours - set(mg.nodes))}; "
        f"max |distance difference| from {hub} over {len(ref)} reached nodes: {diff:.1e} m"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--size", type=int, default=500, help="crossings per side (500 -> 250,000 nodes)"
    )
    parser.add_argument("--sources", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-osmnx", action="store_true")
    args = parser.parse_args()
    bench_synthetic(args.size, args.sources, args.seed, args.skip_osmnx)
    if not args.skip_osmnx:
        bench_osm_fixture()


if __name__ == "__main__":
    main()
