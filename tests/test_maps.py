"""The maps stage without a browser: the map builder, escaping, raster overlays, the demo run."""

from __future__ import annotations

import base64
import io
import math
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
from affine import Affine
from PIL import Image
from pyproj import Transformer
from rasterio.warp import transform_bounds
from shapely.geometry import LineString, Point, box

from pipeline.config import Criterion, Scenario, load_study
from pipeline.maps import (
    DEPTH_COLOURS,
    LEVEL_COLOURS,
    MapImage,
    depth_classes,
    depth_image,
    hillshade_image,
    key_metrics,
    map_from_frames,
    profile_svg,
    scenario_levels,
)
from pipeline.offline import escape_html, save_offline
from pipeline.qgis import MARK_COLOURS

CRS = "EPSG:6681"
X0, Y0 = 69340.0, -102535.0  # the demo grid's south-west corner
HOSTILE = "<script>alert(1)</script>"
NASTY = [HOSTILE, "<img src=x onerror=alert(2)>", "${alert(3)} `tick`", "C:\\users & 'q'"]
CRITERIA = (
    Criterion(metric="tsunami_margin", thresholds=(1.0, 0.5, 0.3), label="Height above tsunami",
              label_ja="津波に対する高さ", veto=True),
    Criterion(metric="site_area", thresholds=(17000.0, 12000.0, 8000.0)),
)
SCENARIOS = (Scenario(name="tsunami", kind="tsunami", label="Design tsunami (L2)", runup=13.9),)
REMOTE_TAG = re.compile(
    r"""<(?:script|link)\b[^>]*\b(?:src|href)\s*=\s*["']?(?:https?:)?//""", re.IGNORECASE)


def _raster(path: Path, values: np.ndarray, *, cell: float = 5.0) -> Path:
    with rasterio.open(path, "w", driver="GTiff", width=values.shape[1], height=values.shape[0],
                       count=1, dtype="float32", crs=CRS, nodata=-9999,
                       transform=Affine(cell, 0, X0, 0, -cell, Y0 + cell * values.shape[0])) as ds:
        ds.write(values.astype("float32")[None])
    return path


def _sites(names: list[str] | None = None) -> gpd.GeoDataFrame:
    names = names or ["Bluff", "Hilltop", "Spa", "Riverside"]
    cells = [box(X0 + 100 + 150 * i, Y0 + 100, X0 + 200 + 150 * i, Y0 + 200)
             for i in range(len(names))]
    n = len(names)
    return gpd.GeoDataFrame({
        "name": names, "name_ja": [f"候補地{i}" for i in range(n)],
        "ground_min": np.linspace(16.0, 45.0, n), "tsunami_margin": np.linspace(2.1, 31.1, n),
        "tsunami_level": 13.9, "site_area": np.linspace(8000.0, 18700.0, n),
        "mark_tsunami_margin": ["◎"] * n, "mark_site_area": (["×", "○", "◎", "△"] * n)[:n],
        "overall": (["×", "◎", "△", "○"] * n)[:n], "rank": list(range(1, n + 1)),
    }, geometry=cells, index=pd.Index([f"S{i}" for i in range(n)], name="site_id"), crs=CRS)


def _frames(sites: gpd.GeoDataFrame) -> dict[str, Any]:
    centre = Point(X0 + 50, Y0 + 20)
    routes = gpd.GeoDataFrame(
        {"site_id": list(sites.index) * 2,
         "kind": ["from_centre"] * len(sites) + ["from_street"] * len(sites)},
        geometry=[LineString([centre, g.centroid]) for g in sites.geometry] * 2, crs=CRS)
    isochrones = gpd.GeoDataFrame(
        {"site_id": [sites.index[0]] * 2, "minutes": [5.0, 10.0]},
        geometry=[sites.geometry.iloc[0].buffer(50), sites.geometry.iloc[0].buffer(120)], crs=CRS)
    profiles = pd.DataFrame({"site_id": sites.index[1], "kind": "from_centre",
                             "distance_m": [0.0, 100.0, 200.0], "elevation_m": [3.2, 20.0, 42.0]})
    roads = gpd.GeoDataFrame({"name": ["中央通り", "<b>bold</b>"], "width": [10.0, 4.0]},
                             geometry=[LineString([(X0, Y0 + 30), (X0 + 800, Y0 + 30)]),
                                       LineString([(X0 + 60, Y0), (X0 + 60, Y0 + 300)])], crs=CRS)
    poi = gpd.GeoDataFrame({"name": ["Town centre", NASTY[1]], "kind": ["town_centre", "shelter"],
                            "capacity": [0, 500]}, geometry=[centre, Point(X0 + 300, Y0 + 260)],
                           crs=CRS)
    return {"routes": routes, "isochrones": isochrones, "profiles": profiles, "roads": roads,
            "poi": poi}


@pytest.fixture(scope="module")
def rasters(tmp_path_factory: pytest.TempPathFactory) -> list[MapImage]:
    folder = tmp_path_factory.mktemp("rasters")
    yy, xx = np.mgrid[0:80, 0:160]
    dem = _raster(folder / "dem.tif", 2.0 + 0.3 * yy + 5 * np.sin(xx / 9.0))
    depth = np.where(yy > 50, 13.9 - (80 - yy) * 0.3, 0.0)
    tif = _raster(folder / "depth.tif", depth)
    return [hillshade_image(dem, name="Hillshade"), depth_image(tif, name=NASTY[2])]


# --------------------------------------------------------------------------- the builder


def test_map_from_small_frames_has_every_layer_and_legend(rasters: list[MapImage]) -> None:
    sites = _sites()
    m = map_from_frames(sites, rasters=rasters, criteria=CRITERIA, scenarios=SCENARIOS,
                        title="Test <town>", **_frames(sites))
    html = m.get_root().render()
    for name in ("Hillshade", escape_html(NASTY[2]), "Walking isochrones (5/10 min)", "Roads",
                 "Access routes", "Candidate sites (overall mark)", "Town centre and shelters"):
        assert json_str(name) in html, name
    assert html.count("L.imageOverlay(") == 2
    assert "L.control.scale(" in html and "L.control.layers(" in html
    assert '<div class="siteplan-title" id="siteplan-title">Test &lt;town&gt;</div>' in html
    for mark, colour in MARK_COLOURS.items():
        if mark != "—":
            assert f"background:{colour}" in html
    for colour in DEPTH_COLOURS:
        assert colour in html
    assert html.count("L.circleMarker(") == 2 and "L.AwesomeMarkers" not in html


def json_str(text: str) -> str:
    """``text`` as jinja's ``tojson`` writes it inside the page (``< > & '`` as \\u escapes)."""
    import json

    out = json.dumps(text)[1:-1]
    for ch, code in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("'", "\\u0027")):
        out = out.replace(ch, code)
    return out


def _geojson(m: Any, name: str) -> dict[str, Any]:
    layers = [c for c in m._children.values() if type(c).__name__ == "GeoJson"
              and c.layer_name == name]
    assert len(layers) == 1, name
    return layers[0].data


def test_popup_properties_carry_metrics_marks_and_profile(rasters: list[MapImage]) -> None:
    sites = _sites()
    m = map_from_frames(sites, criteria=CRITERIA, scenarios=SCENARIOS, **_frames(sites))
    features = _geojson(m, "Candidate sites (overall mark)")["features"]
    props = {f["id"]: f["properties"] for f in features}
    assert list(props) == list(sites.index)
    hill = props["S1"]
    # rows: lowest ground, then each criterion, with unit and mark
    assert [hill[k] for k in ("v0", "v1", "m1", "v2", "m2")] == \
        ["25.7 m T.P.", "11.8 m", "◎", "11,567 m²", "○"]
    assert hill["overall"] == "◎" and hill["rank"] == "2"
    assert hill["profile"].startswith("<svg") and "13.9 m" in hill["profile"]
    assert props["S0"]["profile"] == ""  # no profile for that site
    popup = [c for c in m._children.values() if type(c).__name__ == "GeoJson"][-1]
    script = popup.get_root().render()
    assert json_str("Height above tsunami") in script and json_str("Lowest ground") in script


def test_japanese_labels_and_names() -> None:
    sites = _sites()
    m = map_from_frames(sites, criteria=CRITERIA, scenarios=SCENARIOS, lang="ja")
    props = _geojson(m, "候補地（総合評価）")["features"][0]["properties"]
    assert props["name"] == "候補地0"
    assert key_metrics(list(sites.columns), CRITERIA, lang="ja")[1] == \
        ("tsunami_margin", "津波に対する高さ")
    assert json_str("最低地盤高") in m.get_root().render()


def test_html_has_no_remote_script_or_link(tmp_path: Path, rasters: list[MapImage]) -> None:
    sites = _sites()
    m = map_from_frames(sites, rasters=rasters, criteria=CRITERIA, scenarios=SCENARIOS,
                        **_frames(sites))
    text = save_offline(m, tmp_path / "index.html").read_text(encoding="utf-8")
    assert REMOTE_TAG.search(text) is None
    assert "Leaflet 1.9.3" in text and "data:image/png;base64," in text
    # tile templates stay for switching basemaps with internet, but none is added at load
    assert "cyberjapandata.gsi.go.jp" in text
    assert not re.search(r"tile_layer_\w+\.addTo\(", text)


def test_online_map_shows_gsi_pale_tiles_and_keeps_the_hillshade(
        rasters: list[MapImage]) -> None:
    m = map_from_frames(_sites(), rasters=rasters, offline=False)
    html = m.get_root().render()
    assert re.search(r"tile_layer_\w+\.addTo\(", html)
    assert json_str("Hillshade") in html


def test_every_attribute_is_escaped_exactly_once(rasters: list[MapImage]) -> None:
    sites = _sites(NASTY)
    scenarios = (Scenario(name="tsunami", kind="tsunami", label=NASTY[1], runup=13.9),)
    frames = _frames(sites)
    frames["profiles"]["site_id"] = sites.index[0]
    m = map_from_frames(sites, rasters=rasters, criteria=CRITERIA, scenarios=scenarios,
                        title=NASTY[0], **frames)
    html = m.get_root().render()
    props = [f["properties"] for f in _geojson(m, "Candidate sites (overall mark)")["features"]]
    assert [p["name"] for p in props] == [escape_html(n) for n in NASTY]
    assert escape_html(NASTY[1]) + ": 13.9 m" in props[0]["profile"]
    for nasty in NASTY:  # never raw, never twice
        assert nasty not in html
        assert escape_html(escape_html(nasty)) not in html.replace("\\u0026", "&")
    labels = _geojson(m, "Roads")["features"]
    assert [f["properties"]["label"] for f in labels] == ["中央通り", "&lt;b&gt;bold&lt;/b&gt;"]
    assert "<script>alert" not in html and "<img src=x" not in html
    assert "${alert" not in html and "`tick`" not in html


# --------------------------------------------------------------------------- rasters


def test_depth_ranks_follow_the_national_legend() -> None:
    depth = np.array([np.nan, 0.0, 0.005, 0.2, 0.3, 0.49, 0.5, 2.9, 3.0, 9.9, 13.9, 20.0, 31.0])
    assert depth_classes(depth, wet_threshold=0.01).tolist() == \
        [0, 0, 0, 1, 2, 2, 3, 4, 5, 6, 7, 8, 8]


def _decode(image: MapImage) -> np.ndarray:
    data = base64.b64decode(image.url.split(",", 1)[1])
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGBA"))


def _pixel(image: MapImage, rgba: np.ndarray, lon: float, lat: float) -> np.ndarray:
    """The pixel of a Web Mercator image under ``lon, lat``."""
    merc = Transformer.from_crs("EPSG:4326", "EPSG:3857", always_xy=True)
    (south, west), (north, east) = image.bounds
    (left, bottom), (right, top) = merc.transform(west, south), merc.transform(east, north)
    x, y = merc.transform(lon, lat)
    col = int((x - left) / (right - left) * rgba.shape[1])
    row = int((top - y) / (top - bottom) * rgba.shape[0])
    return rgba[row, col]


def test_depth_overlay_bounds_and_pixels_line_up_in_lat_lon(tmp_path: Path) -> None:
    depth = np.zeros((200, 300))
    depth[40:60, 200:230] = 13.9  # a wet block, 10-20 m rank
    depth[150:, :] = -9999  # no data (sea)
    tif = _raster(tmp_path / "depth.tif", depth)
    image = depth_image(tif, name="Tsunami", wet_threshold=0.01)
    (south, west), (north, east) = image.bounds
    with rasterio.open(tif) as ds:
        w, s, e, n = transform_bounds(ds.crs, "EPSG:4326", *ds.bounds, densify_pts=21)
        cell_deg = 5.0 / 111_000 * 1.5
    assert abs(west - w) < cell_deg and abs(east - e) < cell_deg
    assert abs(south - s) < cell_deg and abs(north - n) < cell_deg
    rgba = _decode(image)
    to_lonlat = Transformer.from_crs(CRS, "EPSG:4326", always_xy=True)
    wet = to_lonlat.transform(X0 + 5 * 215, Y0 + 1000 - 5 * 50)
    dry = to_lonlat.transform(X0 + 5 * 100, Y0 + 1000 - 5 * 100)
    sea = to_lonlat.transform(X0 + 5 * 100, Y0 + 1000 - 5 * 175)
    assert tuple(_pixel(image, rgba, *wet)) == (0xF2, 0x85, 0xC9, 255)  # 10-20 m colour
    assert _pixel(image, rgba, *dry)[3] == 0 and _pixel(image, rgba, *sea)[3] == 0


def test_large_rasters_are_downsampled(tmp_path: Path) -> None:
    tif = _raster(tmp_path / "big.tif", np.full((600, 2400), 1.0), cell=1.0)
    image = depth_image(tif, name="big", max_size=256)
    assert max(_decode(image).shape[:2]) <= 256
    shade = hillshade_image(tif, name="dem", max_size=256)
    assert max(_decode(shade).shape[:2]) <= 256 and shade.kind == "hillshade"


# --------------------------------------------------------------------------- popup chart


def test_profile_svg_draws_the_ground_and_each_design_level() -> None:
    svg = profile_svg([0, 400, 800], [3.2, 20.0, 43.8],
                      levels=[("Tsunami", 13.9), ("Flood", float("nan")), ("Max", 7.2)])
    root = ET.fromstring(svg)
    ns = "{http://www.w3.org/2000/svg}"
    dashed = [el for el in root.iter(f"{ns}line") if el.get("stroke-dasharray")]
    assert [el.get("stroke") for el in dashed] == [LEVEL_COLOURS[0], LEVEL_COLOURS[2]]
    ys = {el.get("stroke"): float(el.get("y1")) for el in dashed}
    assert ys[LEVEL_COLOURS[0]] < ys[LEVEL_COLOURS[2]]  # 13.9 m is drawn above 7.2 m
    ground = root.find(f"{ns}polyline").get("points").split()
    assert len(ground) == 3
    texts = "".join(root.itertext())
    assert "Tsunami: 13.9 m" in texts and "Max: 7.2 m" in texts and "Flood" not in texts


def test_scenario_levels_keep_study_order_with_gaps() -> None:
    sites = pd.DataFrame({"tsunami_level": [13.9, 13.9], "flood_level": [np.nan, 5.2]},
                         index=["S2", "S4"])
    scenarios = SCENARIOS + (Scenario(name="flood", kind="flood", label="River (L1)",
                                      depth=Path("f.tif")),)
    levels = scenario_levels(sites, scenarios)
    assert levels["S4"] == [("Design tsunami", 13.9), ("River", 5.2)]
    assert math.isnan(levels["S2"][1][1])


# --------------------------------------------------------------------------- the demo study


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, dict[str, Path]]:
    from pipeline.demo import write_demo_study
    from pipeline.runner import Runner
    from pipeline.stages import STAGES

    study = load_study(write_demo_study(tmp_path_factory.mktemp("demo") / "study"))
    results = Runner(study, STAGES).run(list(STAGES))
    return study, dict(results[-1].outputs)


def test_demo_study_writes_a_small_offline_map_and_both_figures(
        demo: tuple[Any, dict[str, Path]]) -> None:
    study, outputs = demo
    assert set(outputs) == {"map", "overlay", "profiles"}
    html = outputs["map"].read_text(encoding="utf-8")
    assert outputs["map"] == study.output / "index.html"
    assert outputs["map"].stat().st_size < 3_000_000
    assert REMOTE_TAG.search(html) is None
    assert html.count("L.imageOverlay(") == 4  # hillshade + three depth rasters
    assert json_str("Site 2: hilltop") in html and "28.1 m" in html
    for key, name in (("overlay", "overlay.png"), ("profiles", "profiles.png")):
        assert outputs[key] == study.output / "figures" / name
        with Image.open(outputs[key]) as png:
            assert png.format == "PNG" and min(png.size) > 700


def test_demo_stage_reruns_only_when_forced(demo: tuple[Any, dict[str, Path]]) -> None:
    from pipeline.runner import Options, Runner
    from pipeline.stages import STAGES

    study, outputs = demo
    before = outputs["map"].stat().st_mtime_ns
    again = Runner(study, STAGES).run(["maps"])
    assert [r.ran for r in again] == [False] * len(again)
    forced = Runner(study, STAGES, Options(force=True, lang="ja")).run(["maps"])
    assert forced[-1].ran and "index.html" in forced[-1].summary
    html = outputs["map"].read_text(encoding="utf-8")
    assert json_str("候補地2") in html and outputs["map"].stat().st_mtime_ns >= before
