"""Tests for pipeline.osm: reading highway ways from OSM XML, bz2 and PBF."""

from __future__ import annotations

import bz2
from pathlib import Path

import numpy as np
import pytest
import shapely

from pipeline.errors import InputNotFoundError, LayerError
from pipeline.osm import ROAD_COLUMNS, read_osm_roads

TINY = """<?xml version="1.0" encoding="UTF-8"?>
<osm version="0.6" generator="test">
 <node id="1" version="1" lat="35.000" lon="139.000"/>
 <node id="2" version="1" lat="35.001" lon="139.000"/>
 <node id="3" version="1" lat="35.002" lon="139.000"/>
 <node id="4" version="1" lat="35.001" lon="139.001"/>
 <node id="5" version="1" lat="35.003" lon="139.003"/>
 <way id="10" version="1">
  <nd ref="1"/><nd ref="2"/><nd ref="3"/>
  <tag k="highway" v="primary"/><tag k="name" v="Ekimae-dori"/>
  <tag k="oneway" v="yes"/><tag k="maxspeed" v="40"/><tag k="width" v="5.5"/>
  <tag k="lanes" v="2"/>
 </way>
 <way id="11" version="1">
  <nd ref="2"/><nd ref="99"/><nd ref="4"/>
  <tag k="highway" v="service"/>
 </way>
 <way id="12" version="1">
  <nd ref="3"/><nd ref="4"/><nd ref="5"/><nd ref="3"/>
  <tag k="building" v="yes"/>
 </way>
 <way id="13" version="1">
  <nd ref="5"/><nd ref="98"/>
  <tag k="highway" v="footway"/>
 </way>
</osm>
"""


@pytest.fixture
def tiny_osm(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.osm"
    path.write_text(TINY, encoding="utf-8")
    return path


def test_west_oakland_has_31_highway_ways(fixtures_dir: Path) -> None:
    roads = read_osm_roads(fixtures_dir / "osm" / "West-Oakland.osm.bz2")
    assert len(roads) == 31
    assert roads.crs.to_epsg() == 4326
    assert tuple(roads.columns) == ROAD_COLUMNS
    assert roads["osmid"].is_unique
    assert roads["highway"].notna().all()
    # every way keeps one node id per vertex
    n_coords = shapely.get_num_coordinates(roads.geometry.values)
    assert np.array_equal(roads["nodes"].map(len).to_numpy(), n_coords)
    # inside the extract's bbox (README: -122.3143,37.8040 to -122.2908,37.8176)
    x0, y0, x1, y1 = roads.total_bounds
    assert x0 >= -122.3144 and x1 <= -122.2907 and y0 >= 37.8039 and y1 <= 37.8177
    eighth = roads[roads["osmid"] == 250665456].iloc[0]
    assert eighth["name"] == "8th Street"
    assert eighth["nodes"] == [667744075, 53098262]
    assert set(roads.loc[roads["name"] == "7th Street", "oneway"]) == {"yes"}


def test_tiny_osm_tags_nodes_and_missing_nodes(tiny_osm: Path) -> None:
    roads = read_osm_roads(tiny_osm)
    # the building is not a road; way 13 has one located node and is skipped
    assert roads["osmid"].tolist() == [10, 11]
    first = roads.iloc[0]
    assert first["name"] == "Ekimae-dori"
    assert (first["highway"], first["oneway"], first["maxspeed"]) == ("primary", "yes", "40")
    assert (first["width"], first["lanes"]) == ("5.5", "2")
    assert first["nodes"] == [1, 2, 3]
    assert shapely.get_coordinates(first.geometry).tolist() == [
        [139.0, 35.0],
        [139.0, 35.001],
        [139.0, 35.002],
    ]
    # node 99 is not in the file: dropped from both nodes and geometry
    second = roads.iloc[1]
    assert second["nodes"] == [2, 4]
    assert shapely.get_num_coordinates(second.geometry) == 2
    assert second[["name", "oneway", "maxspeed"]].isna().all()


def test_bz2_and_pbf_read_the_same(tiny_osm: Path, tmp_path: Path) -> None:
    import osmium

    packed = tmp_path / "tiny.osm.bz2"
    packed.write_bytes(bz2.compress(tiny_osm.read_bytes()))
    pbf = tmp_path / "tiny.osm.pbf"
    with osmium.SimpleWriter(str(pbf)) as writer:
        for obj in osmium.FileProcessor(str(tiny_osm)):
            writer.add(obj)
    expected = read_osm_roads(tiny_osm)
    for path in (packed, pbf):
        got = read_osm_roads(path)
        assert got["osmid"].tolist() == expected["osmid"].tolist()
        assert got["nodes"].tolist() == expected["nodes"].tolist()
        assert got.geometry.geom_equals_exact(expected.geometry, 1e-7).all()


def test_missing_file_and_garbage(tmp_path: Path) -> None:
    with pytest.raises(InputNotFoundError, match="nowhere.osm"):
        read_osm_roads(tmp_path / "nowhere.osm")
    bad = tmp_path / "bad.osm"
    bad.write_text("<osm><way id='1'><nd ref=", encoding="utf-8")
    with pytest.raises(LayerError, match="bad.osm"):
        read_osm_roads(bad)


def test_no_highways_gives_empty_frame(tmp_path: Path) -> None:
    path = tmp_path / "none.osm"
    path.write_text('<osm version="0.6"><node id="1" lat="0" lon="0"/></osm>', encoding="utf-8")
    roads = read_osm_roads(path)
    assert roads.empty
    assert tuple(roads.columns) == ROAD_COLUMNS
    assert roads.crs.to_epsg() == 4326
