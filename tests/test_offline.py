"""Offline, self-contained map pages: assets inlined, no request, escaped attributes."""

from __future__ import annotations

import json
import re
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import folium
import geopandas as gpd
import numpy as np
import pytest
from branca.colormap import StepColormap
from branca.element import MacroElement
from browser import chromium_available, load_time_ms, open_page, screenshot, wait_for_leaflet
from folium.plugins import MeasureControl
from jinja2 import Template
from shapely.geometry import LineString, box

from pipeline.errors import OutputError
from pipeline.offline import (
    GSI_ATTRIBUTION,
    add_basemaps,
    escape_columns,
    escape_html,
    inline_assets,
    offline_assets,
    save_offline,
)

NASTY = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(2)>",
    "${alert(3)} `tick`",
    "C:\\users\\u0041 & 'quote'",
]
NAMES = ["高台 Hilltop", *NASTY]
MARKS = ["◎", "×", "△", "○", "◎"]
COLOURS = {"◎": "#1a9641", "○": "#a6d96a", "△": "#fdae61", "×": "#d7191c"}
LEGEND_HTML = """
{% macro html(this, kwargs) %}
<div id="siteplan-legend" style="position: fixed; bottom: 40px; right: 10px; z-index: 1000;
     background: white; padding: 6px 10px; border: 1px solid #888; border-radius: 4px;
     font: 14px sans-serif;">
  <b>総合評価 Overall</b><br>
  {% for mark, colour in this.colours.items() %}
  <span style="display:inline-block;width:14px;height:14px;background:{{ colour }};"></span>
  {{ mark }}<br>
  {% endfor %}
</div>
{% endmacro %}
"""


def _parcels() -> gpd.GeoDataFrame:
    lon0, lat0, size = 141.50, 38.90, 0.004
    cells = [box(lon0 + i * 0.006, lat0, lon0 + i * 0.006 + size, lat0 + size) for i in range(5)]
    return gpd.GeoDataFrame(
        {"name": NAMES, "mark": MARKS, "margin_m": [12.5, -3.0, 1.5, 4.0, 9.0]},
        geometry=cells,
        crs="EPSG:4326",
    )


def _roads() -> gpd.GeoDataFrame:
    lines = [
        LineString([(141.495, 38.899), (141.53, 38.899)]),
        LineString([(141.495, 38.906), (141.53, 38.906)]),
    ]
    return gpd.GeoDataFrame({"road": ["県道 1", "<b>bold</b>"]}, geometry=lines, crs="EPSG:4326")


def _depth_colormap() -> StepColormap:
    colours = ["#f7f5a9", "#ffd8c0", "#ffb7b7", "#ff9191", "#f285c9", "#dc7adc"]
    return StepColormap(
        colours, index=[0, 0.5, 3, 5, 10, 20, 30], vmin=0, vmax=30, caption="浸水深 Flood depth (m)"
    )


def _hillshade(parcels: gpd.GeoDataFrame) -> folium.raster_layers.ImageOverlay:
    yy, xx = np.mgrid[0:64, 0:64]
    grey = (120 + 60 * np.sin(xx / 6.0) * np.cos(yy / 9.0)).astype(np.uint8)
    rgba = np.dstack([grey, grey, grey, np.full_like(grey, 255)])
    west, south, east, north = parcels.total_bounds
    bounds = [[south - 0.004, west - 0.008], [north + 0.004, east + 0.008]]
    return folium.raster_layers.ImageOverlay(rgba, bounds=bounds, name="陰影起伏 Hillshade")


class _Legend(MacroElement):
    """A categorical legend drawn as fixed HTML over the map."""

    _template = Template(LEGEND_HTML)

    def __init__(self, colours: dict[str, str]) -> None:
        super().__init__()
        self._name = "Legend"
        self.colours = colours


def build_map() -> tuple[folium.Map, gpd.GeoDataFrame]:
    """A small map with the elements the council map uses."""
    parcels, roads = _parcels(), _roads()
    m = folium.Map(tiles=None, control_scale=True)
    add_basemaps(m, offline=True, fallback=_hillshade(parcels))
    shown = escape_columns(parcels)
    folium.GeoJson(
        shown,
        name="Parcels",
        style_function=lambda f: {
            "color": "#333",
            "weight": 1,
            "fillOpacity": 0.7,
            "fillColor": COLOURS[f["properties"]["mark"]],
        },
        popup=folium.GeoJsonPopup(fields=["name", "margin_m"], aliases=["Name", "Margin (m)"]),
        tooltip=folium.GeoJsonTooltip(fields=["name"], aliases=["Name"]),
    ).add_to(m)
    folium.GeoJson(
        escape_columns(roads),
        name="Roads",
        style_function=lambda f: {"color": "#555", "weight": 3},
        tooltip=folium.GeoJsonTooltip(fields=["road"]),
    ).add_to(m)
    centre = folium.FeatureGroup(name="Town centre").add_to(m)
    folium.CircleMarker(
        [38.912, 141.51],
        radius=8,
        fill=True,
        popup=folium.Popup(escape_html(NASTY[2] + " " + NASTY[3])),
        tooltip=folium.Tooltip(escape_html(NASTY[0])),
    ).add_to(centre)
    folium.Marker([38.912, 141.52], tooltip=escape_html("役場 Town hall")).add_to(centre)
    m.get_root().add_child(_Legend(COLOURS))
    _depth_colormap().add_to(m)
    folium.LayerControl(collapsed=False).add_to(m)
    west, south, east, north = parcels.total_bounds
    m.fit_bounds([[south - 0.01, west - 0.005], [north + 0.01, east + 0.005]])
    return m, parcels


# --- escaping -------------------------------------------------------------------------


@pytest.mark.parametrize("value", [*NASTY, "普通の名前", "a > b", 3.5, None])
def test_escape_html_leaves_no_markup_or_template_syntax(value: object) -> None:
    out = escape_html(value)
    assert not set(out) & set("<>\"'`$\\")
    assert out == "" if value is None else "&" in out or out == str(value)


def test_escape_columns_escapes_text_only_and_keeps_index() -> None:
    parcels = _parcels().set_index(np.arange(10, 15))
    out = escape_columns(parcels)
    assert isinstance(out, gpd.GeoDataFrame) and out.crs == parcels.crs
    assert out.index.tolist() == parcels.index.tolist()
    assert out.loc[11, "name"] == "&lt;script&gt;alert(1)&lt;/script&gt;"
    assert out["margin_m"].tolist() == parcels["margin_m"].tolist()
    assert out.geometry.equals(parcels.geometry)
    assert parcels.loc[11, "name"] == NASTY[0]  # input untouched
    with pytest.raises(KeyError, match="nope"):
        escape_columns(parcels, columns=["nope"])


def test_folium_tooltip_is_not_escaped_by_folium() -> None:
    """The fact the docstring warns about: folium puts Tooltip text raw into the page."""
    m = folium.Map(tiles=None)
    folium.CircleMarker([0, 0], tooltip=folium.Tooltip(NASTY[1])).add_to(m)
    assert NASTY[1] in m.get_root().render()


# --- assets and page checks -------------------------------------------------------------


def test_inlined_assets_are_small() -> None:
    sizes = offline_assets()
    assert set(sizes) == {"leaflet", "leaflet_css", "jquery", "d3"}
    assert 200_000 < sizes["leaflet"] + sizes["leaflet_css"] + sizes["jquery"] < 300_000
    assert sizes["d3"] < 400_000


def test_plain_page_is_small_and_d3_only_comes_with_a_colormap(tmp_path: Path) -> None:
    m = folium.Map(location=[38.9, 141.5], tiles=None)
    plain = save_offline(m, tmp_path / "plain.html").stat().st_size
    assert 240_000 < plain < 300_000
    _depth_colormap().add_to(m)
    with_legend = save_offline(m, tmp_path / "legend.html").stat().st_size
    assert 300_000 < with_legend - plain < 400_000


def test_saved_page_loads_nothing_by_url(tmp_path: Path) -> None:
    m, _ = build_map()
    path = save_offline(m, tmp_path / "maps" / "index.html")
    page = path.read_text(encoding="utf-8")
    assert 500_000 < len(page.encode()) < 1_000_000  # with d3 for the colormap legend
    assert not re.search(r"<script\b[^>]*\bsrc\s*=", page, re.IGNORECASE)
    assert not re.search(r"<link\b[^>]*stylesheet", page, re.IGNORECASE)
    assert not re.search(r"""url\(\s*["']?(?:https?:)?//""", page)
    assert "bootstrap" not in page.lower() and "awesome" not in page.lower()
    # tile URL templates exist only in tile layers that are not added at load
    tiles = re.findall(r"var (\w+) = L\.tileLayer\(\s*\"(https://[^\"]+)\"", page)
    assert {url.split("/")[4] for _, url in tiles if "gsi" in url} == {
        "std",
        "pale",
        "seamlessphoto",
    }
    assert len(tiles) == 4 and not any(f"{var}.addTo(" in page for var, _ in tiles)
    templates = re.findall(r"https?://[^\s\"']*\{z\}[^\s\"']*", page)
    assert len(templates) == 4
    # folium writes options as ASCII JSON: the attribution is there \u-escaped
    assert page.count(json.dumps(GSI_ATTRIBUTION)[1:-1].replace("<", "\\u003c")[:60]) == 3
    assert json.dumps("地理院タイル")[1:-1] in page


def test_save_offline_is_atomic_and_readable(tmp_path: Path) -> None:
    target = tmp_path / "index.html"
    target.write_text("old", encoding="utf-8")
    m = folium.Map(location=[38.9, 141.5], tiles=None)
    assert save_offline(m, target) == target
    assert target.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["index.html"]


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        (lambda m: MeasureControl().add_to(m), r"script https://\S+leaflet-measure"),
        (lambda m: folium.TileLayer("OpenStreetMap").add_to(m), r"tile layer \w+ is shown"),
        (
            lambda m: folium.Marker([0, 0], icon=folium.Icon(color="red")).add_to(m),
            "folium.Icon needs Leaflet.awesome-markers",
        ),
        (
            lambda m: m.get_root().script.add_child(
                folium.Element('$.ajax("parcels.geojson", {dataType: "json"});')
            ),
            r"GeoJson\(embed=True\)",
        ),
        (
            lambda m: m.get_root().header.add_child(
                folium.Element('<style>@import url("https://fonts.example/a.css");</style>')
            ),
            "@import",
        ),
    ],
    ids=["measure-control", "active-tiles", "awesome-markers", "data-by-ajax", "css-import"],
)
def test_inline_assets_refuses_what_cannot_work_offline(extra: Any, match: str) -> None:
    m = folium.Map(location=[0, 0], tiles=None)
    extra(m)
    with pytest.raises(OutputError, match=match):
        inline_assets(m.get_root().render())


def test_add_basemaps_online_and_offline() -> None:
    online = add_basemaps(folium.Map(tiles=None), offline=False, fallback=_hillshade(_parcels()))
    assert [layer.show for layer in online] == [False, True, False, False, False]
    assert all(not layer.overlay for layer in online)
    offline = add_basemaps(folium.Map(tiles=None), offline=True, fallback=_hillshade(_parcels()))
    assert [layer.show for layer in offline] == [True, False, False, False, False]
    with pytest.raises(OutputError, match=r"tiles=None"):
        add_basemaps(folium.Map(), offline=True, fallback=None)


# --- in the browser, network blocked ----------------------------------------------------


@pytest.fixture(scope="module")
def browser_page(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, Any, Any]]:
    ok, reason = chromium_available()
    if not ok:
        pytest.skip(reason)
    m, parcels = build_map()
    path = save_offline(m, tmp_path_factory.mktemp("offline") / "index.html")
    with open_page(path) as (page, events):
        wait_for_leaflet(page)
        yield page, events, (m, parcels, path)


def _paths(page: Any) -> int:
    return int(page.locator("path.leaflet-interactive").count())


def _click_latlng(page: Any, m: folium.Map, lat: float, lng: float) -> None:
    """Close any popup (it may cover the target), then click the map at ``lat, lng``."""
    page.evaluate("(name) => window[name].closePopup()", m.get_name())
    page.locator(".leaflet-popup").wait_for(state="detached")
    x, y = page.evaluate(
        "([name, lat, lng]) => { const p = window[name].latLngToContainerPoint([lat, lng]);"
        " return [p.x, p.y]; }",
        [m.get_name(), lat, lng],
    )
    origin = page.locator(".leaflet-container").bounding_box()
    page.mouse.click(origin["x"] + x, origin["y"] + y)


@pytest.mark.browser
def test_page_loads_clean_with_network_blocked(browser_page: tuple[Any, Any, Any]) -> None:
    page, events, (_, parcels, path) = browser_page
    assert page.evaluate("typeof window.L") == "object"
    assert page.evaluate("L.version") == "1.9.3"
    assert 0 < load_time_ms(page) < 5_000
    assert _paths(page) == len(parcels) + 2 + 1  # parcels, two roads, the town centre
    assert page.locator("#siteplan-legend").is_visible()
    assert "◎" in page.locator("#siteplan-legend").inner_text()
    assert page.locator("svg#legend").is_visible()  # branca colormap, drawn by d3
    assert page.locator(".leaflet-control-scale").is_visible()
    assert page.locator("img.leaflet-image-layer").count() == 1  # hillshade shown offline
    assert page.locator("img.leaflet-tile").count() == 0
    icon = page.locator("img.leaflet-marker-icon")  # Leaflet's default icon, as a data: URI
    assert icon.count() == 1 and icon.get_attribute("src").startswith("data:image/png")
    shot = screenshot(page, path.parent / "map.png")
    assert shot.stat().st_size > 10_000
    assert events.problems() == []


@pytest.mark.browser
def test_toggling_a_layer_hides_its_paths(browser_page: tuple[Any, Any, Any]) -> None:
    page, events, (_, parcels, _) = browser_page
    toggle = page.locator(".leaflet-control-layers label", has_text="Parcels").locator("input")
    before = _paths(page)
    toggle.uncheck()
    assert _paths(page) == before - len(parcels)
    toggle.check()
    assert _paths(page) == before
    assert events.problems() == []


@pytest.mark.browser
@pytest.mark.parametrize("index", range(len(NAMES)))
def test_clicking_a_parcel_shows_its_name_as_text(
    browser_page: tuple[Any, Any, Any], index: int
) -> None:
    page, events, (m, parcels, _) = browser_page
    centre = parcels.geometry.iloc[index].centroid  # degrees only to find a pixel
    _click_latlng(page, m, centre.y, centre.x)
    popup = page.locator(".leaflet-popup-content")
    popup.wait_for(state="visible")
    text = popup.inner_text()
    assert NAMES[index] in text
    assert f"{parcels['margin_m'].iloc[index]:g}" in text
    assert popup.locator("script, img").count() == 0
    tooltip = page.locator(".leaflet-tooltip.foliumtooltip", has_text=NAMES[index])
    tooltip.wait_for(state="visible")
    assert tooltip.locator("script, img").count() == 0
    assert events.dialogs == [] and events.problems() == []


@pytest.mark.browser
def test_popup_and_tooltip_of_a_marker_show_text(browser_page: tuple[Any, Any, Any]) -> None:
    page, events, (m, _, _) = browser_page
    _click_latlng(page, m, 38.912, 141.51)
    popup = page.locator(".leaflet-popup-content")
    popup.wait_for(state="visible")
    assert popup.inner_text().strip() == f"{NASTY[2]} {NASTY[3]}"
    tooltip = page.locator(".leaflet-tooltip:not(.foliumtooltip)")
    tooltip.wait_for(state="visible")
    assert tooltip.inner_text().strip() == NASTY[0]
    assert events.dialogs == [] and events.problems() == []


@pytest.mark.browser
def test_harness_records_blocked_requests(tmp_path: Path) -> None:
    """Switching to a GSI basemap offline is blocked, and the harness says so."""
    ok, reason = chromium_available()
    if not ok:
        pytest.skip(reason)
    m, _ = build_map()
    path = save_offline(m, tmp_path / "index.html")
    with open_page(path) as (page, events):
        assert events.problems() == []
        page.locator(".leaflet-control-layers label", has_text="GSI pale").locator("input").check()
        page.wait_for_function("document.querySelectorAll('img.leaflet-tile').length > 0")
        page.wait_for_timeout(200)
    assert events.failed_requests
    assert all("cyberjapandata.gsi.go.jp/xyz/pale/" in r for r in events.failed_requests)
    assert events.dialogs == [] and events.page_errors == []


@pytest.mark.browser
def test_harness_catches_an_unescaped_popup(tmp_path: Path) -> None:
    """The negative control: folium's own Popup runs ``${...}``, and the harness sees it."""
    ok, reason = chromium_available()
    if not ok:
        pytest.skip(reason)
    m = folium.Map(location=[38.9, 141.5], zoom_start=14, tiles=None)
    folium.CircleMarker([38.9, 141.5], popup=folium.Popup(NASTY[2])).add_to(m)
    with open_page(save_offline(m, tmp_path / "unsafe.html")) as (_, events):
        pass
    assert events.dialogs == ["alert: 3"]
