"""The generated default study: files, CRSs and the published Hamanaka figures."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio

from pipeline.demo import DEMO_FILES, STUDY_BBOX_LONLAT, study_bounds, write_demo_layers

RASTERS = ("dem.tif", "tsunami_depth.tif", "flood_planned.tif", "flood_max.tif")
LAYERS = ("parcels", "roads", "poi", "population")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_demo_layers(tmp_path_factory.mktemp("demo"))


@pytest.fixture(scope="module")
def parcels(demo: dict[str, Path]) -> gpd.GeoDataFrame:
    return gpd.read_file(demo["parcels.gpkg"], layer="parcels").set_index("site_id")


def _stats(raster: Path, parcels: gpd.GeoDataFrame, ops: list[str]) -> pd.DataFrame:
    from exactextract import exact_extract

    with rasterio.open(raster) as ds:
        out = exact_extract(
            ds, parcels.reset_index(), ops, include_cols=["site_id"], output="pandas"
        )
    return out.set_index("site_id")


def test_writes_every_file_and_reruns_identically(demo, tmp_path):
    assert sorted(demo) == sorted(DEMO_FILES)
    assert all(path.is_file() and path.parent == demo["dem.tif"].parent for path in demo.values())
    again = write_demo_layers(tmp_path)
    for name in RASTERS:
        assert demo[name].read_bytes() == again[name].read_bytes(), name
    for layer in LAYERS:
        first = gpd.read_file(demo[f"{layer}.gpkg"], layer=layer)
        second = gpd.read_file(again[f"{layer}.gpkg"], layer=layer)
        pd.testing.assert_frame_equal(first, second)
    assert sum(p.stat().st_size for p in demo.values()) < 3_000_000


def test_overwrites_files_already_there(tmp_path):
    (tmp_path / "roads.gpkg").write_text("stale")
    paths = write_demo_layers(tmp_path)
    assert len(gpd.read_file(paths["roads.gpkg"], layer="roads")) > 10


def test_rasters_share_one_tiled_compressed_grid(demo):
    with rasterio.open(demo["dem.tif"]) as dem:
        grid = (dem.crs, dem.transform, dem.shape)
        assert dem.crs.to_epsg() == 6681
        assert dem.res == (5.0, 5.0)
        assert dem.transform.c % 5 == 0 and dem.transform.f % 5 == 0
        assert dem.shape == (500, 600)
        assert tuple(dem.bounds) == study_bounds()
    for name in RASTERS:
        with rasterio.open(demo[name]) as ds:
            assert (ds.crs, ds.transform, ds.shape) == grid
            assert ds.dtypes == ("float32",) and ds.nodata == -9999.0
            assert ds.block_shapes == [(256, 256)] and ds.compression.name == "deflate"
            data = ds.read(1, masked=True)
            assert 0.05 < data.mask.mean() < 0.2  # the sea is no data
            if name != "dem.tif":
                assert data.min() == 0.0


def test_study_bbox_lonlat_contains_the_grid():
    west, south, east, north = study_bounds("EPSG:4326")
    assert STUDY_BBOX_LONLAT[0] <= west and STUDY_BBOX_LONLAT[1] <= south
    assert STUDY_BBOX_LONLAT[2] >= east and STUDY_BBOX_LONLAT[3] >= north
    assert np.allclose(STUDY_BBOX_LONLAT, (west, south, east, north), atol=2e-5)
    assert west < 145.12 < east and south < 43.08 < north


def test_vector_layers_crs_and_schema(demo, parcels):
    frames = {layer: gpd.read_file(demo[f"{layer}.gpkg"], layer=layer) for layer in LAYERS}
    assert {layer: f.crs.to_epsg() for layer, f in frames.items()} == {
        "parcels": 6681,
        "roads": 6681,
        "poi": 4326,
        "population": 6681,
    }
    assert list(parcels.index) == ["S0", "S1", "S2", "S3", "S4"]
    assert set(parcels.columns) >= {
        "name",
        "name_ja",
        "zone_kind",
        "coverage_ratio",
        "far",
        "pad_elevation",
        "corner",
        "geometry",
    }
    assert set(parcels.zone_kind) <= {"residential", "other"}
    assert parcels.corner.dtype == bool and (parcels.geom_type == "Polygon").all()
    roads = frames["roads"]
    assert (roads.geom_type == "LineString").all() and roads.oneway.dtype == bool
    assert roads.set_index("name").loc["Evacuation road", "width"] == 5.5
    assert roads.set_index("name").loc["Central street", "name_ja"] == "中央通り"
    poi = frames["poi"].set_index("kind")
    assert poi.loc["shelter", "capacity"] == 500 and poi.loc["town_hall", "capacity"] == 0
    assert poi.loc["town_centre", "name"] == "Town centre"


def test_parcel_areas(parcels):
    published = pd.Series({"S1": 15_000.0, "S2": 18_700.0, "S3": 17_000.0})
    area = parcels.area[published.index]
    assert ((area - published).abs() <= 0.02 * published).all(), area.to_dict()
    assert parcels.area["S0"] == pytest.approx(5_000, rel=0.05)


def test_lowest_ground_is_the_published_level(demo, parcels):
    low = _stats(demo["dem.tif"], parcels, ["min"])["min"]
    published = {"S0": 3.2, "S1": 16.0, "S2": 42.0, "S3": 45.0}
    for site, level in published.items():
        assert low[site] == pytest.approx(level, abs=0.15), site
    assert 4.0 <= low["S4"] <= 5.0
    assert (parcels.pad_elevation[list(published)] == pd.Series(published)).all()


def test_tsunami_reaches_the_town_but_not_the_candidates(demo, parcels):
    depth = _stats(demo["tsunami_depth.tif"], parcels, ["min", "max"])
    assert depth.loc["S0", "min"] == pytest.approx(10.7, abs=0.05)
    assert depth.loc["S0", "max"] == pytest.approx(10.7, abs=0.05)
    assert (depth.loc[["S1", "S2", "S3"], "max"] == 0.0).all()


def test_river_floods_the_riverside_site_only(demo, parcels):
    planned = _stats(demo["flood_planned.tif"], parcels, ["max"])["max"]
    worst = _stats(demo["flood_max.tif"], parcels, ["max"])["max"]
    assert planned["S4"] == pytest.approx(1.0, abs=0.1)
    assert worst["S4"] == pytest.approx(3.0, abs=0.1)
    assert (planned.drop("S4") == 0).all() and (worst.drop("S4") == 0).all()


def test_population_is_the_evacuation_population_in_the_town(demo):
    people = gpd.read_file(demo["population.gpkg"], layer="population")
    assert people.people.sum() == 1080 and (people.people > 0).all()
    assert 150 <= len(people) <= 250
    with rasterio.open(demo["tsunami_depth.tif"]) as ds:
        depth = np.array([v[0] for v in ds.sample(zip(people.geometry.x, people.geometry.y, strict=True))])
    assert (depth > 0).all()


def test_earthwork_cut_ranks_site_1_far_above_the_hilltops(demo, parcels):
    stats = _stats(demo["dem.tif"], parcels, ["values", "coverage"])
    cut = pd.Series(
        {
            site: float(
                np.sum(
                    np.maximum(np.asarray(row["values"]) - parcels.pad_elevation[site], 0)
                    * np.asarray(row["coverage"])
                )
                * 25.0
            )
            for site, row in stats.loc[["S1", "S2", "S3"]].iterrows()
        }
    )
    assert 450_000 <= cut["S1"] <= 800_000
    assert 60_000 <= cut["S2"] <= 250_000 and 60_000 <= cut["S3"] <= 250_000
    assert cut["S1"] > 3 * cut["S2"]
    published = {"S1": 630_000.0, "S2": 135_000.0, "S3": 130_000.0}
    assert cut.to_dict() == pytest.approx(published, rel=0.02)


def test_roads_end_on_the_candidates_boundaries(demo, parcels):
    roads = gpd.read_file(demo["roads.gpkg"], layer="roads")
    inner = parcels.geometry.buffer(-0.01)
    assert not roads.geometry.apply(lambda line: inner.intersects(line).any()).any()
    touching = {
        site: sorted(roads.name[roads.distance(geom.boundary) <= 5.0])
        for site, geom in parcels.geometry.items()
    }
    assert touching["S1"] == ["Bluff road"]
    assert touching["S2"] == ["Hilltop access road"]
    assert touching["S3"] == ["Spa link road", "Spa road"]
