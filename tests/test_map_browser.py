"""The demo study's council map in headless Chromium, with the network blocked.

Runs the whole pipeline on the bundled demo study (and on a copy whose parcels
carry hostile names), opens ``maps/index.html`` from disk through
tests/browser.py (Debian's chromium driven by Playwright; every request that is
not ``file:``/``data:`` is aborted and recorded) and checks what a council
member sees. Skips cleanly when Chromium or Playwright is missing.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import geopandas as gpd
import pytest
from browser import (
    chromium_available,
    load_time_ms,
    open_page,
    require_chromium,
    screenshot,
    wait_for_leaflet,
)

from pipeline.qgis import MARK_COLOURS

pytestmark = pytest.mark.browser

HOSTILE = {
    "S2": "<script>alert(1)</script>",
    "S3": "<img src=x onerror=alert(2)>",
    "S1": "${alert(3)} `tick`",
    "S4": "C:\\users\\u0041 & 'quote'",
}
PARCELS = "Candidate sites (overall mark)"


def _run_demo(folder: Path, names: dict[str, str] | None = None) -> tuple[Path, Any]:
    """Write the demo study into ``folder`` (renaming parcels), run every stage."""
    from pipeline.config import load_study
    from pipeline.demo import write_demo_study
    from pipeline.runner import Runner
    from pipeline.stages import STAGES

    study_file = write_demo_study(folder / "study")
    if names:
        parcels_file = study_file.parent / "parcels.gpkg"
        parcels = gpd.read_file(parcels_file, layer="parcels")
        parcels["name"] = parcels["site_id"].map(names).fillna(parcels["name"])
        parcels.to_file(parcels_file, layer="parcels", driver="GPKG")
    study = load_study(study_file)
    results = Runner(study, STAGES).run(list(STAGES))
    return results[-1].outputs["map"], study


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, Any, Path, Any]]:
    ok, reason = chromium_available()
    if not ok:
        pytest.skip(reason)
    path, study = _run_demo(tmp_path_factory.mktemp("demo-map"))
    with open_page(path) as (page, events):
        wait_for_leaflet(page)
        yield page, events, path, study


def _paths(page: Any) -> int:
    return int(page.locator("path.leaflet-interactive").count())


def _toggle(page: Any, label: str) -> Any:
    return page.locator(".leaflet-control-layers-overlays label", has_text=label).locator("input")


def _click_site(page: Any, site: str) -> Any:
    """Close any popup, centre parcel ``site`` (popups pan the map), click inside it.

    Returns the popup's content locator once it is visible.
    """
    page.evaluate("() => document.querySelectorAll('.leaflet-popup-close-button')"
                  ".forEach(b => b.click())")
    page.locator(".leaflet-popup").wait_for(state="detached")
    xy = page.evaluate(
        """(site) => {
            for (const value of Object.values(window)) {
                if (!(value instanceof L.GeoJSON)) continue;
                for (const layer of value.getLayers()) {
                    if (layer.feature && layer.feature.id === site && layer.feature.properties.v0) {
                        const map = layer._map, ring = layer.getLatLngs()[0];
                        map.panTo(layer.getCenter(), {animate: false});
                        const pts = ring.map(ll => map.latLngToContainerPoint(ll));
                        const x = pts.reduce((a, p) => a + p.x, 0) / pts.length;
                        const y = pts.reduce((a, p) => a + p.y, 0) / pts.length;
                        return [x, y];
                    }
                }
            }
            return null;
        }""", site)
    assert xy is not None, f"no parcel {site} on the map"
    origin = page.locator(".leaflet-container").bounding_box()
    page.mouse.click(origin["x"] + xy[0], origin["y"] + xy[1])
    popup = page.locator(".leaflet-popup-content")
    popup.wait_for(state="visible")
    return popup


def test_demo_map_loads_offline_without_errors(demo: tuple[Any, Any, Path, Any]) -> None:
    page, events, path, _ = demo
    assert page.evaluate("typeof window.L") == "object"
    assert page.evaluate("L.version") == "1.9.3"
    assert 0 < load_time_ms(page) < 5_000
    assert page.locator("img.leaflet-tile").count() == 0  # no tile requested offline
    assert page.locator("img.leaflet-image-layer").count() == 2  # hillshade + tsunami depth
    assert page.locator(".leaflet-control-scale").is_visible()
    assert "Kiritappu" in page.locator("#siteplan-title").inner_text()
    assert path.stat().st_size < 3_000_000
    assert events.problems() == []


def test_five_parcels_are_drawn_in_their_mark_colours(demo: tuple[Any, Any, Path, Any]) -> None:
    page, events, _, _ = demo
    fills = page.evaluate(
        "() => Array.from(document.querySelectorAll('path.leaflet-interactive'))"
        ".map(p => p.getAttribute('fill'))")
    counts = {mark: fills.count(colour) for mark, colour in MARK_COLOURS.items()}
    assert counts == {"◎": 1, "○": 0, "△": 1, "×": 3, "—": 0}  # S2 ◎, S3 △, S0 S1 S4 ×
    assert events.problems() == []


def test_toggling_the_parcels_layer_hides_them(demo: tuple[Any, Any, Path, Any]) -> None:
    page, events, _, _ = demo
    toggle = _toggle(page, PARCELS)
    before = _paths(page)
    toggle.uncheck()
    assert _paths(page) == before - 5
    toggle.check()
    assert _paths(page) == before
    assert events.problems() == []


def test_legends_are_visible_and_follow_their_layers(demo: tuple[Any, Any, Path, Any]) -> None:
    page, events, _, _ = demo
    legend = page.locator("#siteplan-legend")
    assert legend.is_visible()
    assert all(mark in legend.inner_text() for mark in "◎○△×")
    tsunami = page.locator("#siteplan-depth-legend-0")
    assert tsunami.is_visible() and "10–20 m" in tsunami.inner_text()
    assert page.locator("#siteplan-depth-legend-1").count() == 0  # flood layers start hidden
    _toggle(page, "River flood, planned scale").check()
    assert page.locator("#siteplan-depth-legend-1").is_visible()
    assert page.locator("img.leaflet-image-layer").count() == 3
    _toggle(page, "River flood, planned scale").uncheck()
    _toggle(page, "Design tsunami").uncheck()
    assert page.locator(".siteplan-depth-legend").count() == 0
    _toggle(page, "Design tsunami").check()
    assert tsunami.is_visible()
    assert events.problems() == []


def test_clicking_a_parcel_shows_its_name_margin_and_profile(
        demo: tuple[Any, Any, Path, Any], tmp_path: Path) -> None:
    page, events, _, _ = demo
    popup = _click_site(page, "S2")
    text = popup.inner_text()
    assert "Site 2: hilltop" in text and "28.1" in text and "◎" in text
    assert "Height above the design tsunami" in text and "Rank 1" in text
    chart = popup.locator("svg.siteplan-profile")
    assert chart.count() == 1 and "Design tsunami: 13.9 m" in chart.text_content()
    box = popup.bounding_box()
    assert box["width"] > 250 and box["height"] > 300  # table and chart, legible
    shot = screenshot(page, tmp_path / "demo-map-popup.png")
    assert shot.stat().st_size > 50_000
    popup = _click_site(page, "S1")
    assert "Site 1: next to town (bluff)" in popup.inner_text() and "2.1" in popup.inner_text()
    assert events.problems() == []


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, Any, Path]]:
    require_chromium()
    path, _ = _run_demo(tmp_path_factory.mktemp("hostile-map"), HOSTILE)
    with open_page(path) as (page, events):
        wait_for_leaflet(page)
        yield page, events, path


def test_a_parcel_named_script_shows_as_text(hostile: tuple[Any, Any, Path],
                                             tmp_path: Path) -> None:
    page, events, _ = hostile
    scripts = page.evaluate("() => document.scripts.length")
    for site, name in HOSTILE.items():
        popup = _click_site(page, site)
        assert popup.inner_text().splitlines()[0] == name
        assert popup.locator("script, img").count() == 0
        tooltip = page.locator(".leaflet-tooltip", has_text=name)
        tooltip.wait_for(state="visible")
        assert tooltip.inner_text().strip() == name
    labels = page.locator(".siteplan-label").all_inner_texts()
    assert any(HOSTILE["S2"] in label for label in labels)
    assert page.evaluate("() => document.scripts.length") == scripts
    screenshot(page, tmp_path / "hostile-map.png")
    assert events.dialogs == []
    assert events.problems() == []
