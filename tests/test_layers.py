"""Reading, checking and reprojecting vector layers; choosing the metric CRS."""

from __future__ import annotations

import logging

import geopandas as gpd
import pytest
from pyproj import CRS
from shapely.geometry import LineString, Point, Polygon, box

from pipeline.config import LayerSpec
from pipeline.crs import check_metric, metric_crs_for
from pipeline.errors import CRSError, InputNotFoundError, LayerError
from pipeline.layers import read_vector, study_area

CRS_6681 = CRS.from_epsg(6681)
# A 100 m x 100 m square in the study CRS near Kiritappu.
X0, Y0 = 71000.0, -100000.0
SQUARE = box(X0, Y0, X0 + 100, Y0 + 100)


def save(tmp_path, gdf, name="layer.gpkg"):
    path = tmp_path / name
    if name.endswith(".parquet"):
        gdf.to_parquet(path)
    else:
        gdf.to_file(path)
    return path


@pytest.mark.parametrize("epsg", [4326, 3857])
def test_layers_in_4326_and_3857_land_in_the_same_metric_crs(tmp_path, epsg):
    original = gpd.GeoDataFrame({"site_id": ["A"]}, geometry=[SQUARE], crs=CRS_6681)
    path = save(tmp_path, original.to_crs(epsg), f"p{epsg}.gpkg")
    gdf = read_vector(LayerSpec(path=path), name="parcels", crs=CRS_6681, family="polygon")
    assert gdf.crs.equals(CRS_6681)
    # overlays correctly: back where it started, to the millimetre
    assert gdf.geometry.iloc[0].equals_exact(SQUARE, tolerance=1e-3)
    assert gdf.area.iloc[0] == pytest.approx(10_000, abs=0.01)


@pytest.mark.parametrize("suffix", [".gpkg", ".geojson", ".shp", ".parquet"])
def test_formats(tmp_path, suffix):
    gdf = gpd.GeoDataFrame({"site_id": ["A"]}, geometry=[SQUARE], crs=CRS_6681)
    path = save(tmp_path, gdf, "layer" + suffix)
    out = read_vector(LayerSpec(path=path), name="parcels", crs=CRS_6681, family="polygon")
    assert out.area.iloc[0] == pytest.approx(10_000, abs=0.01)


def test_missing_crs_is_an_error_not_a_guess(tmp_path):
    # a shapefile whose .prj is missing (GeoJSON is WGS 84 by definition, so not that)
    path = save(
        tmp_path, gpd.GeoDataFrame({"a": [1]}, geometry=[SQUARE], crs=CRS_6681), "nocrs.shp"
    )
    path.with_suffix(".prj").unlink()
    with pytest.raises(CRSError) as info:
        read_vector(LayerSpec(path=path), name="parcels", crs=CRS_6681, family="polygon")
    msg = str(info.value)
    assert "layer 'parcels'" in msg and str(path) in msg and "has no CRS" in msg
    assert "crs = 'EPSG:....'" in msg


def test_declared_crs_is_used_when_the_file_has_none(tmp_path):
    path = save(tmp_path, gpd.GeoDataFrame({"a": [1]}, geometry=[SQUARE], crs=CRS_6681), "x.shp")
    path.with_suffix(".prj").unlink()
    gdf = read_vector(
        LayerSpec(path=path, crs="EPSG:6681"), name="parcels", crs=CRS_6681, family="polygon"
    )
    assert gdf.area.iloc[0] == pytest.approx(10_000, abs=0.01)


def test_declared_crs_conflicting_with_the_file(tmp_path):
    path = save(tmp_path, gpd.GeoDataFrame({"a": [1]}, geometry=[SQUARE], crs=CRS_6681))
    with pytest.raises(
        CRSError,
        match=r"declares EPSG:6681 but the study file says crs = "
        r"'EPSG:4326'",
    ):
        read_vector(
            LayerSpec(path=path, crs="EPSG:4326"), name="parcels", crs=CRS_6681, family="polygon"
        )


def test_missing_file(tmp_path):
    with pytest.raises(
        InputNotFoundError,
        match=r"layer 'roads' \(.*nope.gpkg\): file does not "
        r"exist; fix `path` in \[layers.roads\]",
    ):
        read_vector(
            LayerSpec(path=tmp_path / "nope.gpkg"), name="roads", crs=CRS_6681, family="line"
        )


def test_truncated_file(tmp_path):
    path = tmp_path / "broken.gpkg"
    path.write_bytes(b"SQLite format 3\x00" + b"\x00" * 50)
    with pytest.raises(LayerError, match=r"layer 'parcels' .*broken.gpkg\): cannot be read"):
        read_vector(LayerSpec(path=path), name="parcels", crs=CRS_6681, family="polygon")


def test_empty_layer(tmp_path):
    path = save(tmp_path, gpd.GeoDataFrame({"a": [1]}, geometry=[SQUARE], crs=CRS_6681).iloc[:0])
    with pytest.raises(LayerError, match=r"the layer is empty"):
        read_vector(LayerSpec(path=path), name="parcels", crs=CRS_6681, family="polygon")


def test_empty_geometries_are_dropped_with_a_warning(tmp_path, caplog):
    gdf = gpd.GeoDataFrame({"site_id": ["A", "B"]}, geometry=[SQUARE, Polygon()], crs=CRS_6681)
    path = save(tmp_path, gdf)
    with caplog.at_level(logging.WARNING):
        out = read_vector(
            LayerSpec(path=path),
            name="parcels",
            crs=CRS_6681,
            family="polygon",
            id_column="site_id",
        )
    assert list(out.site_id) == ["A"]
    assert "dropped 1 empty geometry (ids B)" in caplog.text


def test_wrong_geometry_type(tmp_path):
    gdf = gpd.GeoDataFrame(
        {"site_id": ["L"]}, geometry=[LineString([(X0, Y0), (X0 + 5, Y0)])], crs=CRS_6681
    )
    with pytest.raises(
        LayerError, match=r"expected polygon geometries, found LineString \(ids L\)"
    ):
        read_vector(
            LayerSpec(path=save(tmp_path, gdf)),
            name="parcels",
            crs=CRS_6681,
            family="polygon",
            id_column="site_id",
        )


def test_missing_columns(tmp_path):
    gdf = gpd.GeoDataFrame({"other": [1]}, geometry=[SQUARE], crs=CRS_6681)
    with pytest.raises(LayerError, match=r"missing column\(s\) site_id \(found: other\)"):
        read_vector(
            LayerSpec(path=save(tmp_path, gdf)),
            name="parcels",
            crs=CRS_6681,
            family="polygon",
            columns=("site_id",),
        )


def test_invalid_polygon_repaired_with_a_warning(tmp_path, caplog):
    # a square with a tiny spike: invalid (self-touching ring), repair changes area by ~0
    ring = [
        (X0, Y0),
        (X0 + 100, Y0),
        (X0 + 100, Y0 + 100),
        (X0 + 50, Y0 + 100),
        (X0 + 50, Y0 + 100.001),
        (X0 + 50, Y0 + 100),
        (X0, Y0 + 100),
    ]
    bowtie_free = Polygon(ring)
    assert not bowtie_free.is_valid
    gdf = gpd.GeoDataFrame({"site_id": ["S"]}, geometry=[bowtie_free], crs=CRS_6681)
    with caplog.at_level(logging.WARNING):
        out = read_vector(
            LayerSpec(path=save(tmp_path, gdf)),
            name="parcels",
            crs=CRS_6681,
            family="polygon",
            id_column="site_id",
        )
    assert out.is_valid.all()
    assert out.area.iloc[0] == pytest.approx(10_000, rel=1e-6)
    assert "repaired 1 invalid geometry (ids S)" in caplog.text


def test_invalid_polygon_rejected_when_repair_changes_its_area(tmp_path):
    bowtie = Polygon([(X0, Y0), (X0 + 100, Y0 + 100), (X0 + 100, Y0), (X0, Y0 + 100)])
    gdf = gpd.GeoDataFrame({"site_id": ["B"]}, geometry=[bowtie], crs=CRS_6681)
    # the bow-tie's signed area is 0; its repaired area is 5,000 m2
    with pytest.raises(
        LayerError,
        match=r"1 invalid polygon\(s\) \(ids B\) would change area by "
        r"more than 1%",
    ):
        read_vector(
            LayerSpec(path=save(tmp_path, gdf)),
            name="parcels",
            crs=CRS_6681,
            family="polygon",
            id_column="site_id",
        )


def test_layer_outside_the_study_area(tmp_path):
    parcels = gpd.GeoDataFrame(geometry=[SQUARE], crs=CRS_6681)
    area = study_area(parcels, 2000.0)
    far_away = gpd.GeoDataFrame(geometry=[Point(X0 + 50_000, Y0)], crs=CRS_6681)
    with pytest.raises(
        LayerError,
        match=r"layer 'poi' .*: does not overlap the study area "
        r"\(the parcels' extent \(69000, -102000, 73100, "
        r"-97900\) in EPSG:6681\).*Check the layer's CRS",
    ):
        read_vector(
            LayerSpec(path=save(tmp_path, far_away)),
            name="poi",
            crs=CRS_6681,
            family="point",
            study_area=area,
        )


def test_parcels_index_by_id_and_reject_duplicates(tmp_path):
    from pipeline.config import study_from_dict
    from pipeline.layers import read_parcels

    gdf = gpd.GeoDataFrame(
        {"site_id": ["A", "A"], "name": ["x", "y"]}, geometry=[SQUARE, SQUARE], crs=CRS_6681
    )
    path = save(tmp_path, gdf)
    study = study_from_dict(
        {
            "study": {"name": "t"},
            "layers": {"parcels": {"path": str(path)}, "dem": {"path": "d.tif"}},
        },
        tmp_path / "s.toml",
    )
    with pytest.raises(LayerError, match=r"duplicate site_id values: A"):
        read_parcels(study, CRS_6681)


def test_parcels_missing_id_column(tmp_path):
    from pipeline.config import study_from_dict
    from pipeline.layers import read_parcels

    gdf = gpd.GeoDataFrame({"name": ["x"]}, geometry=[SQUARE], crs=CRS_6681)
    study = study_from_dict(
        {
            "study": {"name": "t"},
            "layers": {
                "parcels": {"path": str(save(tmp_path, gdf)), "id_column": "pid"},
                "dem": {"path": "d.tif"},
            },
        },
        tmp_path / "s.toml",
    )
    with pytest.raises(LayerError, match=r"missing column\(s\) pid"):
        read_parcels(study, CRS_6681)


@pytest.mark.parametrize(
    "lon, lat, epsg",
    [
        (145.12, 43.08, 6681),  # Kiritappu (Hamanaka), zone XIII
        (139.88, 36.10, 6677),  # Goka, zone IX
        (136.87, 36.68, 6675),  # Oyabe, zone VII
        (139.69, 35.69, 6677),  # Tokyo, zone IX
        (130.40, 33.59, 6670),  # Fukuoka, zone II
        (106.8, -6.2, 32748),  # Jakarta: UTM 48S
        (-122.3, 37.8, 32610),  # Oakland: UTM 10N
    ],
)
def test_metric_crs_for(lon, lat, epsg):
    assert metric_crs_for(lon, lat).to_epsg() == epsg


def test_geographic_study_crs_is_refused():
    with pytest.raises(CRSError, match="EPSG:4326 is geographic"):
        check_metric(CRS.from_epsg(4326), what="[study] crs")
