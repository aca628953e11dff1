"""Static figures (matplotlib, Agg): the site overlay and the elevation profiles."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
from affine import Affine
from matplotlib.colors import to_hex
from matplotlib.lines import Line2D
from PIL import Image
from shapely.geometry import LineString, Point, box

from pipeline import figures
from pipeline.config import Scenario
from pipeline.maps import DEPTH_COLOURS, LEVEL_COLOURS, scenario_levels
from pipeline.qgis import MARK_COLOURS

CRS = "EPSG:6681"
X0, Y0 = 69340.0, -102535.0
SCENARIOS = (
    Scenario(name="tsunami", kind="tsunami", label="Design tsunami (L2)", runup=13.9),
    Scenario(name="flood", kind="flood", label="River flood (L1)", depth=Path("f.tif")),
)


def _sites(names: list[str] | None = None) -> gpd.GeoDataFrame:
    names = names or ["Bluff", "Hilltop", "Spa"]
    n = len(names)
    return gpd.GeoDataFrame(
        {"name": names, "name_ja": [f"候補地{i}" for i in range(n)],
         "overall": (["×", "◎", "△"] * n)[:n], "tsunami_level": 13.9,
         "flood_level": [np.nan, 5.2, np.nan][:n] + [np.nan] * max(0, n - 3)},
        geometry=[box(X0 + 200 * i, Y0, X0 + 200 * i + 100, Y0 + 100) for i in range(n)],
        index=pd.Index([f"S{i}" for i in range(n)], name="site_id"), crs=CRS)


def _profiles(sites: gpd.GeoDataFrame) -> pd.DataFrame:
    return pd.concat([pd.DataFrame({"site_id": site, "kind": kind, "distance_m": [0, 300, 600],
                                    "elevation_m": [3.2, 10 + i, 20 + 10 * i]})
                      for i, site in enumerate(sites.index)
                      for kind in ("from_centre", "from_street")], ignore_index=True)


def _grid(values: np.ndarray) -> tuple[np.ndarray, tuple[float, float, float, float]]:
    h, w = values.shape
    return values, (X0 - 100, X0 - 100 + 5 * w, Y0 - 100, Y0 - 100 + 5 * h)


def _texts(fig: Any) -> list[str]:
    return [t.get_text() for t in fig.findobj(match=lambda a: hasattr(a, "get_text"))]


def test_overlay_has_marks_depth_legend_north_arrow_and_scale(tmp_path: Path) -> None:
    sites = _sites()
    depth = np.zeros((60, 140))
    depth[:20] = 13.9
    roads = gpd.GeoDataFrame({"width": [10.0]}, geometry=[LineString([(X0, Y0 - 50),
                                                                      (X0 + 600, Y0 - 50)])],
                             crs=CRS)
    routes = gpd.GeoDataFrame({"site_id": ["S1"], "kind": ["from_centre"]},
                              geometry=[LineString([(X0, Y0 - 50), (X0 + 250, Y0)])], crs=CRS)
    poi = gpd.GeoDataFrame({"name": ["Centre"], "kind": ["town_centre"]},
                           geometry=[Point(X0, Y0 - 50)], crs=CRS)
    fig = figures.overlay_figure(
        sites, dem=_grid(np.linspace(0, 50, 60 * 140).reshape(60, 140)), depth=_grid(depth),
        depth_name="Design tsunami", roads=roads, routes=routes, poi=poi, title="Demo")
    ax = fig.axes[0]
    texts = _texts(fig)
    assert "N" in texts and "m" in texts  # north arrow, scale bar unit
    assert {"◎ best", "○ acceptable", "△ weak", "× unacceptable"} <= set(texts)
    assert {"< 0.3 m", "10–20 m", "≥ 20 m"} <= set(texts)
    assert any("Design tsunami" in t for t in texts) and any(t.startswith("Demo") for t in texts)
    assert {"× Bluff", "◎ Hilltop", "△ Spa"} <= set(texts)  # parcel labels
    legend_colours = [to_hex(h.get_facecolor()) for lg in ax.get_children()
                      if type(lg).__name__ == "Legend" for h in lg.legend_handles
                      if hasattr(h, "get_facecolor") and not isinstance(h, Line2D)]
    assert [MARK_COLOURS[m] for m in "◎○△×"] == legend_colours[:4]
    assert list(DEPTH_COLOURS) == legend_colours[4:]
    x0, x1 = ax.get_xlim()
    assert x0 < X0 < X0 + 500 < x1  # metric axes in the sites' CRS
    out = figures.save_png(fig, tmp_path / "figures" / "overlay.png")
    with Image.open(out) as png:
        assert png.format == "PNG" and png.size[0] >= 1500
    assert [p.name for p in out.parent.iterdir()] == ["overlay.png"]  # no temporary left


def test_profiles_have_one_panel_per_site_and_every_design_level() -> None:
    sites = _sites()
    levels = scenario_levels(sites, SCENARIOS)
    fig = figures.profiles_figure(_profiles(sites), sites, levels=levels, title="Demo")
    panels = [ax for ax in fig.axes if ax.get_visible()]
    assert len(panels) == 3
    for ax, site in zip(panels, sites.index):
        lines = [ln for ln in ax.get_lines() if ln.get_linestyle() == "--"]
        assert [ln.get_ydata()[0] for ln in lines] == \
            [level for _, level in levels[site] if np.isfinite(level)]
        assert ax.get_title().startswith(site)
        assert ax.get_xlim()[1] == 600  # the from_centre profile, in metres
    hill = [ln for ln in panels[1].get_lines() if ln.get_linestyle() == "--"]
    assert [to_hex(ln.get_color()) for ln in hill] == [LEVEL_COLOURS[0], LEVEL_COLOURS[1]]
    texts = _texts(fig)
    assert "Design tsunami: 13.9 m" in texts and "River flood: 5.2 m" in texts
    assert "Elevation (m T.P.)" in texts and "Distance along the route (m)" in texts


def test_a_site_without_a_route_gets_an_empty_panel() -> None:
    sites = _sites()
    profiles = _profiles(sites)
    fig = figures.profiles_figure(profiles[profiles["site_id"] != "S2"], sites,
                                  levels=scenario_levels(sites, SCENARIOS))
    assert "no route" in _texts(fig)


def test_figures_fall_back_to_english_without_a_cjk_font(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(figures, "cjk_font", lambda: None)
    assert figures.figure_lang("ja") == "en"
    sites = _sites(["候補地 A", "Hill"])
    fig = figures.overlay_figure(sites, title="高台移転", lang="ja")
    texts = _texts(fig)
    assert any("Candidate sites" in t for t in texts)
    assert not any("候補地 A" in t or "高台移転" in t for t in texts)
    assert "× S0" in texts  # a name the fonts cannot draw falls back to the site id
    figures.save_png(fig, tmp_path / "overlay.png")  # no missing-glyph warning (an error here)
    chart = figures.profiles_figure(_profiles(sites), sites, title="高台移転", lang="ja",
                                    levels=scenario_levels(sites, SCENARIOS))
    figures.save_png(chart, tmp_path / "profiles.png")


@pytest.mark.skipif(figures.cjk_font() is None, reason="no Japanese font (fc-list :lang=ja)")
def test_figures_in_japanese_with_a_cjk_font(tmp_path: Path) -> None:
    sites = _sites()
    fig = figures.profiles_figure(_profiles(sites), sites, title="高台移転", lang="ja",
                                  levels=scenario_levels(sites, SCENARIOS))
    texts = _texts(fig)
    assert any("候補地1" in t for t in texts) and "標高 (m T.P.)" in texts
    assert any(t.startswith("高台移転") for t in texts)
    overlay = figures.overlay_figure(sites, title="高台移転", lang="ja")
    assert "◎ 適切" in _texts(overlay)
    for name, f in (("profiles.png", fig), ("overlay.png", overlay)):
        with Image.open(figures.save_png(f, tmp_path / name)) as png:
            assert png.size[0] > 1000


def test_read_grid_decimates_and_keeps_the_extent(tmp_path: Path) -> None:
    path = tmp_path / "dem.tif"
    with rasterio.open(path, "w", driver="GTiff", width=400, height=200, count=1,
                       dtype="float32", crs=CRS, nodata=-9999,
                       transform=Affine(5, 0, X0, 0, -5, Y0 + 1000)) as ds:
        data = np.ones((1, 200, 400), "float32")
        data[0, :, :10] = -9999
        ds.write(data)
    values, extent = figures.read_grid(path, max_size=100)
    assert values.shape == (50, 100)
    assert extent == (X0, X0 + 2000, Y0, Y0 + 1000)
    assert np.isnan(values[:, 0]).all() and np.nanmax(values) == 1.0
