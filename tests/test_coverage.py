"""Coverage of districts by facilities over a road grid whose distances are known by hand."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
from shapely.geometry import LineString, Point

from pipeline.coverage import coverage_from_files, coverage_table, summary

CRS = "EPSG:6677"
STEP = 100.0


def grid_roads(n: int = 11) -> gpd.GeoDataFrame:
    """Streets every 100 m, each one LineString through every crossing (shared vertices)."""
    ticks = np.arange(n) * STEP
    lines = [LineString([(x, y) for y in ticks]) for x in ticks]
    lines += [LineString([(x, y) for x in ticks]) for y in ticks]
    return gpd.GeoDataFrame(geometry=lines, crs=CRS)


def test_nearest_centre_and_beyond_on_a_grid():
    # 99 community associations at grid crossings, three centres
    ij = [(i, j) for i in range(11) for j in range(11)][:99]
    districts = gpd.GeoDataFrame({"association": range(1, 100)},
                                 geometry=[Point(i * STEP, j * STEP) for i, j in ij], crs=CRS)
    centres = gpd.GeoDataFrame({"name": ["A", "B", "C"]},
                               geometry=[Point(0, 0), Point(1000, 1000), Point(500, 500)],
                               crs=CRS)
    out = coverage_table(districts, centres, grid_roads(), threshold=400, facility_label="name")
    manhattan = np.stack([np.abs(districts.geometry.x - c.x) + np.abs(districts.geometry.y - c.y)
                          for c in centres.geometry], axis=1)
    np.testing.assert_allclose(out["distance"], manhattan.min(axis=1), atol=1e-6)
    assert out.loc[0, "facility"] == "A"
    assert (out["beyond"] == (manhattan.min(axis=1) > 400)).all()
    table = summary(out)
    assert table["districts"].sum() == 99


def test_from_files_brings_layers_into_one_metric_crs(tmp_path):
    roads = grid_roads()
    roads.to_file(tmp_path / "roads.gpkg")
    gpd.GeoDataFrame({"name": ["A"]}, geometry=[Point(0, 0)], crs=CRS).to_crs(4326) \
        .to_file(tmp_path / "centres.geojson")
    gpd.GeoDataFrame(geometry=[Point(300, 400)], crs=CRS).to_crs(3857) \
        .to_file(tmp_path / "districts.gpkg")
    out = coverage_from_files(tmp_path / "districts.gpkg", tmp_path / "centres.geojson",
                              tmp_path / "roads.gpkg", threshold=650, crs=CRS,
                              facility_label="name")
    assert out["distance"].iloc[0] == pytest.approx(700.0, abs=0.01)
    assert bool(out["beyond"].iloc[0])


def test_coverage_command(tmp_path):
    from click.testing import CliRunner

    from pipeline.cli import cli

    grid_roads().to_file(tmp_path / "roads.gpkg")
    gpd.GeoDataFrame({"name": ["A"]}, geometry=[Point(0, 0)], crs=CRS).to_file(tmp_path / "c.gpkg")
    gpd.GeoDataFrame({"d": [1, 2]}, geometry=[Point(300, 0), Point(900, 900)], crs=CRS) \
        .to_file(tmp_path / "d.gpkg")
    args = ["coverage", str(tmp_path / "d.gpkg"), str(tmp_path / "c.gpkg"),
            str(tmp_path / "out.gpkg"), "--roads", str(tmp_path / "roads.gpkg"),
            "--threshold", "1000", "--label", "name", "--crs", CRS]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    out = gpd.read_file(tmp_path / "out.gpkg")
    assert out["distance"].tolist() == [300.0, 1800.0]
    assert out["beyond"].tolist() == [False, True]
    again = CliRunner().invoke(cli, args)
    assert again.exit_code == 2 and "exists; pass --overwrite" in again.output
    clash = CliRunner().invoke(cli, args[:3] + [str(tmp_path / "d.gpkg")] + args[4:])
    assert clash.exit_code == 2 and "is an input" in clash.output
