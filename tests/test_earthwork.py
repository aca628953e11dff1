"""Cut and fill on synthetic DEMs whose volumes are worked out by hand."""

from __future__ import annotations

import math
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
from affine import Affine
from shapely.geometry import Point, box

from pipeline.earthwork import balancing_level, cut_fill
from pipeline.errors import ConfigError, CRSError, InputNotFoundError, LayerError

CRS = "EPSG:6681"


def write_dem(path: Path, func, *, size: float = 200.0, cell: float = 1.0, crs: str = CRS) -> Path:
    """GeoTIFF of ``func(x, y)`` sampled at pixel centres over [0, size]^2."""
    n = round(size / cell)
    centres = (np.arange(n) + 0.5) * cell
    x, y = np.meshgrid(centres, size - centres)  # row 0 is the north edge
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=n,
        height=n,
        count=1,
        dtype="float64",
        crs=crs,
        nodata=-9999.0,
        transform=Affine(cell, 0.0, 0.0, 0.0, -cell, size),
    ) as ds:
        ds.write(func(x, y), 1)
    return path


def plane(x, y):
    return 10.0 + 0.1 * x  # rises 0.1 m per metre eastwards


@pytest.fixture(scope="module")
def plane_dem(tmp_path_factory) -> Path:
    return write_dem(tmp_path_factory.mktemp("dem") / "plane.tif", plane)


def parcels_of(*geoms, index=None) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(geometry=list(geoms), crs=CRS, index=index)


# --------------------------------------------------------------------------- plane


def test_plane_balanced_level_is_the_mean_and_volumes_are_the_two_wedges(plane_dem):
    # square 40 x 40 m over x in [50, 90]: mean 10 + 0.1 x 70 = 17 m. Cut = fill = the
    # wedge over half the square: L x integral_0^(L/2) b u du = b L^3 / 8 = 0.1 x 40^3 / 8.
    # The level falls on a pixel edge and the plane is linear in each pixel: exact.
    out = cut_fill(parcels_of(box(50, 20, 90, 60)), plane_dem)
    row = out.iloc[0]
    assert row["pad_elevation_used"] == pytest.approx(17.0, abs=1e-9)
    assert row["ground_mean_m"] == pytest.approx(17.0, abs=1e-9)
    assert row["cut_m3"] == pytest.approx(800.0, rel=1e-9)
    assert row["fill_m3"] == pytest.approx(800.0, rel=1e-9)
    assert row["net_m3"] == pytest.approx(0.0, abs=1e-6)
    assert row["pad_area_m2"] == row["dem_area_m2"] == pytest.approx(1600.0)
    assert bool(row["balanced"])


def test_plane_at_given_levels(plane_dem):
    # level 15 m = the ground at the west edge: all cut, 1,600 m2 x (17 - 15) = 3,200 m3;
    # level 20 m: all fill, 1,600 x 3 = 4,800 m3. NaN in a Series means "balance".
    pads = parcels_of(
        box(50, 20, 90, 60), box(50, 20, 90, 60), box(50, 20, 90, 60), index=["a", "b", "c"]
    )
    out = cut_fill(pads, plane_dem, pad_elevation=pd.Series([15.0, 20.0, np.nan], index=pads.index))
    assert out.index.tolist() == ["a", "b", "c"]
    assert out["cut_m3"].tolist() == pytest.approx([3200.0, 0.0, 800.0])
    assert out["fill_m3"].tolist() == pytest.approx([0.0, 4800.0, 800.0])
    assert out["pad_elevation_used"].tolist() == pytest.approx([15.0, 20.0, 17.0])
    assert out["balanced"].tolist() == [False, False, True]
    same = cut_fill(pads, plane_dem, pad_elevation=15.0)
    assert same["cut_m3"].tolist() == pytest.approx([3200.0] * 3)


def test_plane_under_a_circular_pad_balances_at_the_centre_value(plane_dem):
    # a disc is symmetric about its centre: the mean of a plane over it is the value there;
    # exact pixel coverage keeps the discretisation error tiny (< 1 mm here)
    out = cut_fill(parcels_of(Point(123.4, 77.7).buffer(30.0, quad_segs=32)), plane_dem)
    assert out["pad_elevation_used"].item() == pytest.approx(plane(123.4, 77.7), abs=1e-3)
    assert out["dem_area_m2"].item() == pytest.approx(out["pad_area_m2"].item(), rel=1e-9)


def test_pad_replaces_the_parcel_polygon(plane_dem):
    parcels = parcels_of(box(0, 0, 200, 200))
    pad = gpd.GeoSeries([box(50, 20, 90, 60)], crs=CRS, index=parcels.index)
    out = cut_fill(parcels, plane_dem, pad=pad)
    assert out["pad_area_m2"].item() == pytest.approx(1600.0)
    assert out["cut_m3"].item() == pytest.approx(800.0)
    with pytest.raises(LayerError, match="aligned"):
        cut_fill(parcels, plane_dem, pad=gpd.GeoSeries([box(0, 0, 1, 1)], crs=CRS, index=[5]))


def test_compaction_balances_fill_with_a_share_of_the_cut(plane_dem):
    out = cut_fill(parcels_of(box(50, 20, 90, 60)), plane_dem, compaction=0.9)
    row = out.iloc[0]
    assert row["fill_m3"] == pytest.approx(0.9 * row["cut_m3"], rel=1e-9)
    assert row["pad_elevation_used"] < 17.0  # less fill is available, so a lower level
    assert bool(row["balanced"])


# --------------------------------------------------------------------------- cone

R, H = 60.0, 30.0  # cone of radius 60 m and height 30 m centred at (100, 100)


def cone(x, y):
    return H * np.clip(1.0 - np.hypot(x - 100.0, y - 100.0) / R, 0.0, None)


@pytest.mark.parametrize(("cell", "rel"), [(1.0, 1e-3), (5.0, 1e-2)])
def test_cone_volumes_by_hand(tmp_path, cell, rel):
    # pad = the cone's base disc. Level 0: cut = cone volume pi R^2 H / 3, no fill.
    # Balancing level = mean height over the disc = H / 3; the part above it is a cone of
    # height 2H/3 and radius 2R/3: cut = pi (2R/3)^2 (2H/3) / 3 = 8 pi R^2 H / 81 = fill.
    # Pixels are flat at their centre value: on a 1 m grid the error is ~3e-5 of the
    # volume (asserted < 0.1 %), on a 5 m grid (DEM5A) < 1 %.
    dem = write_dem(tmp_path / "cone.tif", cone, cell=cell)
    disc = Point(100.0, 100.0).buffer(R, quad_segs=64)
    polygon_share = disc.area / (math.pi * R**2)  # the 256-gon is 0.01 % short of the circle
    pads = parcels_of(disc, disc)
    out = cut_fill(pads, dem, pad_elevation=pd.Series([0.0, np.nan], index=pads.index))
    volume = math.pi * R**2 * H / 3 * polygon_share
    assert out["cut_m3"].iloc[0] == pytest.approx(volume, rel=rel)
    assert out["fill_m3"].iloc[0] == 0.0
    assert out["pad_elevation_used"].iloc[1] == pytest.approx(H / 3, rel=rel)
    balanced = 8 * math.pi * R**2 * H / 81
    assert out["cut_m3"].iloc[1] == pytest.approx(balanced, rel=rel)
    assert out["fill_m3"].iloc[1] == pytest.approx(balanced, rel=rel)


# --------------------------------------------------------------------------- solver


def test_balancing_level_solves_the_piecewise_linear_equation():
    z = np.array([3.0, 1.0, 2.0, 10.0])
    w = np.array([1.0, 2.0, 1.0, 0.5])
    assert balancing_level(z, w) == pytest.approx(np.average(z, weights=w))
    for c in (0.5, 0.8, 1.3):
        p = balancing_level(z, w, compaction=c)
        fill = np.sum(w * np.clip(p - z, 0, None))
        cut = np.sum(w * np.clip(z - p, 0, None))
        assert fill == pytest.approx(c * cut)
    assert balancing_level(np.array([4.0, 4.0]), np.ones(2)) == 4.0
    assert math.isnan(balancing_level(np.array([1.0]), np.zeros(1)))


# --------------------------------------------------------------------------- edges and errors


def test_pad_outside_the_dem_gives_nan_volumes(plane_dem, caplog):
    pads = parcels_of(box(50, 20, 90, 60), box(500, 500, 520, 520), box(190, 20, 230, 60))
    out = cut_fill(pads, plane_dem)
    assert out["dem_area_m2"].tolist() == pytest.approx([1600.0, 0.0, 400.0])
    assert math.isnan(out["cut_m3"].iloc[1]) and not out["balanced"].iloc[1]
    assert "partly covered" in caplog.text


def test_crs_mismatch_names_both(plane_dem):
    parcels = parcels_of(box(50, 20, 90, 60)).to_crs("EPSG:6680")
    with pytest.raises(CRSError, match="EPSG:6680.*EPSG:6681"):
        cut_fill(parcels, plane_dem)


def test_geographic_dem_is_refused(tmp_path):
    dem = write_dem(tmp_path / "deg.tif", plane, size=2.0, cell=0.01, crs="EPSG:4326")
    parcels = gpd.GeoDataFrame(geometry=[box(0.5, 0.5, 1.0, 1.0)], crs="EPSG:4326")
    with pytest.raises(CRSError, match="geographic"):
        cut_fill(parcels, dem)


def test_missing_dem_and_bad_compaction(tmp_path, plane_dem):
    parcels = parcels_of(box(50, 20, 90, 60))
    with pytest.raises(InputNotFoundError, match="nope.tif"):
        cut_fill(parcels, tmp_path / "nope.tif")
    with pytest.raises(ConfigError, match="compaction"):
        cut_fill(parcels, plane_dem, compaction=0.0)


def test_empty_and_missing_pads_give_nan_rows(plane_dem):
    from shapely.geometry import Polygon

    pads = gpd.GeoDataFrame(geometry=[Polygon(), None, box(50, 20, 90, 60)], crs=CRS)
    out = cut_fill(pads, plane_dem)
    assert out["cut_m3"].isna().tolist() == [True, True, False]
    assert out["cut_m3"].iloc[2] == pytest.approx(800.0)
    empty = cut_fill(pads.iloc[:0], plane_dem)
    assert empty.empty and "cut_m3" in empty.columns
