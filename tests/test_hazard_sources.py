"""Hazard inputs in the forms Japanese municipalities receive them, through the hazard stage.

A study whose DEM is the real GSI 5 m DEM tile (JPGIS GML XML, EPSG:6668, near Fuji
city) and whose flood scenario is National Land Numerical Information depth-rank
polygons (A31 ranks) made here: the DEM is mosaicked and warped into the study's
plane-rectangular zone, the ranks become depth intervals, and checks use each
rank's upper bound.
"""

from __future__ import annotations

import geopandas as gpd
import pandas as pd
import pytest
from shapely.geometry import box

from pipeline.config import load_study
from pipeline.runner import Runner
from pipeline.stages import STAGES

TILE = "gsi_dem/FG-GML-5238-74-00-DEM5A-20161001.xml"


@pytest.fixture
def study(tmp_path, fixtures_dir):
    # two parcels inside the tile (138.5-138.5125 E, 35.25-35.2583 N), in lon/lat
    parcels = gpd.GeoDataFrame(
        {"site_id": ["A", "B"], "name": ["North", "South"]},
        geometry=[box(138.503, 35.2545, 138.5045, 35.2555),
                  box(138.506, 35.2515, 138.5075, 35.2525)], crs=4326)
    parcels.to_file(tmp_path / "parcels.gpkg")
    # A31 ranks: rank 2 (0.5-3 m) over parcel A's west half; rank 4 (5-10 m) far away
    ranks = gpd.GeoDataFrame({"A31a_205": [2, 4]},
                             geometry=[box(138.5025, 35.2540, 138.50375, 35.2560),
                                       box(138.510, 35.251, 138.511, 35.252)], crs=4326)
    ranks.to_file(tmp_path / "flood_ranks.gpkg")
    (tmp_path / "study.toml").write_text(f"""
[study]
name = "GSI tile and A31 ranks"
output = "out"
[layers.parcels]
path = "parcels.gpkg"
[layers.dem]
path = "{fixtures_dir / TILE}"
[[scenario]]
name = "flood"
kind = "flood"
ranks = "flood_ranks.gpkg"
""", encoding="utf-8")
    return load_study(tmp_path / "study.toml")


def test_gsi_dem_and_rank_polygons(study):
    Runner(study, STAGES).run(["hazard"])
    t = pd.read_parquet(study.output / "stages" / "hazard.parquet")
    # Fuji city, Shizuoka: JGD2011 plane-rectangular zone VIII, picked automatically
    assert (study.output / ".siteplan" / "gsi").is_dir()
    assert t["ground_min"].between(120, 610).all()
    assert (t["ground_min"] <= t["ground_mean"]).all() and (t["ground_mean"] <= t["ground_max"]).all()
    assert t["dem_accuracy"].eq(0.3).all()  # DEM5A: airborne laser
    # parcel A: half in rank 2 -> upper bound 3 m governs, from a rank
    assert t.loc["A", "flood_depth_max"] == 3.0
    assert bool(t.loc["A", "flood_depth_from_rank"])
    assert t.loc["A", "flood_depth_wet_share"] == pytest.approx(0.5, abs=0.05)
    assert t.loc["A", "flood_margin"] == pytest.approx(-3.0)
    assert t.loc["A", "flood_floor_raise_needed"] == pytest.approx(3.2)
    assert t.loc["B", "flood_depth_max"] == 0.0
    assert bool(t.loc["B", "flood_clear"])


def test_study_crs_is_the_plane_rectangular_zone_of_the_tile(study):
    from pipeline.layers import study_crs

    assert study_crs(study).to_epsg() == 6676  # zone VIII (Shizuoka)


def test_open_ended_rank_has_no_dry_floor():
    from pipeline.config import HazardSettings, Scenario
    from pipeline.hazard import hazard_table

    ground = pd.DataFrame({"dem_min": [5.0, 5.0], "dem_mean": [5.0, 5.0], "dem_max": [5.0, 5.0]},
                          index=["deep", "dry"])
    depth = pd.DataFrame({"depth_max": [float("inf"), 0.0]}, index=ground.index)
    scenario = Scenario(name="flood", kind="flood", runup=1.0)
    table = hazard_table(ground, {"flood": depth}, (scenario,), HazardSettings(), 0.3)
    assert table.loc["deep", "flood_margin"] == float("-inf")
    assert not table.loc["deep", "flood_clear"]
    assert pd.isna(table.loc["deep", "flood_dry_floor"])
    assert table.loc["dry", "flood_dry_floor"] == 1
