"""Property-based tests (issue 7, item 6): envelope arithmetic and zonal-statistics invariants.

Envelope (:mod:`pipeline.zoning`): footprint x storeys = floor area; the caps grow
with the site, the ratios and the road width; the front-road rule never raises the
floor area ratio above the designated one; what fits at k storeys fits at k + 1;
stalls and the parking share never fall as storeys are added.

Zonal statistics (:func:`pipeline.zonal.zonal_stats`, on small generated rasters
and polygons): min <= percentile <= max and min <= mean <= max over valid pixels;
``area`` is ``count`` x pixel area; in exact mode the covered area (valid and
nodata pixels, by coverage fraction) equals the area of the polygon inside the
raster, and the centre mode never counts more pixels than the polygon touches.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
import shapely
from affine import Affine
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from pipeline import zoning
from pipeline.zonal import zonal_stats

CRS = "EPSG:6681"
ENVELOPE = settings(deadline=None, max_examples=150)
ROUNDING = 1e-9  # coverage_cap rounds ratio + bonus to 10 decimals
ZONAL = settings(deadline=None, max_examples=80,
                 suppress_health_check=[HealthCheck.function_scoped_fixture,
                                        HealthCheck.too_slow])

areas = st.floats(min_value=50.0, max_value=200_000.0)
ratios = st.floats(min_value=0.05, max_value=1.0)
fars = st.floats(min_value=0.1, max_value=13.0)
widths = st.floats(min_value=0.0, max_value=30.0)
kinds = st.sampled_from(["residential", "other"])


# --------------------------------------------------------------------------- envelope


@ENVELOPE
@given(area=areas, ratio=ratios, corner=st.booleans(), fire=st.booleans(),
       more_area=st.floats(0.0, 1e4), more_ratio=st.floats(0.0, 0.5))
def test_coverage_cap_is_area_times_ratio_and_monotone(area, ratio, corner, fire, more_area,
                                                       more_ratio):
    base = zoning.coverage_cap(area, ratio, corner=corner,
                               fire_resistant_in_fire_district=fire).iloc[0]
    assert ratio - ROUNDING <= base["coverage_ratio_effective"] <= 1.0
    assert base["coverage_cap_m2"] == pytest.approx(area * base["coverage_ratio_effective"])
    assert base["coverage_cap_m2"] <= area * (1 + ROUNDING)
    bigger = zoning.coverage_cap(area + more_area, min(ratio + more_ratio, 1.0), corner=corner,
                                 fire_resistant_in_fire_district=fire).iloc[0]
    assert bigger["coverage_cap_m2"] >= base["coverage_cap_m2"] * (1 - ROUNDING)
    plain = zoning.coverage_cap(area, ratio).iloc[0]
    assert base["coverage_cap_m2"] >= plain["coverage_cap_m2"] * (1 - ROUNDING)  # bonuses add


@ENVELOPE
@given(area=areas, far=fars, width=widths, kind=kinds, wider=st.floats(0.0, 20.0),
       more_far=st.floats(0.0, 5.0), threshold=st.floats(4.0, 20.0))
def test_road_rule_never_raises_far_and_caps_are_monotone(area, far, width, kind, wider,
                                                          more_far, threshold):
    def cap(w: float, f: float, a: float = area, k: str = kind) -> pd.Series:
        return zoning.far_cap(a, f, w, k, threshold=threshold).iloc[0]

    base = cap(width, far)
    assert base["far_effective"] <= far + 1e-12
    assert base["far_cap_m2"] == pytest.approx(area * base["far_effective"])
    if width >= threshold:
        assert base["far_effective"] == far and base["far_governed_by"] == "designated"
    assert cap(width + wider, far)["far_effective"] >= base["far_effective"] - 1e-12
    assert cap(width, far + more_far)["far_effective"] >= base["far_effective"] - 1e-12
    assert cap(width, far, area * 2)["far_cap_m2"] >= base["far_cap_m2"]
    # the residential multiplier (0.4 / m) is the stricter one
    assert (cap(width, far, k="residential")["far_effective"]
            <= cap(width, far, k="other")["far_effective"] + 1e-12)


def test_no_fronting_road_gives_no_far():
    out = zoning.far_cap(1000.0, 2.0, np.nan, "other").iloc[0]
    assert out["far_governed_by"] == "no_road" and np.isnan(out["far_cap_m2"])


@ENVELOPE
@given(floor=st.floats(100.0, 50_000.0), site=areas, cover=ratios, far=fars,
       need=st.integers(0, 400), stall=st.floats(10.0, 40.0), other=st.floats(0.0, 5000.0),
       top=st.integers(1, 12))
def test_storey_options_invariants(floor, site, cover, far, need, stall, other, top):
    frame = zoning.storey_options(floor, site * cover, site * far, site,
                                  storeys=range(1, top + 1), stall_area=stall,
                                  parking_need=need, other_ground_use=other)
    opts = frame.loc[0]
    k = opts.index.to_numpy()
    assert np.allclose(opts["footprint_m2"] * k, floor)  # footprint x storeys = floor area
    assert (opts["ground_left_m2"] >= 0).all()
    assert (opts["stalls"] * stall <= opts["ground_left_m2"] + 1e-6).all()
    # adding a storey frees ground: what fits keeps fitting, parking never falls
    for col in ("fits_coverage", "fits", "parking_ok", "stalls", "parking_share"):
        values = opts[col].to_numpy(dtype=float)  # parking_share is inf when nothing is needed
        assert (values[1:] >= values[:-1]).all(), col
    assert opts["fits_far"].nunique() == 1  # the floor area does not depend on storeys
    summary = zoning.storey_summary(frame).iloc[0]
    if pd.notna(summary["min_storeys"]):
        assert summary["min_storeys"] == k[opts["fits"].to_numpy()].min()
    else:
        assert not opts["fits"].any()
    if pd.notna(summary["min_storeys_parking"]):
        assert summary["min_storeys_parking"] >= summary["min_storeys"]

# --------------------------------------------------------------------------- zonal statistics


@st.composite
def raster_and_polygon(draw):
    """A small raster (some nodata) and a polygon over, across or beside it."""
    width, height = draw(st.integers(2, 9)), draw(st.integers(2, 9))
    res = draw(st.sampled_from([1.0, 2.5, 5.0, 10.0]))
    x0, y0 = 70_000.0, -100_000.0
    values = draw(st.lists(st.floats(-50.0, 500.0, allow_nan=False, width=32),
                           min_size=width * height, max_size=width * height))
    z = np.array(values, dtype="float32").reshape(height, width)
    holes = np.array(draw(st.lists(st.booleans(), min_size=z.size, max_size=z.size)))
    z[holes.reshape(z.shape) & (draw(st.integers(0, 3)) > 0)] = -9999.0
    # a convex polygon from 3-6 points in and around the raster
    span_x, span_y = width * res, height * res
    coords = draw(st.lists(st.tuples(st.floats(-0.5, 1.5), st.floats(-0.5, 1.5)),
                           min_size=3, max_size=6))
    poly = shapely.MultiPoint([(x0 + u * span_x, y0 - span_y + v * span_y)
                               for u, v in coords]).convex_hull
    assume(poly.geom_type == "Polygon" and poly.area > 0.01 * res * res)
    transform = Affine(res, 0, x0, 0, -res, y0)
    return z, transform, poly


def _write(folder: Path, z: np.ndarray, transform: Affine) -> Path:
    path = folder / "r.tif"
    with rasterio.open(path, "w", driver="GTiff", width=z.shape[1], height=z.shape[0], count=1,
                       dtype="float32", crs=CRS, nodata=-9999.0, transform=transform) as ds:
        ds.write(z, 1)
    return path


def _stats(z, transform, poly, mode, stats):
    with tempfile.TemporaryDirectory() as folder:
        tif = _write(Path(folder), z, transform)
        parcels = gpd.GeoDataFrame(geometry=[poly], index=["P"], crs=CRS)
        return zonal_stats(parcels, {"v": tif}, stats=stats, mode=mode,
                           percentiles=(5.0,)).iloc[0]


@ZONAL
@given(case=raster_and_polygon(), mode=st.sampled_from(["exact", "centre"]))
def test_min_le_mean_le_max(case, mode):
    z, transform, poly = case
    s = _stats(z, transform, poly, mode, ["min", "mean", "max", "count", "area"])
    res = transform.a
    assert s["v_area"] == pytest.approx(s["v_count"] * res * res, rel=1e-9, abs=1e-9)
    if s["v_count"] > 0:
        tol = 1e-4 * max(1.0, abs(s["v_max"]), abs(s["v_min"]))
        assert s["v_min"] - tol <= s["v_mean"] <= s["v_max"] + tol
        assert s["v_min"] - tol <= s["v_p5"] <= s["v_max"] + tol
        valid = z[z != -9999.0]
        assert valid.min() - tol <= s["v_min"] and s["v_max"] <= valid.max() + tol
    else:
        assert np.isnan(s["v_mean"])


@ZONAL
@given(case=raster_and_polygon())
def test_exact_coverage_equals_the_polygon_area_inside_the_raster(case):
    z, transform, poly = case
    s = _stats(z, transform, poly, "exact", ["count", "nodata"])
    res = transform.a
    extent = shapely.box(transform.c, transform.f + transform.e * z.shape[0],
                         transform.c + transform.a * z.shape[1], transform.f)
    inside = poly.intersection(extent).area
    covered = (s["v_count"] + s["v_nodata"]) * res * res
    assert covered == pytest.approx(inside, rel=1e-6, abs=1e-6 * res * res)


@ZONAL
@given(case=raster_and_polygon())
def test_centre_mode_counts_whole_pixels_the_polygon_touches(case):
    z, transform, poly = case
    s = _stats(z, transform, poly, "centre", ["count", "nodata"])
    assert float(s["v_count"]).is_integer() and float(s["v_nodata"]).is_integer()
    touched = _stats(z, transform, poly, "all_touched", ["count", "nodata"])
    assert s["v_count"] + s["v_nodata"] <= touched["v_count"] + touched["v_nodata"]
