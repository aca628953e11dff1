"""A study whose road layer is an OpenStreetMap extract (the West Oakland fixture).

The roads come straight from ``West-Oakland.osm.bz2`` (EPSG:4326); the study picks
UTM 10N and the access stage measures over the OSM network, compared with networkx.
"""

from __future__ import annotations

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import pytest
import rasterio
from affine import Affine
from shapely.geometry import Point

from pipeline.config import load_study
from pipeline.runner import Runner
from pipeline.stages import STAGES


@pytest.fixture
def study(tmp_path, fixtures_dir):
    osm = fixtures_dir / "osm" / "West-Oakland.osm.bz2"
    # two small parcels next to OSM nodes, and a town centre at a third, in lon/lat
    ways = gpd.GeoDataFrame(geometry=[Point(-122.3012, 37.8106), Point(-122.2960, 37.8090)],
                            crs=4326).to_crs(32610)
    parcels = gpd.GeoDataFrame({"site_id": ["P1", "P2"], "name": ["One", "Two"]},
                               geometry=ways.buffer(30, cap_style="square"), crs=32610)
    parcels.to_file(tmp_path / "parcels.gpkg")
    gpd.GeoDataFrame({"name": ["Centre"], "kind": ["town_centre"]},
                     geometry=[Point(-122.3030, 37.8120)], crs=4326).to_file(tmp_path / "poi.gpkg")
    # a flat 10 m DEM over the extract's bbox in UTM 10N
    x0, y0, x1, y1 = gpd.GeoSeries([Point(-122.3143, 37.8040), Point(-122.2908, 37.8176)],
                                   crs=4326).to_crs(32610).total_bounds
    width, height = int((x1 - x0) / 10) + 20, int((y1 - y0) / 10) + 20
    with rasterio.open(tmp_path / "dem.tif", "w", driver="GTiff", width=width, height=height,
                       count=1, dtype="float32", crs="EPSG:32610", nodata=-9999,
                       transform=Affine(10, 0, x0 - 100, 0, -10, y1 + 100)) as ds:
        ds.write(np.full((1, height, width), 5.0, dtype="float32"))
    (tmp_path / "study.toml").write_text(f"""
[study]
name = "West Oakland on OSM roads"
output = "out"
area_margin = 500.0
[layers.parcels]
path = "parcels.gpkg"
[layers.dem]
path = "dem.tif"
kind = "laser5m"
[layers.roads]
path = "{osm}"
[layers.poi]
path = "poi.gpkg"
[access]
centre = "Centre"
entrance_tolerance = 35.0
""", encoding="utf-8")
    return load_study(tmp_path / "study.toml")


def test_access_over_an_osm_extract(study):
    Runner(study, STAGES).run(["access"])
    t = pd.read_parquet(study.output / "stages" / "access.parquet")
    assert t.loc["P1", "n_entrances"] >= 1
    # a parcel the roads do not reach gets the connector it would need
    assert ((t["n_entrances"] >= 1) | (t["connector_m"] > 0)).all()
    assert t["dist_centre_m"].between(50, 3000).all()
    # the network distance is at least the straight line between centre and entrance
    from pipeline.runner import Context

    ctx = Context(study)
    centre = ctx.vector("poi", "point").geometry.iloc[0]
    straight = ctx.parcels.distance(centre)
    assert (t["dist_centre_m"] >= straight - 35.0).all()


def test_osm_network_distances_equal_networkx(study):
    from pipeline.access import road_network
    from pipeline.network import ignore_oneway, multi_source_distances
    from pipeline.runner import Context

    net = ignore_oneway(road_network(Context(study)))
    g = nx.Graph()
    for u, v, length in net.edges[["u", "v", "length"]].itertuples(index=False):
        if not g.has_edge(u, v) or g[u][v]["weight"] > length:
            g.add_edge(u, v, weight=length)
    dist, _ = multi_source_distances(net, [0])
    reference = nx.single_source_dijkstra_path_length(g, 0)
    for node, d in reference.items():
        assert dist[node] == pytest.approx(d, abs=1e-6)
