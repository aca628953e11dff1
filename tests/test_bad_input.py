"""The bad-input catalogue (issue 7, item 3).

Each case copies the bundled demo study, breaks one thing, runs the command line
(``siteplan score STUDY`` through click's runner) and checks that siteplan stops
with exit status 2 and one message naming the file, layer or key, what was found
and how to fix it; and that nothing was written (the fresh output folder stays
absent or holds no file) or, for a run over an earlier successful run, that the
earlier outputs are byte for byte intact.

Bad input is caught before any stage writes: the command line checks the inputs
of every stage about to run first (``pipeline.cli.validate_inputs``); only the
depth rasters' values and the DEM's coverage of the parcels are checked inside
the hazard stage, which runs first.

``score`` runs every stage but ``maps``: pipeline/maps.py has no ``run_stage``
yet. Switch ``COMMAND`` to ``"run"`` once it has.

The demo study file says ``demo = true`` (missing demo layers are regenerated);
the template turns that off so a missing layer is an error, as in a user's study.
"""

from __future__ import annotations

import logging
import re
import shutil
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
from click.testing import CliRunner, Result
from shapely.geometry import LineString, Polygon

from pipeline.cli import cli
from pipeline.demo import write_demo_study

COMMAND = "run"


# --------------------------------------------------------------------------- helpers


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("template") / "layers"
    study = write_demo_study(folder)
    study.write_text(study.read_text().replace("demo = true", "demo = false"))
    return folder


@pytest.fixture
def study(tmp_path, template) -> Path:
    """A fresh copy of the demo study; its output folder is ``tmp_path / "maps"``."""
    shutil.copytree(template, tmp_path / "layers")
    return (tmp_path / "layers" / "study.toml").resolve()


@pytest.fixture(autouse=True)
def _restore_logging():
    """The CLI rewires the ``pipeline`` logger; give later tests (caplog) the original back."""
    logger = logging.getLogger("pipeline")
    saved = (logger.handlers[:], logger.level, logger.propagate)
    yield
    logger.handlers[:], logger.level, logger.propagate = saved


def run(study: Path) -> Result:
    return CliRunner().invoke(cli, [COMMAND, str(study)])


def output(study: Path) -> Path:
    return study.parent.parent / "maps"


def error(result: Result) -> str:
    """The error message: everything after ``Error: `` (the last thing siteplan prints)."""
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    assert "Traceback" not in result.output
    return result.stderr[result.stderr.index("Error: ") + len("Error: "):].rstrip("\n")


def nothing_written(study: Path) -> bool:
    out = output(study)
    return not out.exists() or not any(p.is_file() for p in out.rglob("*"))


def snapshot(study: Path) -> dict[str, bytes]:
    out = output(study)
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*"))
            if p.is_file()}


def earlier_run(study: Path) -> dict[str, bytes]:
    """Run the study successfully; return its outputs (path -> bytes)."""
    result = run(study)
    assert result.exit_code == 0, result.output
    files = snapshot(study)
    assert "sites.csv" in files and "stages/hazard.parquet" in files
    return files


def edit(study: Path, old: str, new: str) -> None:
    text = study.read_text(encoding="utf-8")
    assert old in text, old
    study.write_text(text.replace(old, new, 1), encoding="utf-8")


def layer(study: Path, name: str) -> gpd.GeoDataFrame:
    return gpd.read_file(study.parent / f"{name}.gpkg", layer=name)


def save(study: Path, name: str, gdf: gpd.GeoDataFrame) -> None:
    gdf.to_file(study.parent / f"{name}.gpkg", layer=name, engine="pyogrio")


def rewrite_raster(path: Path, *, crs: str | None = "keep", values=None) -> None:
    """Write ``path`` again with another CRS (None: none) and/or values(z, nodata) -> z."""
    with rasterio.open(path) as ds:
        profile, z = ds.profile, ds.read(1)
    if crs != "keep":
        profile["crs"] = crs
    if values is not None:
        z = values(z, profile["nodata"])
    path.unlink()
    with rasterio.open(path, "w", **profile) as ds:
        ds.write(z, 1)


def where(study: Path, name: str, file: str | None = None) -> str:
    return f"layer {name!r} ({study.parent / (file or f'{name}.gpkg')})"


# --------------------------------------------------------------------------- missing and unreadable files


def test_missing_layer_file(study):
    edit(study, 'path = "parcels.gpkg"', 'path = "parcel.gpkg"')
    assert error(run(study)) == (
        f"{where(study, 'parcels', 'parcel.gpkg')}: file does not exist; fix `path` in "
        "[layers.parcels] of the study file (relative paths are relative to the study file)")
    assert nothing_written(study)


def test_missing_raster_file(study):
    (study.parent / "dem.tif").unlink()
    assert error(run(study)) == (f"dem raster {study.parent / 'dem.tif'}: file not found; check "
                                 "the path in the study file")
    assert nothing_written(study)


def test_truncated_geotiff_leaves_the_earlier_outputs_intact(study):
    before = earlier_run(study)
    dem = study.parent / "dem.tif"
    data = dem.read_bytes()
    dem.write_bytes(data[: len(data) // 2])  # an interrupted download
    message = error(run(study))
    assert message.startswith(f"dem raster {dem}: GDAL cannot read it (")
    assert message.endswith("the file may be truncated or not a raster: download or export it "
                            "again as GeoTIFF")
    assert snapshot(study) == before


def test_file_that_is_not_a_geotiff(study):
    dem = study.parent / "dem.tif"
    dem.write_text("<html>404 Not Found</html>")  # a failed download saved as .tif
    assert error(run(study)) == (
        f"dem raster {dem}: GDAL cannot read it ('{dem}' not recognized as being in a supported "
        "file format.); the file may be truncated or not a raster: download or export it again "
        "as GeoTIFF")
    assert nothing_written(study)


def test_unsupported_vector_format(study):
    (study.parent / "parcels.csv").write_text("site_id,x,y\nS1,71600,-101700\n")
    edit(study, 'path = "parcels.gpkg"', 'path = "parcels.csv"')
    assert error(run(study)) == (
        f"{where(study, 'parcels', 'parcels.csv')}: unsupported format '.csv'; use one of .gpkg, "
        ".geojson, .json, .shp, .parquet, .geoparquet, .fgb")
    assert nothing_written(study)


def test_layer_name_not_in_the_geopackage(study):
    edit(study, 'layer = "parcels"', 'layer = "parcel"')
    assert error(run(study)) == (
        f"{where(study, 'parcels')}: cannot be read (Layer 'parcel' could not be opened); check "
        "that the file is a complete vector file and that the layer name exists")
    assert nothing_written(study)


def test_gsi_xml_that_is_not_a_dem(study):
    (study.parent / "dem.xml").write_text('<?xml version="1.0"?><Dataset><name>roads</name>'
                                          "</Dataset>")
    edit(study, 'path = "dem.tif"', 'path = "dem.xml"')
    assert error(run(study)) == (
        f"GSI DEM tile {study.parent / 'dem.xml'}: no lowerCorner, upperCorner, high element; is "
        "it a GSI DEM (数値標高モデル) JPGIS GML file?")
    assert nothing_written(study)


# --------------------------------------------------------------------------- CRS and extent


def test_raster_without_crs(study):
    dem = study.parent / "dem.tif"
    rewrite_raster(dem, crs=None)
    assert error(run(study)) == (
        f"dem raster {dem}: has no CRS; assign the CRS it was made in, e.g. "
        "`gdal_edit.py -a_srs EPSG:6677 dem.tif`, or export it again with one")
    assert nothing_written(study)


def test_vector_without_crs(study):
    # a Shapefile whose .prj went missing (a GeoPackage or GeoJSON always declares one)
    parcels = layer(study, "parcels")[["site_id", "name", "geometry"]]
    parcels.to_file(study.parent / "parcels.shp")
    (study.parent / "parcels.prj").unlink()
    edit(study, 'path = "parcels.gpkg"\nlayer = "parcels"', 'path = "parcels.shp"')
    assert error(run(study)) == (
        f"{where(study, 'parcels', 'parcels.shp')}: has no CRS. Declare it in the study file "
        "([layers.parcels] crs = 'EPSG:....') or fix the file (e.g. add the .prj of a "
        "shapefile); siteplan never guesses a CRS")
    assert nothing_written(study)


def test_vector_layer_that_does_not_overlap(study):
    # roads in zone XIII coordinates labelled zone XII: reprojected, they land 160 km west
    roads = layer(study, "roads").set_crs(6680, allow_override=True)
    save(study, "roads", roads)
    assert error(run(study)) == (
        f"{where(study, 'roads')}: does not overlap the study area (the parcels' extent (67830, "
        "-103915, 73700, -99170) in EPSG:6681); its extent is (-92983, -101871, -91115, "
        "-100962). Check the layer's CRS (a wrong CRS puts it elsewhere) and that it covers the "
        "study area")
    assert nothing_written(study)


def test_raster_that_does_not_overlap(study):
    depth = study.parent / "flood_max.tif"
    rewrite_raster(depth, crs="EPSG:6680")
    assert error(run(study)) == (
        f"layer 'flood_max' ({depth}): does not overlap the study area (the parcels' extent "
        "(67830, -103915, 73700, -99170) in EPSG:6681); its extent is (-93531, -102318, -90472, "
        "-99747) (declared CRS EPSG:6680). Check the raster's CRS (a wrong CRS puts it "
        "elsewhere) and that it covers the study area")
    assert nothing_written(study)


def test_parcels_all_outside_the_dem(study):
    # 2.6 km east: past the DEM's east edge, still within 2 km of the other layers
    parcels = layer(study, "parcels")
    parcels["geometry"] = parcels.translate(2600, 0)
    save(study, "parcels", parcels)
    assert error(run(study)) == (
        f"layer 'dem' ({study.parent / 'dem.tif'}): every parcel lies outside the DEM (DEM extent "
        "(69340, -102535, 72340, -100035), parcels (72430, -101915, 74300, -101170) in the study "
        "CRS); check the DEM's CRS and that it covers the parcels")
    assert nothing_written(study)


def test_dem_all_nodata(study):
    rewrite_raster(study.parent / "dem.tif", values=lambda z, nodata: np.full_like(z, nodata))
    assert error(run(study)) == (
        f"layer 'dem' ({study.parent / 'dem.tif'}): the DEM holds no data under any parcel (every "
        "cell there is nodata); check its nodata value and that it is the DEM of this area")
    assert nothing_written(study)


# --------------------------------------------------------------------------- geometries and ids


def test_invalid_polygon_repaired_with_a_warning(study):
    parcels = layer(study, "parcels")
    x0, y0, x1, y1 = parcels.geometry[4].bounds
    # a 1 m loop at a corner: the ring crosses itself; repair changes the area by 0.01 %
    parcels.loc[4, "geometry"] = Polygon([(x0, y0), (x1, y0), (x1, y1 + 1), (x1 + 1, y1),
                                          (x0, y1)])
    assert not parcels.geometry[4].is_valid
    save(study, "parcels", parcels)
    result = run(study)
    assert result.exit_code == 0, result.output
    assert (f"{where(study, 'parcels')}: repaired 1 invalid geometry (ids S4)"
            in result.stderr)
    sites = pd.read_csv(output(study) / "sites.csv", index_col="site_id")
    assert sites.loc["S4", "site_area"] == pytest.approx((x1 - x0) * (y1 - y0), rel=1e-3)


def test_invalid_polygon_rejected_when_repair_changes_its_area(study):
    parcels = layer(study, "parcels")
    x0, y0, x1, y1 = parcels.geometry[1].bounds
    parcels.loc[1, "geometry"] = Polygon([(x0, y0), (x1, y1), (x1, y0), (x0, y1)])  # bow-tie
    save(study, "parcels", parcels)
    assert error(run(study)) == (
        f"{where(study, 'parcels')}: 1 invalid polygon(s) (ids S1) would change area by more "
        "than 1% if repaired (up to 100%); fix them in a GIS (e.g. QGIS 'Fix geometries') or "
        "raise [layers.parcels] max_repair_change")
    assert nothing_written(study)


def test_zero_area_parcel(study):
    parcels = layer(study, "parcels")
    x0, y0, x1, _ = parcels.geometry[4].bounds
    parcels.loc[4, "geometry"] = Polygon([(x0, y0), (x1, y0), ((x0 + x1) / 2, y0)])
    save(study, "parcels", parcels)
    assert error(run(study)) == (
        f"{where(study, 'parcels')}: 1 polygon(s) (ids S4) have zero area (collinear or repeated "
        "vertices) and cannot be repaired; redraw or remove them in the file")
    assert nothing_written(study)


def test_empty_geometry_dropped_with_a_warning(study):
    parcels = layer(study, "parcels")
    parcels.loc[4, "geometry"] = Polygon()
    save(study, "parcels", parcels)
    result = run(study)
    assert result.exit_code == 0, result.output
    assert f"{where(study, 'parcels')}: dropped 1 empty geometry (ids S4)" in result.stderr
    sites = pd.read_csv(output(study) / "sites.csv", index_col="site_id")
    assert sites.index.tolist() == ["S0", "S1", "S2", "S3"]


def test_every_geometry_empty(study):
    parcels = layer(study, "parcels")
    parcels["geometry"] = [Polygon()] * len(parcels)
    save(study, "parcels", parcels)
    assert error(run(study)) == (
        f"{where(study, 'parcels')}: every geometry is empty (5 features without a shape); export "
        "the layer again with its geometries")
    assert nothing_written(study)


def test_duplicate_parcel_ids(study):
    parcels = layer(study, "parcels")
    parcels.loc[2, "site_id"] = "S1"
    save(study, "parcels", parcels)
    assert error(run(study)) == (f"{where(study, 'parcels')}: duplicate site_id values: S1; each "
                                 "parcel needs a unique id")
    assert nothing_written(study)


def test_missing_id_column(study):
    parcels = layer(study, "parcels").rename(columns={"site_id": "id"})
    (study.parent / "parcels.gpkg").unlink()
    save(study, "parcels", parcels)
    assert error(run(study)) == (
        f"{where(study, 'parcels')}: missing column(s) site_id (found: id, name, name_ja, "
        "zone_kind, coverage_ratio, far, pad_elevation, corner); rename them in the file or set "
        "the column names in [layers.parcels]")
    assert nothing_written(study)


def test_lines_as_parcels(study):
    edit(study, 'path = "parcels.gpkg"\nlayer = "parcels"', 'path = "roads.gpkg"\nlayer = "roads"')
    assert error(run(study)) == (
        f"{where(study, 'parcels', 'roads.gpkg')}: 2 problems\n"
        "  - missing column(s) site_id (found: name, name_ja, width, oneway); rename them in the "
        "file or set the column names in [layers.parcels]\n"
        "  - expected polygon geometries, found LineString (ids 0, 1, 2, 3, 4 and 10 more); point "
        "[layers.parcels] at a polygon layer")
    assert nothing_written(study)


# --------------------------------------------------------------------------- zoning values


def test_coverage_ratio_attribute_negative_or_a_percentage(study):
    parcels = layer(study, "parcels")
    parcels.loc[1, "coverage_ratio"] = 60.0  # 60 %
    parcels.loc[2, "coverage_ratio"] = -0.1
    save(study, "parcels", parcels)
    assert error(run(study)) == (
        f"{where(study, 'parcels')}: attribute 'coverage_ratio' must be a share in (0, 1] (60 % "
        "is 0.6); parcel(s) S1, S2 have 60, -0.1; fix them, or leave them empty to use [zoning] "
        "coverage_ratio")
    assert nothing_written(study)


def test_coverage_ratio_study_default_as_a_percentage(study):
    edit(study, "coverage_ratio = 0.6", "coverage_ratio = 60")
    assert error(run(study)) == (f"study file {study}: zoning.coverage_ratio = 60.0: must be at "
                                 "most 1.0 (a share: 60 % is 0.6)")
    assert nothing_written(study)


def test_far_of_zero_in_a_parcel(study):
    parcels = layer(study, "parcels")
    parcels.loc[1, "far"] = 0.0
    save(study, "parcels", parcels)
    assert error(run(study)) == (
        f"{where(study, 'parcels')}: attribute 'far' must be a ratio greater than 0 (200 % is "
        "2.0); parcel(s) S1 have 0; fix them, or leave them empty to use [zoning] far")
    assert nothing_written(study)


def test_far_of_zero_in_the_study(study):
    edit(study, "far = 2.0", "far = 0")
    assert error(run(study)) == f"study file {study}: zoning.far = 0.0: must be greater than 0.0"
    assert nothing_written(study)


# --------------------------------------------------------------------------- the study file


@pytest.mark.parametrize("old, new, message", [
    ("walk_speed = 4.8", 'walk_speed = "4.8 km/h"',
     ("access.walk_speed = '4.8 km/h': expected a number; write the number alone, without "
      "quotes or units (e.g. walk_speed = 4.8, in km/h)")),
    ("coverage_ratio = 0.6", 'coverage_ratio = "60%"',
     ("zoning.coverage_ratio = '60%': expected a number; write the number alone, without "
      "quotes or units (e.g. coverage_ratio = 0.6, a share)")),
    ("max_storeys = 6", 'max_storeys = "six"',
     "programme.max_storeys = 'six': expected a whole number; write a number without quotes"),
], ids=["unit", "percent", "word"])
def test_non_numeric_config_value(study, old, new, message):
    edit(study, old, new)
    assert error(run(study)) == f"study file {study}: {message}"
    assert nothing_written(study)


def test_unknown_key_suggests_the_nearest(study):
    edit(study, "coverage_ratio = 0.6", "coverage = 0.6")
    message = error(run(study))
    assert message.startswith(f"study file {study}: unknown key 'zoning.coverage'; did you mean "
                              "'zoning.coverage_ratio'? (allowed here: corner_column, ")
    assert nothing_written(study)


def test_unknown_choice_suggests_the_nearest(study):
    edit(study, 'kind = "flood"', 'kind = "flod"')
    assert error(run(study)) == (f"study file {study}: scenario[1].kind = 'flod': expected one of "
                                 "'tsunami', 'flood' (did you mean 'flood'?)")
    assert nothing_written(study)


def test_missing_required_section(study):
    edit(study, '[layers.dem]\npath = "dem.tif"\nkind = "laser5m"\n', "")
    assert error(run(study)) == (f"study file {study}: missing key layers.dem: digital elevation "
                                 "model")
    assert nothing_written(study)


def test_study_file_that_is_not_toml(study):
    edit(study, "far = 2.0", "far = 2.0.0")
    assert error(run(study)) == (f"study file {study}: not valid TOML (Expected newline or end of "
                                 "document after a statement (at line 66, column 10))")
    assert nothing_written(study)


def test_exclude_below_names_no_scenario_leaves_earlier_outputs_intact(study):
    before = earlier_run(study)
    edit(study, 'exclude_below = "tsunami"', 'exclude_below = "tsunamy"')
    assert error(run(study)) == (
        f"study file {study}: zoning.exclude_below = 'tsunamy' is not a scenario; did you mean "
        "'tsunami'? name one of the study's scenarios (tsunami, flood_planned, flood_max) or '' "
        "for none")
    assert snapshot(study) == before


def test_criterion_metric_that_is_not_a_column_leaves_earlier_outputs_intact(study):
    before = earlier_run(study)
    edit(study, 'metric = "cut_m3"', 'metric = "cut"')
    assert error(run(study)) == (
        f"study file {study}: criterion[2].metric = 'cut' is not a column of the sites table; did "
        "you mean 'cut_m3'? name an output column (README, 'Output columns') or a parcel "
        "attribute")
    assert snapshot(study) == before


# --------------------------------------------------------------------------- hazard rasters


def test_depth_raster_in_centimetres_leaves_earlier_outputs_intact(study):
    before = earlier_run(study)
    depth = study.parent / "tsunami_depth.tif"
    rewrite_raster(depth, values=lambda z, nodata: np.where(z == nodata, z, z * 100))
    assert error(run(study)) == (
        f"tsunami raster {depth}: maximum depth 1507 m is above 100 m: the values look like "
        "centimetres (divide by 100) or another unit; convert the raster to metres")
    assert snapshot(study) == before


def test_water_level_raster_given_as_depth(study):
    depth = study.parent / "flood_max.tif"
    rewrite_raster(depth, values=lambda z, nodata: np.where(z == nodata, z, z - 5))
    assert error(run(study)) == (
        f"flood_max raster {depth}: negative depths down to -5: a depth raster holds water depth "
        "above the ground (>= 0); is it a water level or elevation raster?")
    assert nothing_written(study)


# --------------------------------------------------------------------------- roads, centre, population


def test_road_layer_without_a_path_to_the_town_centre(study):
    before = earlier_run(study)
    roads = layer(study, "roads")
    # the bluff road to site 1 stops 20 m short of the central street (snap tolerance 0.5 m)
    assert roads.loc[14, "name"] == "Bluff road"
    roads.loc[14, "geometry"] = LineString([(71640, -101815), (71640, -101735)])
    save(study, "roads", roads)
    assert error(run(study)) == (
        f"{where(study, 'roads')}: no road route from the town centre ('Town centre') or the "
        "central street ('Central street') to parcel(s) S1: they lie on unconnected parts of the "
        "network (line ends farther apart than [access] snap_tolerance = 0.5 m are not joined); "
        "join the road lines or raise snap_tolerance")
    assert snapshot(study) == before


def test_town_centre_name_not_in_the_poi_layer(study):
    edit(study, 'centre = "Town centre"', 'centre = "Town center"')
    assert error(run(study)) == (
        f"{where(study, 'poi')}: no point named 'Town center' in column 'name' ([access] centre); "
        "did you mean 'Town centre'? names there: Town centre, Existing shelter (hill), Town hall "
        "(current)")
    assert nothing_written(study)


def test_central_street_not_in_the_road_layer(study):
    edit(study, 'central_street = "Central street"', 'central_street = "Centre street"')
    message = error(run(study))
    assert message.startswith(
        f"{where(study, 'roads')}: no road named 'Centre street' in column 'name' ([access] "
        "central_street); did you mean 'Central street'? names there: Bluff road, Central street,")
    assert nothing_written(study)


def _far_from_roads(study: Path, population: gpd.GeoDataFrame, rows) -> gpd.GeoSeries:
    """Points of ``rows`` moved 1.5 km north-east: inside the study area, > 500 m from roads."""
    moved = population.loc[rows].translate(2500, 1500)
    roads = layer(study, "roads").union_all()
    assert (moved.distance(roads) > 500).all()
    return moved


def test_population_points_off_the_network_are_unreached_with_a_warning(study):
    # the choice: a point > 500 m from every road cannot be walked from; its people are
    # counted as unreached (pop_unreached) and the log says how many; all of them: an error
    population = layer(study, "population")
    rows = population.index[:5]
    population.loc[rows, "geometry"] = _far_from_roads(study, population, rows)
    save(study, "population", population)
    result = run(study)
    assert result.exit_code == 0, result.output
    people = population.loc[rows, "people"].sum()
    assert (f"layer 'population': 5 point(s) holding {people} people are more than 500 m from "
            "any road; they are counted as unreached (pop_unreached); move them or extend the "
            "road layer") in result.stderr
    sites = pd.read_csv(output(study) / "sites.csv", index_col="site_id")
    assert (sites["pop_unreached"] == people).all()


def test_population_all_off_the_network(study):
    population = layer(study, "population")
    population["geometry"] = _far_from_roads(study, population, population.index)
    save(study, "population", population)
    assert error(run(study)) == (
        f"{where(study, 'population')}: every point (200, holding 1080 people) is more than 500 m "
        "from any road ([access] max_road_distance); check the layer's CRS and that the road "
        "layer covers where the people live")
    assert nothing_written(study)


def test_population_count_that_is_not_a_number(study):
    population = layer(study, "population")
    population["people"] = population["people"].astype(str)
    population.loc[3, "people"] = "many"
    save(study, "population", population)
    assert error(run(study)) == (
        f"{where(study, 'population')}: 1 point(s) have a 'people' that is not a number ('many'); "
        "give a number of people")
    assert nothing_written(study)


def test_population_count_column_missing(study):
    edit(study, 'count_column = "people"', 'count_column = "persons"')
    assert error(run(study)) == (
        f"{where(study, 'population')}: missing column(s) persons (found: people); rename them in "
        "the file or set the column names in [layers.population]")
    assert nothing_written(study)


# --------------------------------------------------------------------------- the output folder


def test_output_folder_that_cannot_be_created(study):
    # CI runs as root, whom a chmod'ed folder does not stop; an output path under an
    # existing regular file fails for everyone (ENOTDIR), like a read-only study folder
    blocker = study.parent.parent / "blocker"
    blocker.write_text("a file where the output folder's parent should be")
    edit(study, 'output = "../maps"', 'output = "../blocker/maps"')
    assert error(run(study)) == (
        f"cannot create the output folder {blocker / 'maps'}: {blocker} is a file, not a folder; "
        f"choose another [study] output in {study}")
    assert blocker.read_text() == "a file where the output folder's parent should be"
    assert nothing_written(study)


def test_output_folder_that_holds_the_inputs(study):
    edit(study, 'output = "../maps"', 'output = "."')
    inputs = {p.name: p.read_bytes() for p in study.parent.iterdir()}
    message = error(run(study))
    assert re.fullmatch(
        rf"output folder {re.escape(str(study.parent))} holds input {re.escape(str(study.parent))}"
        r"/\w+\.(tif|gpkg) of the study: siteplan never writes beside a user's inputs; choose a "
        r"separate \[study\] output folder", message)
    assert {p.name: p.read_bytes() for p in study.parent.iterdir()} == inputs

