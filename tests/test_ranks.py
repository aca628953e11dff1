"""Depth-rank polygons (A31 flood, A40 tsunami) with areas worked out by hand."""

from __future__ import annotations

import math
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
from shapely.geometry import box

from pipeline.errors import CRSError, LayerError
from pipeline.ranks import depth_intervals_from_ranks, depth_stats_from_polygons, parse_depth_text
from pipeline.zonal import JAPAN_DEPTH_BREAKS

CRS = "EPSG:6677"


def ranks(column: str, values: list[object], geoms: list[object] | None = None,
          crs: str = CRS) -> gpd.GeoDataFrame:
    geoms = geoms or [box(i, 0, i + 1, 1) for i in range(len(values))]
    return gpd.GeoDataFrame({column: values}, geometry=geoms, crs=crs)


# --- rank -> interval --------------------------------------------------------------

def test_a31_current_codes() -> None:
    out = depth_intervals_from_ranks(ranks("A31a_205", [1, 2, 3, 4, 5, 6]))
    assert out["depth_min"].tolist() == [0.0, 0.5, 3.0, 5.0, 10.0, 20.0]
    assert out["depth_max"].tolist() == [0.5, 3.0, 5.0, 10.0, 20.0, math.inf]
    assert out["depth_rank"].tolist() == ["1", "2", "3", "4", "5", "6"]


def test_a31_codes_as_text_and_legacy_codes() -> None:
    out = depth_intervals_from_ranks(ranks("A31_205", ["2", "6"]))
    assert out["depth_max"].tolist() == [3.0, math.inf]
    old = depth_intervals_from_ranks(ranks("A31_001", [13, 14, 24, 27]))
    assert old[["depth_min", "depth_max"]].to_numpy().tolist() == [
        [1.0, 2.0], [2.0, 5.0], [2.0, 3.0], [5.0, math.inf]]


def test_open_upper_cap() -> None:
    out = depth_intervals_from_ranks(ranks("A31a_205", [5, 6]), open_upper=30.0)
    assert out["depth_max"].tolist() == [20.0, 30.0]
    with pytest.raises(LayerError, match="not above the open rank's lower bound 20"):
        depth_intervals_from_ranks(ranks("A31a_205", [6]), open_upper=15.0)


@pytest.mark.parametrize(("text", "interval"), [
    ("0.3m未満", (0.0, 0.3)),
    ("0.3m以上0.5m未満", (0.3, 0.5)),
    ("1m以上2m未満", (1.0, 2.0)),
    ("10.0m以上20.0m未満", (10.0, 20.0)),
    ("20m以上", (20.0, math.inf)),
    ("０．５ｍ以上１．０ｍ未満", (0.5, 1.0)),
    ("0.5～3.0m", (0.5, 3.0)),
    ("5.0m~", (5.0, math.inf)),
    ("30cm以上50cm未満", (0.3, 0.5)),
    ("2m超5m以下", (2.0, 5.0)),
])
def test_a40_texts(text: str, interval: tuple[float, float]) -> None:
    assert parse_depth_text(text) == pytest.approx(interval)


def test_a40_auto_and_bad_values() -> None:
    out = depth_intervals_from_ranks(ranks("A40_003", ["0.3m未満", "1m以上2m未満", "20m以上"]))
    assert out["depth_max"].tolist() == [0.3, 2.0, math.inf]
    with pytest.raises(LayerError, match=r"no A40 depth rank: \['不明', '浸水なし'\]"):
        depth_intervals_from_ranks(ranks("A40_003", ["1m以上2m未満", "浸水なし", "不明"]))
    with pytest.raises(LayerError, match=r"no A31 depth rank: \['9'\].*codes 1-6"):
        depth_intervals_from_ranks(ranks("A31a_205", [1, 9]))


def test_missing_column_and_values() -> None:
    with pytest.raises(LayerError, match="no rank column"):
        depth_intervals_from_ranks(ranks("rank", [1]))
    with pytest.raises(LayerError, match="1 polygons have no A31a_205"):
        depth_intervals_from_ranks(ranks("A31a_205", [1.0, None]))
    assert depth_intervals_from_ranks(ranks("rank", [2]), column="rank", scheme="A31")[
        "depth_max"].tolist() == [3.0]


# --- parcels over rank polygons ------------------------------------------------------

@pytest.fixture
def flood() -> gpd.GeoDataFrame:
    """Rank 1 (< 0.5 m) over x 0-5, rank 2 (0.5-3 m) over x 5-15, rank 3 (3-5 m) over
    x 12-20, overlapping rank 2 on x 12-15 (the deeper rank wins there)."""
    return depth_intervals_from_ranks(ranks("A31a_205", [1, 2, 3], [
        box(0, -50, 5, 50), box(5, -50, 15, 50), box(12, -50, 20, 50)]))


def test_stats_by_hand(flood: gpd.GeoDataFrame) -> None:
    parcels = gpd.GeoDataFrame(geometry=[box(0, 0, 30, 10), box(100, 0, 110, 10),
                                         box(2, 0, 7, 10)], index=["a", "dry", "b"], crs=CRS)
    out = depth_stats_from_polygons(parcels, flood, classes=JAPAN_DEPTH_BREAKS,
                                    wet_threshold=0.0, key="river")
    a = out.loc["a"]  # 300 m2: 50 m2 rank 1, 70 m2 rank 2 (x 5-12), 80 m2 rank 3, 100 m2 dry
    assert (a["river_max"], a["river_max_lower"]) == (5.0, 3.0)
    assert a["river_mean"] == pytest.approx((50 * 0.5 + 70 * 3.0 + 80 * 5.0) / 300)
    assert a["river_wet_area"] == pytest.approx(200.0)
    assert a["river_wet_share"] == pytest.approx(200 / 300)
    assert a["river_area_0.3_0.5"] == pytest.approx(50.0)  # upper bound 0.5 -> class 0.3-0.5
    assert a["river_area_1_3"] == pytest.approx(70.0)
    assert a["river_area_3_5"] == pytest.approx(80.0)
    assert a["river_area_0_0.3"] == 0.0 and a["river_area_20_inf"] == 0.0
    assert bool(a["river_from_rank"])
    dry = out.loc["dry"]
    assert (dry["river_max"], dry["river_mean"], dry["river_wet_share"]) == (0.0, 0.0, 0.0)
    b = out.loc["b"]  # 50 m2: 30 m2 rank 1, 20 m2 rank 2
    assert b["river_mean"] == pytest.approx((30 * 0.5 + 20 * 3.0) / 50)
    assert out.index.tolist() == ["a", "dry", "b"]


def test_wet_threshold_uses_upper_bounds(flood: gpd.GeoDataFrame) -> None:
    parcels = gpd.GeoDataFrame(geometry=[box(0, 0, 10, 10)], crs=CRS)  # 50 rank 1, 50 rank 2
    out = depth_stats_from_polygons(parcels, flood, classes=[0.5, 3.0], wet_threshold=0.5)
    assert out["depth_wet_area"].iloc[0] == pytest.approx(50.0)  # rank 1 tops out at 0.5
    assert out["depth_area_0.5_3"].iloc[0] == pytest.approx(50.0)
    assert out["depth_area_0_0.5"].iloc[0] == 0.0


def test_open_rank_makes_mean_infinite() -> None:
    deep = depth_intervals_from_ranks(ranks("A40_003", ["20m以上"], [box(0, 0, 5, 10)]))
    parcels = gpd.GeoDataFrame(geometry=[box(0, 0, 10, 10)], crs=CRS)
    out = depth_stats_from_polygons(parcels, deep)
    assert math.isinf(out["depth_max"].iloc[0]) and math.isinf(out["depth_mean"].iloc[0])
    assert out["depth_area_20_inf"].iloc[0] == pytest.approx(50.0)


def test_crs_contract(flood: gpd.GeoDataFrame) -> None:
    parcels = gpd.GeoDataFrame(geometry=[box(0, 0, 10, 10)], crs="EPSG:6678")
    with pytest.raises(CRSError, match=r"EPSG:6677.*EPSG:6678"):
        depth_stats_from_polygons(parcels, flood)
    ll = gpd.GeoDataFrame(geometry=[box(0, 0, 1, 1)], crs="EPSG:4326")
    with pytest.raises(CRSError, match="not a projected CRS in metres"):
        depth_stats_from_polygons(ll, flood.to_crs("EPSG:4326"))
    with pytest.raises(LayerError, match="run depth_intervals_from_ranks"):
        depth_stats_from_polygons(gpd.GeoDataFrame(geometry=[box(0, 0, 1, 1)], crs=CRS),
                                  ranks("A31a_205", [1]))


def test_same_columns_as_a_depth_raster(flood: gpd.GeoDataFrame, tmp_path: Path) -> None:
    import rasterio
    from affine import Affine

    from pipeline.zonal import zonal_stats

    tif = tmp_path / "d.tif"
    with rasterio.open(tif, "w", driver="GTiff", width=2, height=2, count=1, dtype="float32",
                       crs=CRS, transform=Affine(10, 0, 0, 0, -10, 20)) as ds:
        ds.write(np.full((1, 2, 2), 1.0, "float32"))
    parcels = gpd.GeoDataFrame(geometry=[box(0, 0, 10, 10)], crs=CRS)
    raster = zonal_stats(parcels, {"flood": tif}, stats=["max", "mean"],
                         classes={"flood": JAPAN_DEPTH_BREAKS}, wet_threshold={"flood": 0.0})
    poly = depth_stats_from_polygons(parcels, flood, key="flood")
    assert set(raster.columns) <= set(poly.columns)
