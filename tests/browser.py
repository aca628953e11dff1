"""Headless Chromium for browser tests, with the network blocked.

Debian's ``chromium`` (``/usr/bin/chromium``, installed by
``docs/ci-browser.sh``) is driven by the Playwright Python package through
``executable_path``; Playwright's own browser download is never used.  Every
request that is not ``file:`` or ``data:`` is aborted and recorded, as are
console errors, uncaught page errors and JavaScript dialogs (``alert``), which
are dismissed so that a page cannot hang a test.

Usage in a test::

    from browser import open_page, require_chromium  # tests/ is on sys.path under pytest

    def test_map(tmp_path):
        require_chromium()
        with open_page(tmp_path / "map.html") as (page, events):
            assert page.evaluate("typeof window.L") == "object"
        assert events.problems() == []

``SITEPLAN_CHROMIUM`` overrides the browser path.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Page, Playwright, Route, ViewportSize

CHROMIUM = Path(os.environ.get("SITEPLAN_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
)
VIEWPORT = {"width": 1280, "height": 800}
LOCAL_SCHEMES = ("file:", "data:", "blob:", "about:")
TIMEOUT_MS = 15_000


@dataclass
class PageEvents:
    """What a page did that a self-contained map must not do."""

    failed_requests: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)

    def problems(self) -> list[str]:
        """Every recorded event as one line; empty for a clean page."""
        return (
            [f"failed request: {r}" for r in self.failed_requests]
            + [f"console error: {m}" for m in self.console_errors]
            + [f"page error: {m}" for m in self.page_errors]
            + [f"dialog: {m}" for m in self.dialogs]
        )


def chromium_available() -> tuple[bool, str]:
    """Return whether the browser tests can run, and why not.

    Returns
    -------
    (bool, str)
        ``(True, "")`` when Playwright imports and the Chromium executable
        exists; otherwise ``False`` and the reason, for ``pytest.skip``.
    """
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError as err:
        return False, f"the playwright package is not importable ({err}); pip install playwright"
    if not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)):
        return False, (
            f"no Chromium at {CHROMIUM}; run `bash docs/ci-browser.sh` as root "
            "or set SITEPLAN_CHROMIUM"
        )
    return True, ""


def require_chromium() -> None:
    """Skip the calling test, with the reason, when :func:`chromium_available` says no."""
    ok, reason = chromium_available()
    if not ok:
        pytest.skip(reason)


def _block_remote(events: PageEvents) -> Any:
    def handle(route: Route) -> None:
        url = route.request.url
        if url.startswith(LOCAL_SCHEMES):
            route.continue_()
        else:
            events.failed_requests.append(f"{url} (blocked: not file: or data:)")
            route.abort("blockedbyclient")

    return handle


@contextmanager
def open_page(
    html_path: str | os.PathLike[str],
    *,
    viewport: dict[str, int] | None = None,
    timeout_ms: int = TIMEOUT_MS,
) -> Iterator[tuple[Page, PageEvents]]:
    """Open a local HTML file in headless Chromium with the network blocked.

    Parameters
    ----------
    html_path : path-like
        The page to open (as a ``file://`` URL).
    viewport : dict, optional
        ``{"width": ..., "height": ...}``; default 1280 x 800.
    timeout_ms : int
        Default timeout of every Playwright call on the page.

    Yields
    ------
    (Page, PageEvents)
        The page after its ``load`` event, and the events recorded so far and
        from then on (until the context exits).
    """
    require_chromium()
    url = Path(html_path).resolve().as_uri()
    events = PageEvents()
    profile = tempfile.mkdtemp(prefix="siteplan-chromium-")
    try:
        with _playwright() as playwright:
            context = playwright.chromium.launch_persistent_context(
                profile,
                executable_path=str(CHROMIUM),
                headless=True,
                args=list(CHROMIUM_FLAGS),
                viewport=cast("ViewportSize", viewport or VIEWPORT),
                service_workers="block",
            )
            try:
                context.set_default_timeout(timeout_ms)
                context.route("**/*", _block_remote(events))
                page = context.pages[0] if context.pages else context.new_page()
                _record(page, events)
                page.goto(url, wait_until="load")
                yield page, events
            finally:
                context.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)


_DRIVER: dict[str, Any] = {"playwright": None, "users": 0}


@contextmanager
def _playwright() -> Iterator[Playwright]:
    """One Playwright driver shared by nested :func:`open_page` calls (sync API allows one)."""
    from playwright.sync_api import sync_playwright

    if _DRIVER["users"] == 0:
        _DRIVER["manager"] = sync_playwright()
        _DRIVER["playwright"] = _DRIVER["manager"].start()
    _DRIVER["users"] += 1
    try:
        yield _DRIVER["playwright"]
    finally:
        _DRIVER["users"] -= 1
        if _DRIVER["users"] == 0:
            _DRIVER["playwright"].stop()
            _DRIVER["playwright"] = None


def _record(page: Page, events: PageEvents) -> None:
    def on_console(message: Any) -> None:
        if message.type == "error":
            events.console_errors.append(message.text)

    def on_dialog(dialog: Any) -> None:
        events.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    def on_failed(request: Any) -> None:
        if not request.url.startswith(LOCAL_SCHEMES):
            return  # already recorded as blocked
        events.failed_requests.append(f"{request.url} ({request.failure})")

    page.on("console", on_console)
    page.on("pageerror", lambda error: events.page_errors.append(str(error)))
    page.on("dialog", on_dialog)
    page.on("requestfailed", on_failed)


def wait_for_leaflet(page: Page) -> None:
    """Wait until Leaflet is loaded and a map container exists."""
    page.wait_for_function(
        "() => window.L !== undefined && document.querySelector('.leaflet-container') !== null"
    )


def screenshot(page: Page, path: str | os.PathLike[str], *, full_page: bool = False) -> Path:
    """Save a PNG of the page (the viewport unless ``full_page``) and return its path.

    CSS animations are finished first, so a popup that is fading in is legible.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path), full_page=full_page, animations="disabled")
    return path


def load_time_ms(page: Page) -> float:
    """Milliseconds from navigation start to the end of the page's ``load`` event."""
    return float(page.evaluate("performance.getEntriesByType('navigation')[0].loadEventEnd"))
