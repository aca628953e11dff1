"""Raster inputs: checked opening, warping, sampling, slope and depth plausibility."""

from __future__ import annotations

import math
import os
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from affine import Affine

from pipeline.errors import CRSError, InputNotFoundError, OutputError, RasterError
from pipeline.raster import (
    check_depth_raster,
    open_raster_checked,
    read_slope_window,
    sample_raster,
    slope_degrees,
    warp_raster,
)
from pipeline.zonal import zonal_stats


def write_raster(path: Path, values: np.ndarray, *, cell: float = 1.0, crs: str | None = "EPSG:6677",
                 nodata: float | None = -9999.0, **options: object) -> Path:
    rows, cols = values.shape
    with rasterio.open(path, "w", driver="GTiff", width=cols, height=rows, count=1,
                       dtype=values.dtype.name, crs=crs, nodata=nodata,
                       transform=Affine(cell, 0, 0, 0, -cell, rows * cell), **options) as ds:
        ds.write(values, 1)
    return path


# --- open_raster_checked ---------------------------------------------------------

def test_open_reports_the_grid(tmp_path: Path) -> None:
    tif = write_raster(tmp_path / "dem.tif", np.zeros((3, 4), "float32"), cell=5.0)
    info = open_raster_checked(tif, layer="dem")
    assert (info.width, info.height, info.res, info.nodata) == (4, 3, (5.0, 5.0), -9999.0)
    assert info.bounds == (0.0, 0.0, 20.0, 15.0)
    assert (info.units, info.is_metric, info.pixel_area) == ("metre", True, 25.0)
    assert info.crs.to_epsg() == 6677 and info.dtype == "float32"


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputNotFoundError, match=r"dem raster .*nope\.tif: file not found"):
        open_raster_checked(tmp_path / "nope.tif", layer="dem")


@pytest.mark.parametrize("tiled", [False, True])
def test_truncated_file(tmp_path: Path, tiled: bool) -> None:
    tif = tmp_path / "cut.tif"
    blocks = {"blockxsize": 256, "blockysize": 256} if tiled else {}
    write_raster(tif, np.random.default_rng(0).random((300, 300)).astype("float32"),
                 tiled=tiled, **blocks)
    with open(tif, "r+b") as fh:
        fh.truncate(os.path.getsize(tif) // 2)
    with pytest.raises(RasterError, match=r"flood raster .*cut\.tif: GDAL cannot read it.*again"):
        open_raster_checked(tif, layer="flood")


def test_not_a_raster(tmp_path: Path) -> None:
    bad = tmp_path / "dem.tif"
    bad.write_text("not a tiff", encoding="utf-8")
    with pytest.raises(RasterError, match="not a raster"):
        open_raster_checked(bad, layer="dem")


def test_no_crs(tmp_path: Path) -> None:
    tif = write_raster(tmp_path / "nocrs.tif", np.zeros((2, 2), "float32"), crs=None)
    with pytest.raises(CRSError, match=r"dem raster .*nocrs\.tif: has no CRS; assign"):
        open_raster_checked(tif, layer="dem")


# --- warp_raster and the Jakarta tsunami ---------------------------------------------

def test_jakarta_tsunami_over_buildings(fixtures_dir: Path, tmp_path: Path) -> None:
    src = fixtures_dir / "inasafe" / "hazard" / "tsunami_wgs84.tif"
    utm = warp_raster(src, tmp_path / "tsunami_utm.tif", crs="EPSG:32748", layer="tsunami")
    info = open_raster_checked(utm, layer="tsunami")
    assert info.crs.to_epsg() == 32748 and info.is_metric
    with rasterio.open(utm) as ds:
        assert ds.profile["tiled"] and ds.profile["compress"] == "deflate"
        assert (ds.block_shapes[0]) == (256, 256)
    assert not list(tmp_path.glob(".*.tmp"))

    buildings = gpd.read_file(fixtures_dir / "inasafe" / "exposure" / "buildings.shp")
    buildings = buildings.to_crs("EPSG:32748")
    out = zonal_stats(buildings, {"tsunami": utm}, stats=["max", "mean", "count", "nodata"],
                      classes={"tsunami": [0.1, 1, 3, 8]}, wet_threshold={"tsunami": 0.1})
    assert len(out) == 181
    depth = out["tsunami_max"]
    assert depth.notna().all()
    assert depth.min() >= 0.0 and depth.max() <= 16.68 + 1e-6
    assert (depth > 0.1).sum() > 10  # some buildings are wet
    assert (out["tsunami_wet_share"].between(0, 1)).all()
    covered = (out["tsunami_count"] + out["tsunami_nodata"]) * info.pixel_area
    assert np.allclose(covered, buildings.area, rtol=1e-6)  # exact coverage = footprint area


def test_warp_refuses_to_overwrite_and_degrees(tmp_path: Path) -> None:
    src = write_raster(tmp_path / "a.tif", np.ones((4, 4), "float32"), cell=10.0)
    dst = warp_raster(src, tmp_path / "b.tif", crs="EPSG:6677", resolution=5)
    with pytest.raises(OutputError, match="exists; pass overwrite=True"):
        warp_raster(src, dst, crs="EPSG:6677")
    assert warp_raster(src, dst, crs="EPSG:6677", resolution=5, overwrite=True) == dst
    with pytest.raises(OutputError, match="the output is the input"):
        warp_raster(src, src, crs="EPSG:6677", overwrite=True)
    with pytest.raises(CRSError, match="EPSG:4326.*not a projected CRS in metres"):
        warp_raster(src, tmp_path / "c.tif", crs="EPSG:4326")


def test_warp_keeps_values_and_tags(tmp_path: Path) -> None:
    z = np.arange(100, dtype="float32").reshape(10, 10)
    src = write_raster(tmp_path / "a.tif", z, cell=10.0)
    with rasterio.open(src, "r+") as ds:
        ds.update_tags(VERTICAL_ACCURACY_M="0.3", DEM_KIND="laser5m")
    dst = warp_raster(src, tmp_path / "b.tif", crs="EPSG:6677", resolution=5,
                      resampling="nearest")
    with rasterio.open(dst) as ds:
        out = ds.read(1)
        tags = ds.tags()
    assert (tags["VERTICAL_ACCURACY_M"], tags["DEM_KIND"]) == ("0.3", "laser5m")
    assert out.shape == (20, 20)
    assert np.array_equal(out[::2, ::2], z)


def test_warp_onto_another_grid(tmp_path: Path) -> None:
    dem = write_raster(tmp_path / "dem.tif", np.zeros((30, 40), "float32"), cell=5.0)
    with rasterio.open(tmp_path / "ll.tif", "w", driver="GTiff", width=10, height=10, count=1,
                       dtype="float32", crs="EPSG:6668", nodata=-9999.0,
                       transform=Affine(0.0001, 0, 139.833, 0, -0.0001, 36.0015)) as ds:
        ds.write(np.full((1, 10, 10), 2.0, "float32"))  # on zone IX's origin (139.83 E, 36 N)
    out = warp_raster(tmp_path / "ll.tif", tmp_path / "depth.tif", like=dem, layer="flood")
    assert open_raster_checked(out, layer="flood").grid == open_raster_checked(dem, layer="dem").grid
    with rasterio.open(out) as ds:
        z = ds.read(1)
    assert (z == 2.0).sum() > 100 and (z == -9999.0).sum() > 100
    with pytest.raises(CRSError, match="give the target crs"):
        warp_raster(dem, tmp_path / "x.tif")


# --- sample_raster -------------------------------------------------------------

def test_sample_nearest_and_bilinear(tmp_path: Path) -> None:
    z = np.array([[0.0, 10.0, 20.0],
                  [30.0, 40.0, -9999.0]], dtype="float32")
    tif = write_raster(tmp_path / "dem.tif", z, cell=10.0)  # x 0-30, y 0-20
    pts = np.array([[5, 15], [15, 15], [10, 15], [10, 10], [25, 5], [-1, 5], [31, 5], [22, 8]],
                   float)
    near = sample_raster(tif, pts, method="nearest")
    assert np.array_equal(near[:5], [0.0, 10.0, 10.0, 40.0, np.nan], equal_nan=True)
    assert np.isnan(near[5:7]).all()
    bil = sample_raster(tif, pts)
    assert bil[0] == 0.0 and bil[1] == 10.0
    assert bil[2] == pytest.approx(5.0)          # midway between 0 and 10
    assert bil[3] == pytest.approx(20.0)         # centre of 0, 10, 30, 40
    assert np.isnan(bil[4])  # on the centre of a nodata pixel
    assert np.isnan(bil[5:7]).all()
    # (22, 8): weights 0.09, 0.21, 0.21 on 10, 20, 40 and 0.49 on nodata, left out
    assert bil[7] == pytest.approx((0.09 * 10 + 0.21 * 20 + 0.21 * 40) / 0.51)


def test_sample_tiles_give_the_same_answer(tmp_path: Path) -> None:
    z = np.random.default_rng(3).normal(size=(40, 50)).astype("float32")
    tif = write_raster(tmp_path / "dem.tif", z)
    pts = np.random.default_rng(4).uniform([0, 0], [50, 40], (300, 2))
    assert np.allclose(sample_raster(tif, pts, block=7), sample_raster(tif, pts, block=4096))


# --- slope -----------------------------------------------------------------------

def test_slope_horn_by_hand() -> None:
    z = np.array([[1.0, 2.0, 3.0],
                  [1.0, 2.0, 3.0],
                  [1.0, 2.0, 9.0]])
    s = slope_degrees(z, Affine(1, 0, 0, 0, -1, 3))
    # centre: dz/dx = ((3 + 6 + 9) - (1 + 2 + 1)) / 8 = 1.75; dz/dy = ((1 + 4 + 9) - (1 + 4 + 3)) / 8 = 0.75
    assert s[1, 1] == pytest.approx(math.degrees(math.atan(math.hypot(1.75, 0.75))))


def test_slope_nodata_spreads_to_neighbours() -> None:
    z = np.full((5, 5), 10.0)
    z[2, 2] = -9999.0
    s = slope_degrees(z, Affine(2, 0, 0, 0, -2, 10), nodata=-9999.0)
    assert np.isnan(s[1:4, 1:4]).all()
    assert (s[0] == 0).all() and (s[4] == 0).all()


def test_read_slope_window_matches_whole(tmp_path: Path) -> None:
    z = np.random.default_rng(5).normal(20, 4, (12, 15)).astype("float32")
    tif = write_raster(tmp_path / "dem.tif", z, cell=3.0)
    info = open_raster_checked(tif, layer="dem")
    whole = slope_degrees(z, info.transform)
    from rasterio.windows import Window

    with rasterio.open(tif) as ds:
        for c, r, w, h in ((0, 0, 4, 5), (5, 6, 10, 6), (14, 11, 1, 1)):
            part = read_slope_window(ds, info, Window(c, r, w, h))
            assert np.allclose(part, whole[r:r + h, c:c + w])


# --- check_depth_raster ------------------------------------------------------------

def test_depth_plausibility(tmp_path: Path, fixtures_dir: Path) -> None:
    ok = write_raster(tmp_path / "ok.tif", np.array([[0.0, 2.5]], "float32"))
    assert check_depth_raster(ok, layer="flood") == []
    cm = write_raster(tmp_path / "cm.tif", np.array([[0.0, 250.0]], "float32"))
    assert "centimetres" in check_depth_raster(cm, layer="flood")[0]
    neg = write_raster(tmp_path / "neg.tif", np.array([[-3.0, 2.0]], "float32"))
    assert "negative depths" in check_depth_raster(neg, layer="flood")[0]
    undeclared = write_raster(tmp_path / "u.tif", np.array([[-9999.0, 1.0]], "float32"),
                              nodata=None)
    assert "no nodata value is declared" in check_depth_raster(undeclared, layer="flood")[0]
    empty = write_raster(tmp_path / "e.tif", np.full((2, 2), -9999.0, "float32"))
    assert "holds no valid depth" in check_depth_raster(empty, layer="flood")[0]
    jakarta = fixtures_dir / "inasafe" / "hazard" / "tsunami_wgs84.tif"
    assert check_depth_raster(jakarta, layer="tsunami") == []
