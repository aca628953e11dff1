"""Zonal statistics: rasterstats' fixtures replayed in centre mode, exact mode by hand."""

from __future__ import annotations

import itertools
import math
import warnings
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from affine import Affine
from shapely.geometry import Point, box

from pipeline import zonal
from pipeline.errors import ConfigError, CRSError, LayerError
from pipeline.raster import slope_degrees
from pipeline.zonal import JAPAN_DEPTH_BREAKS, class_intervals, zonal_stats

CRS = "EPSG:6677"


# --- helpers -----------------------------------------------------------------

def write_raster(path: Path, values: np.ndarray, *, cell: float = 1.0, crs: str = CRS,
                 nodata: float | None = -9999.0, origin: tuple[float, float] | None = None,
                 **options: Any) -> Path:
    """A GeoTIFF whose top-left corner is (0, rows * cell) unless ``origin`` is given."""
    rows, cols = values.shape
    x0, y0 = origin if origin is not None else (0.0, rows * cell)
    with rasterio.open(path, "w", driver="GTiff", width=cols, height=rows, count=1,
                       dtype=values.dtype.name, crs=crs, nodata=nodata,
                       transform=Affine(cell, 0, x0, 0, -cell, y0), **options) as ds:
        ds.write(values, 1)
    return path


@pytest.fixture
def grid10(tmp_path: Path) -> Path:
    """10 x 10 raster of 1 m pixels; the pixel in row r, column c holds 10 r + c."""
    return write_raster(tmp_path / "grid10.tif", np.arange(100, dtype="float32").reshape(10, 10))


def parcels(*geoms: object, index: list[str] | None = None) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(geometry=list(geoms), index=index, crs=CRS)


def rs_zonal(*args: Any, **kwargs: Any) -> list[dict[str, Any]]:
    """rasterstats' zonal_stats, quiet about its Affine ``*`` (deprecated in affine 3.1)."""
    from rasterstats import zonal_stats as reference

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PendingDeprecationWarning)
        return reference(*args, **kwargs)


@pytest.fixture(scope="module")
def rs(fixtures_dir: Path) -> Path:
    return fixtures_dir / "rasterstats"


def rs_layer(rs: Path, name: str) -> gpd.GeoDataFrame:
    """A rasterstats test layer in the rasters' CRS.

    rasterstats' layers carry no CRS (or, for multipolygons, a wrong EPSG:4326
    label); their coordinates are in the CRS of slope.tif, so that CRS is set
    (a label fix, not a reprojection).
    """
    with rasterio.open(rs / "slope.tif") as ds:
        crs = ds.crs.to_wkt()
    return gpd.read_file(rs / f"{name}.shp").set_crs(crs, allow_override=True)


# --- rasterstats fixtures, centre mode ----------------------------------------

def test_polygons_centre_counts_and_mean(rs: Path) -> None:
    out = zonal_stats(rs_layer(rs, "polygons"), {"slope": rs / "slope.tif"}, mode="centre")
    assert out["slope_count"].tolist() == [75, 50]
    assert round(out["slope_mean"].iloc[0], 2) == 14.66


def test_polygons_all_touched_counts(rs: Path) -> None:
    out = zonal_stats(rs_layer(rs, "polygons"), {"slope": rs / "slope.tif"},
                      stats=["count"], mode="all_touched")
    assert out["slope_count"].tolist() == [95, 73]


def test_points_take_the_pixel_containing_them(rs: Path) -> None:
    out = zonal_stats(rs_layer(rs, "points"), {"slope": rs / "slope.tif"}, mode="centre")
    assert len(out) == 3
    assert round(out["slope_mean"].iloc[0], 3) == 11.386
    assert round(out["slope_mean"].iloc[1], 3) == 35.547
    assert (out["slope_count"] == 1).all()


def test_lines_take_the_pixels_gdal_draws(rs: Path) -> None:
    out = zonal_stats(rs_layer(rs, "lines"), {"slope": rs / "slope.tif"}, mode="centre")
    assert out["slope_count"].tolist() == [58, 32]


def test_multipolygons(rs: Path) -> None:
    out = zonal_stats(rs_layer(rs, "multipolygons"), {"slope": rs / "slope.tif"}, mode="centre")
    assert out["slope_count"].tolist() == [125]


def test_categorical_classes(rs: Path) -> None:
    out = zonal_stats(rs_layer(rs, "polygons"), {"cls": rs / "slope_classes.tif"},
                      stats=["count"], categorical=["cls"], mode="centre")
    assert out.loc[0, "cls_class_1"] == 75
    assert out.loc[1, "cls_class_5"] > 0
    classes = [c for c in out.columns if c.startswith("cls_class_")]
    assert (out[classes].sum(axis=1) == out["cls_count"]).all()


def test_nodata_counts(rs: Path) -> None:
    out = zonal_stats(rs_layer(rs, "polygons"),
                      {"part": rs / "slope_nodata.tif", "none": rs / "all_nodata.tif"},
                      stats=["nodata", "count", "mean"], mode="centre")
    assert out[["part_nodata", "part_count"]].to_numpy().tolist() == [[36, 39], [19, 31]]
    assert out[["none_nodata", "none_count"]].to_numpy().tolist() == [[75, 0], [50, 0]]
    assert out["none_mean"].isna().all()


def test_partial_and_no_overlap(rs: Path) -> None:
    partial = zonal_stats(rs_layer(rs, "polygons_partial_overlap"), {"s": rs / "slope.tif"},
                          mode="centre")
    assert (partial["s_count"] > 0).all()
    none = zonal_stats(rs_layer(rs, "polygons_no_overlap"), {"s": rs / "slope.tif"},
                       mode="centre")
    assert (none["s_count"] == 0).all()
    assert none["s_mean"].isna().all()


@pytest.mark.parametrize("mode", ["centre", "all_touched", "exact"])
def test_invariants(rs: Path, mode: str) -> None:
    out = zonal_stats(rs_layer(rs, "polygons"), {"s": rs / "slope.tif"},
                      stats=["min", "median", "max", "range"], percentiles=[5], mode=mode)
    assert (out["s_min"] <= out["s_p5"]).all()
    assert (out["s_p5"] <= out["s_median"]).all()
    assert (out["s_median"] <= out["s_max"]).all()
    assert np.allclose(out["s_range"], out["s_max"] - out["s_min"])


def test_centre_percentiles_are_numpys(rs: Path) -> None:
    layer = rs_layer(rs, "polygons")
    out = zonal_stats(layer, {"s": rs / "slope.tif"}, stats=["median"], percentiles=[5, 62.5],
                      mode="centre")
    ref = rs_zonal(layer, str(rs / "slope.tif"), stats="median percentile_5 percentile_62.5")
    assert np.allclose(out["s_median"], [r["median"] for r in ref])
    assert np.allclose(out["s_p5"], [r["percentile_5"] for r in ref])
    assert np.allclose(out["s_p62_5"], [r["percentile_62.5"] for r in ref])


def test_exact_counts_are_polygon_areas(rs: Path) -> None:
    layer = rs_layer(rs, "polygons")
    out = zonal_stats(layer, {"s": rs / "slope.tif"}, stats=["count", "area", "mean"])
    with rasterio.open(rs / "slope.tif") as ds:
        pixel = ds.res[0] * ds.res[1]
    assert np.allclose(out["s_count"] * pixel, layer.area, rtol=1e-7)
    assert np.allclose(out["s_area"], layer.area, rtol=1e-7)
    # close to, but not equal to, the centre rule's 14.66
    assert out["s_mean"].iloc[0] == pytest.approx(14.66, abs=0.5)


def test_exact_percentile_matches_exactextract_quantile(rs: Path) -> None:
    import exactextract

    layer = rs_layer(rs, "polygons")
    out = zonal_stats(layer, {"s": rs / "slope.tif"}, stats=["median"], percentiles=[5])
    ref = exactextract.exact_extract(str(rs / "slope.tif"), layer,
                                     ["quantile(q=0.05)", "median"], output="pandas")
    assert np.allclose(out["s_p5"], ref.iloc[:, 0])
    assert np.allclose(out["s_median"], ref["median"])


# --- CRS and geometry contracts -----------------------------------------------

def test_crs_mismatch_names_both(rs: Path) -> None:
    layer = gpd.read_file(rs / "multipolygons.shp")  # labelled EPSG:4326
    with pytest.raises(CRSError, match=r"EPSG:9674.*EPSG:4326"):
        zonal_stats(layer, {"slope": rs / "slope.tif"}, mode="centre")


def test_parcels_without_crs(grid10: Path) -> None:
    with pytest.raises(CRSError, match="parcels have no CRS"):
        zonal_stats(gpd.GeoDataFrame(geometry=[box(0, 0, 1, 1)]), {"v": grid10})


def test_areas_need_a_metric_crs(tmp_path: Path) -> None:
    tif = write_raster(tmp_path / "ll.tif", np.ones((4, 4), "float32"), cell=0.001,
                       crs="EPSG:4326", origin=(139.0, 36.0))
    p = gpd.GeoDataFrame(geometry=[box(139.0, 35.998, 139.002, 36.0)], crs="EPSG:4326")
    assert zonal_stats(p, {"d": tif})["d_count"].iloc[0] == pytest.approx(4.0)
    with pytest.raises(CRSError, match="projected CRS in metres"):
        zonal_stats(p, {"d": tif}, classes={"d": [1.0]})


def test_exact_mode_needs_polygons(grid10: Path) -> None:
    with pytest.raises(LayerError, match="mode='centre'"):
        zonal_stats(parcels(Point(1, 1)), {"v": grid10})


def test_bad_options_are_gathered(grid10: Path) -> None:
    with pytest.raises(ConfigError, match="2 problems") as err:
        zonal_stats(parcels(box(0, 0, 1, 1)), {"v": grid10}, stats=["mode"],
                    classes={"dem": [1.0]})
    assert "unknown stats" in str(err.value) and "not raster keys" in str(err.value)


def test_stats_and_percentiles_per_key(grid10: Path) -> None:
    out = zonal_stats(parcels(box(2, 5, 5, 8)), {"dem": grid10, "depth": grid10},
                      stats={"dem": ["min"], "depth": ["max", "nodata"]}, percentiles={"dem": [5]})
    assert out.columns.tolist() == ["dem_min", "dem_p5", "depth_max", "depth_nodata"]
    with pytest.raises(ConfigError, match=r"percentiles names \['dme'\]"):
        zonal_stats(parcels(box(2, 5, 5, 8)), {"dem": grid10}, percentiles={"dme": [5]})


def test_index_and_empty_geometries(grid10: Path) -> None:
    p = parcels(box(2, 5, 5, 8), None, box(50, 50, 60, 60), index=["b", "a", "z"])
    out = zonal_stats(p, {"v": grid10}, stats=["count", "mean", "nodata"])
    assert out.index.tolist() == ["b", "a", "z"]
    assert out["v_count"].tolist() == [9.0, 0.0, 0.0]
    assert out["v_mean"].iloc[0] == 33.0
    assert np.isnan(out["v_mean"].iloc[1:]).all()


# --- exact mode against hand-computed answers and rasterstats ------------------

def test_aligned_square_same_in_every_mode(grid10: Path) -> None:
    p = parcels(box(2, 5, 5, 8))  # rows 2-4, columns 2-4: 22..44, mean 33
    for mode in ("exact", "centre"):
        out = zonal_stats(p, {"v": grid10}, stats=["count", "mean", "min", "max"], mode=mode)
        assert out.iloc[0].tolist() == [9.0, 33.0, 22.0, 44.0]
    ref = rs_zonal(p, str(grid10))[0]
    assert (ref["count"], ref["mean"]) == (9, 33.0)


def test_half_pixel(grid10: Path) -> None:
    p = parcels(box(3, 6, 3.5, 7))  # west half of the pixel in row 3, column 3 (value 33)
    out = zonal_stats(p, {"v": grid10}, stats=["count", "area", "mean", "min", "max"])
    assert out.iloc[0].tolist() == [0.5, 0.5, 33.0, 33.0, 33.0]
    centre = zonal_stats(p, {"v": grid10}, stats=["count"], mode="centre")
    assert centre["v_count"].iloc[0] == rs_zonal(p, str(grid10), stats="count")[0]["count"]


def test_fractional_pixels_against_rasterstats(grid10: Path) -> None:
    # Row 3 (y 6-7): columns 2 and 3 whole (32, 33), 40 % of column 4 (34).
    p = parcels(box(2, 6, 4.4, 7))
    exact = zonal_stats(p, {"v": grid10}, stats=["count", "sum", "mean"])
    assert exact["v_count"].iloc[0] == pytest.approx(2.4)
    assert exact["v_sum"].iloc[0] == pytest.approx(32 + 33 + 0.4 * 34)
    assert exact["v_mean"].iloc[0] == pytest.approx(78.6 / 2.4)  # 32.75
    for mode, all_touched, count, mean in (("centre", False, 2, 32.5),
                                          ("all_touched", True, 3, 33.0)):
        ours = zonal_stats(p, {"v": grid10}, stats=["count", "mean"], mode=mode)
        ref = rs_zonal(p, str(grid10), all_touched=all_touched)[0]
        assert (ours["v_count"].iloc[0], ours["v_mean"].iloc[0]) == (count, mean)
        assert (ref["count"], ref["mean"]) == (count, mean)


def test_weighted_percentile_by_hand(grid10: Path) -> None:
    # Cells 32 (w 1), 33 (w 1), 34 (w 0.4): positions s = 0, 1*1 + 2*1 = 3, 2*0.4 + 2*2 = 4.8
    # of (m - 1) W = 2 * 2.4 = 4.8; the median sits at 2.4 -> 32 + 2.4 / 3 = 32.8.
    out = zonal_stats(parcels(box(2, 6, 4.4, 7)), {"v": grid10}, stats=["median"],
                      percentiles=[0, 100])
    assert out["v_median"].iloc[0] == pytest.approx(32.8)
    assert (out["v_p0"].iloc[0], out["v_p100"].iloc[0]) == (32.0, 34.0)


def test_classes_wet_share_and_nodata(tmp_path: Path) -> None:
    depth = np.array([[0.0, 0.2, 0.4, 0.8],
                      [1.5, 3.5, 25.0, -9999.0]], dtype="float32")
    tif = write_raster(tmp_path / "depth.tif", depth, cell=2.0)  # 4 m2 pixels
    p = parcels(box(0, 0, 8, 4), box(0, 2, 3, 4))  # all 8 pixels; 1.5 top-left pixels
    out = zonal_stats(p, {"tsunami": tif}, stats=["count", "nodata", "area", "max"],
                      classes={"tsunami": JAPAN_DEPTH_BREAKS}, wet_threshold={"tsunami": 0.01})
    first = out.iloc[0]
    assert (first["tsunami_count"], first["tsunami_nodata"], first["tsunami_area"]) == (7, 1, 28)
    assert first["tsunami_max"] == 25.0
    expected = {"0_0.3": 4, "0.3_0.5": 4, "0.5_1": 4, "1_3": 4, "3_5": 4, "5_10": 0,
                "10_20": 0, "20_inf": 4}  # the dry 0.0 pixel is in no class
    assert {c.removeprefix("tsunami_area_"): first[c] for c in out.columns
            if c.startswith("tsunami_area_")} == expected
    assert first["tsunami_wet_area"] == 24.0
    assert first["tsunami_wet_share"] == pytest.approx(24 / 32)
    second = out.iloc[1]  # 1 pixel of depth 0 and half a pixel of 0.2
    assert second["tsunami_wet_area"] == pytest.approx(2.0)
    assert second["tsunami_area_0_0.3"] == pytest.approx(2.0)
    assert second["tsunami_wet_share"] == pytest.approx(2.0 / 6.0)


def test_class_intervals_open_ended() -> None:
    assert class_intervals([0.3, 0.5])[-1] == (0.5, math.inf)
    assert class_intervals([-2.0, 0.0])[0] == (-2.0, 0.0)


# --- several rasters, one coverage -------------------------------------------

def test_rasters_on_one_grid_share_one_exactextract_call(
        tmp_path: Path, grid10: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import exactextract

    other = write_raster(tmp_path / "double.tif",
                         (np.arange(100, dtype="float32") * 2).reshape(10, 10))
    calls = []
    real = exactextract.exact_extract

    def counting(*args: object, **kwargs: object) -> object:
        calls.append(args[2])
        return real(*args, **kwargs)

    monkeypatch.setattr(exactextract, "exact_extract", counting)
    p = parcels(box(0.5, 0.5, 3.2, 4.7), box(5, 5, 9.9, 6.1))
    both = zonal_stats(p, {"a": grid10, "b": other, "c": grid10}, stats=["mean", "count"])
    assert len(calls) == 1  # one call: exactextract computes each parcel's coverage once
    alone = zonal_stats(p, {"a": grid10}, stats=["mean", "count"])
    assert np.allclose(both["a_mean"], alone["a_mean"])
    assert np.allclose(both["b_mean"], 2 * alone["a_mean"])
    assert np.allclose(both["c_count"], alone["a_count"])


def test_rasters_on_different_grids(tmp_path: Path, grid10: Path) -> None:
    coarse = write_raster(tmp_path / "coarse.tif", np.arange(25, dtype="float32").reshape(5, 5),
                          cell=2.0)
    p = parcels(box(2, 6, 4, 8))
    out = zonal_stats(p, {"fine": grid10, "coarse": coarse}, stats=["count", "mean"])
    assert out.iloc[0].tolist() == [4.0, 27.5, 1.0, 6.0]


def test_rasters_are_read_by_window(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    big = write_raster(tmp_path / "big.tif", np.ones((2000, 2000), "float32"))
    seen: list[int] = []
    real = zonal.read_window

    def spy(ds: object, info: object, window: object) -> np.ndarray:
        arr = real(ds, info, window)
        seen.append(arr.size)
        return arr

    monkeypatch.setattr(zonal, "read_window", spy)
    monkeypatch.setattr(zonal._BlockPlan, "prefetch", lambda *args: None)
    p = parcels(box(10, 10, 20, 30), box(1300, 1200, 1330, 1210))
    for mode in ("exact", "centre"):
        seen.clear()
        out = zonal_stats(p, {"v": big}, stats=["count"], mode=mode)
        assert out["v_count"].tolist() == [200.0, 300.0]
        assert seen and max(seen) < 0.001 * 2000 * 2000


def test_prefetch_reads_only_the_blocks_parcels_touch(tmp_path: Path) -> None:
    tif = write_raster(tmp_path / "tiled.tif", np.ones((1024, 1024), "float32"), tiled=True,
                       blockxsize=256, blockysize=256)
    from pipeline.raster import open_raster_checked

    info = open_raster_checked(tif, layer="v")
    with rasterio.open(tif) as ds:
        plan = zonal._BlockPlan(ds, info, n_datasets=1, cache_mb=64)
        geoms = np.array([box(10, 1000, 20, 1010), box(300, 300, 520, 310)])
        ids = plan.needed(geoms)  # block (row 0, col 0); row 2 (y 300-310 -> rows 714-724), cols 1-2
    assert ids.tolist() == [0, 2 * 4 + 1, 2 * 4 + 2]


def test_centre_mode_tessellation_matches_one_by_one(tmp_path: Path) -> None:
    """Touching parcels burnt together get the pixels each gets burnt alone (rasterstats),
    also where a shared edge runs through pixel centres (GDAL then gives the pixels on a
    shared horizontal edge to both parcels); overlapping ones are burnt alone."""
    z = np.arange(400, dtype="float32").reshape(20, 20)
    tif = write_raster(tmp_path / "v.tif", z)
    xs, ys = [0, 3.5, 7.2, 12.5, 20], [0, 4.5, 9.9, 15.5, 20]  # 3.5, 12.5 ... are centre lines
    cells = [box(x0, y0, x1, y1) for x0, x1 in itertools.pairwise(xs) for y0, y1 in itertools.pairwise(ys)]
    cells += [box(5, 5, 11.3, 11.3), box(6, 6, 9, 9)]  # overlapping the tessellation
    p = parcels(*cells)
    ours = zonal_stats(p, {"v": tif}, stats=["count", "sum"], mode="centre")
    ref = rs_zonal(p, str(tif), stats="count sum")
    assert ours["v_count"].tolist() == [r["count"] for r in ref]
    assert ours["v_sum"].tolist() == [r["sum"] for r in ref]
    assert ours["v_count"].iloc[:16].sum() == 400 + 40  # 2 edges on centre rows, 20 pixels each
    shifted = parcels(*[c for c in (box(x0 + 0.01, y0 + 0.01, x1 + 0.01, y1 + 0.01)
                                    for x0, x1 in itertools.pairwise(xs) for y0, y1 in itertools.pairwise(ys))])
    moved = zonal_stats(shifted, {"v": tif}, stats=["count"], mode="centre")
    assert moved["v_count"].sum() == 400  # edges off the centres: every pixel once
    assert moved["v_count"].tolist() == [r["count"] for r in rs_zonal(shifted, str(tif),
                                                                      stats="count")]


def test_batches_give_the_same_answer(grid10: Path) -> None:
    p = parcels(*[box(i % 7, i % 5, i % 7 + 2.3, i % 5 + 1.7) for i in range(30)])
    one = zonal_stats(p, {"v": grid10}, stats=["mean", "count"], percentiles=[5])
    many = zonal_stats(p, {"v": grid10}, stats=["mean", "count"], percentiles=[5], batch_cells=10,
                       decode_threads=1, cache_mb=1)
    assert np.allclose(one.to_numpy(), many.to_numpy())


# --- slope ------------------------------------------------------------------

def test_slope_of_a_plane(tmp_path: Path) -> None:
    rows, cols, cell = 30, 40, 5.0
    z = (np.arange(cols) * cell * 0.1)[None, :].repeat(rows, axis=0).astype("float32")
    dem = write_raster(tmp_path / "dem.tif", z, cell=cell)  # 10 % grade eastwards
    p = parcels(box(0, 0, 200, 150), box(40, 40, 90, 80))
    out = zonal_stats(p, {"dem": dem}, stats=["min"], slope="dem")
    expected = math.degrees(math.atan(0.1))
    assert np.allclose(out["dem_slope_mean"], expected)
    assert np.allclose(out["dem_slope_max"], expected)


def test_windowed_slope_equals_whole_raster_slope(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    z = rng.normal(50, 3, (25, 30)).astype("float32")
    z[4, 6] = -9999.0
    dem = write_raster(tmp_path / "dem.tif", z, cell=2.0)
    whole = slope_degrees(z, Affine(2, 0, 0, 0, -2, 50), nodata=-9999.0)
    p = parcels(box(0, 0, 60, 50), box(7, 33, 21, 47), box(50, 0, 60, 6))
    for mode in ("exact", "centre"):
        out = zonal_stats(p, {"dem": dem}, stats=["count"], slope="dem", mode=mode)
        assert out["dem_slope_max"].iloc[0] == pytest.approx(np.nanmax(whole))
    centre = zonal_stats(p, {"dem": dem}, stats=["count"], slope="dem", mode="centre")
    assert centre["dem_slope_mean"].iloc[0] == pytest.approx(np.nanmean(whole))
