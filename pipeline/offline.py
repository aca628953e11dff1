"""Offline, self-contained HTML for Folium maps, and escaping of shared HTML.

A council room often has no internet, so the map page must make no network
request when it opens.  :func:`save_offline` renders a :class:`folium.Map`,
replaces every script and stylesheet that Folium and branca reference by URL
with the file installed from PyPI, and writes one HTML file atomically.

Asset sources
-------------
=====================  ==========================  ===============================
Folium reference       Offline replacement         Package (PyPI)
=====================  ==========================  ===============================
Leaflet JS and CSS     inlined; CSS images as      ``xstatic-leaflet`` (1.9.3)
                       ``data:`` URIs
jQuery                 inlined                     ``xstatic-jquery`` (3.7.1)
d3 v3 (branca colormap inlined, only when a colormap  ``xstatic-d3`` (3.5.17; 330 kB)
legends)               legend is on the map
Bootstrap JS/CSS,      dropped: nothing the map    --
glyphicons, Font       uses needs them (popups,
Awesome, Leaflet.      tooltips, legends, the
awesome-markers        layer control and the scale
                       bar are plain Leaflet)
=====================  ==========================  ===============================

Consequences for map authors: ``folium.Icon`` (awesome markers) is refused,
use ``folium.CircleMarker`` or ``folium.DivIcon``; ``folium.plugins.
MeasureControl`` and other plugins that load a script from a CDN are refused,
use ``folium.Map(control_scale=True)`` for a scale bar; ``folium.GeoJson``
must embed its data (the default ``embed=True``).  Any script or stylesheet
that cannot be inlined raises :class:`~pipeline.errors.OutputError` naming it,
rather than being left to fail in the council room.

Basemaps
--------
:func:`add_basemaps` adds the GSI tiles (standard, pale, photo) and
OpenStreetMap as base layers.  Offline, none of them is shown at load (a tile
layer that is not shown is never added to the map, so it requests nothing); the
``fallback`` image overlay (a local hillshade) is the base layer shown instead.
The tile URL templates stay in the page so the tiles work when someone switches
to them with internet.

Escaping user attributes (folium 0.20)
--------------------------------------
Every value that reaches a popup, tooltip, layer name or legend ends up as
HTML in the page; for ``Popup`` and ``Tooltip`` it is first written inside a
JavaScript template literal (backticks) in the page's ``<script>`` block.
What folium does itself (each checked in Chromium):

- ``folium.Popup(text)`` (default ``parse_html=False``), and the ``popup=``
  string of ``Marker``/``CircleMarker``: *not* escaped, the text is HTML.
  Only unescaped backticks are escaped.  ``${alert(3)}`` runs when the page
  loads; a backslash starts a JS escape (``C:\\users`` is a syntax error that
  stops the whole map); ``</script>`` ends the page's script.
- ``folium.Popup(text, parse_html=True)``: HTML-escaped by branca's ``Html``
  (jinja ``|e``), but ``${...}`` and backslashes are still live as above.
- ``folium.Tooltip(text)`` and the ``tooltip=`` string of markers and
  ``GeoJson``: *not escaped at all*, not even backticks; a name containing
  ``<script>alert(1)</script>`` stops the whole map.
- ``folium.GeoJsonPopup``/``GeoJsonTooltip``: property values and aliases
  reach the browser intact as JSON (jinja ``tojson`` escapes ``< > & '``),
  then are joined into a table set with ``innerHTML``: they are HTML, and
  ``<img src=x onerror=alert(2)>`` in a parcel name runs when it is clicked.
- Layer ``name=``: JSON in the script, but Leaflet's layer control sets it
  with ``innerHTML``: HTML (an ``onerror`` runs at load).
- branca ``Element``/``MacroElement`` legends and tables: raw HTML.

The rule for map authors: pass every attribute value through
:func:`escape_html` (or a frame through :func:`escape_columns`) before it goes
into any of these, and keep ``Popup``'s default ``parse_html=False`` so it is
not escaped twice.  :func:`escape_html` turns ``& < > " '`` into HTML
character references and also ``$``, the backtick and the backslash, which
makes a value safe in every place above; the browser shows the original text.
Values must be escaped once: ``escape_columns`` on a frame that is then passed
to ``Popup(parse_html=True)`` shows ``&lt;`` to the reader.
"""

from __future__ import annotations

import base64
import html as _html
import importlib
import logging
import math
import mimetypes
import os
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pipeline.errors import OutputError

if TYPE_CHECKING:
    import folium
    import pandas as pd
    from folium.raster_layers import ImageOverlay

logger = logging.getLogger(__name__)

__all__ = [
    "GSI_ATTRIBUTION",
    "add_basemaps",
    "escape_columns",
    "escape_html",
    "inline_assets",
    "offline_assets",
    "save_offline",
]

GSI_ATTRIBUTION = (
    '<a href="https://maps.gsi.go.jp/development/ichiran.html" target="_blank">地理院タイル</a>'
)
OSM_ATTRIBUTION = (
    '&copy; <a href="https://www.openstreetmap.org/copyright" target="_blank">'
    "OpenStreetMap</a> contributors"
)


@dataclass(frozen=True)
class _Asset:
    module: str  # importable xstatic module with a BASE_DIR
    dist: str  # the PyPI distribution to install
    file: str  # path below BASE_DIR
    kind: Literal["js", "css"]


_ASSETS: dict[str, _Asset] = {
    "leaflet": _Asset("xstatic.pkg.leaflet", "xstatic-leaflet", "leaflet.js", "js"),
    "leaflet_css": _Asset("xstatic.pkg.leaflet", "xstatic-leaflet", "leaflet.css", "css"),
    "jquery": _Asset("xstatic.pkg.jquery", "xstatic-jquery", "jquery.min.js", "js"),
    "d3": _Asset("xstatic.pkg.d3", "xstatic-d3", "d3.js", "js"),
}

# URL patterns -> asset name, or None for references the offline page drops.
_URL_RULES: tuple[tuple[re.Pattern[str], str | None], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), name)
    for pattern, name in (
        (r"/leaflet(?:-src)?(?:\.min)?\.js$", "leaflet"),
        (r"/leaflet(?:\.min)?\.css$", "leaflet_css"),
        (r"/jquery(?:-[\d.]+?)?(?:\.min)?\.js$", "jquery"),
        (r"/d3/3\.[\d.]+/d3(?:\.min)?\.js$", "d3"),  # branca colormap legends (d3 v3)
        (r"/bootstrap(?:\.bundle)?(?:\.min)?\.(?:js|css)$", None),
        (r"/bootstrap-glyphicons(?:\.min)?\.css$", None),
        (r"font-?awesome.*\.css$", None),
        (r"/leaflet\.awesome-markers(?:\.min)?\.(?:js|css)$", None),
        (r"/leaflet\.awesome\.rotate(?:\.min)?\.css$", None),
    )
)

_SCRIPT_SRC = re.compile(
    r"""<script\b[^>]*?\bsrc\s*=\s*(["'])(?P<url>[^"']*)\1[^>]*>\s*</script\s*>""",
    re.IGNORECASE,
)
_LINK = re.compile(r"<link\b[^>]*>", re.IGNORECASE)
_ATTR = re.compile(r"""\b(?P<key>[\w-]+)\s*=\s*(["'])(?P<value>[^"']*)\2""")
_SOURCE_MAP = re.compile(
    r"^\s*(?://[#@]\s*sourceMappingURL=.*|/\*[#@]\s*sourceMappingURL=.*\*/)$", re.MULTILINE
)
_CSS_URL = re.compile(r"""url\(\s*(["']?)(?P<url>[^"')]+)\1\s*\)""")
_REMOTE = r"(?:https?:)?//"
_REMOTE_LOADS: tuple[tuple[re.Pattern[str], str], ...] = (
    (
        re.compile(
            rf"""<(?:img|iframe|source|video|audio|embed)\b[^>]*?\bsrc\s*=\s*["']{_REMOTE}""",
            re.IGNORECASE,
        ),
        "an element loads a remote src",
    ),
    (re.compile(rf"""url\(\s*["']?{_REMOTE}""", re.IGNORECASE), "a CSS url() is remote"),
    (re.compile(r"""@import\s+(?:url\(\s*)?["']""", re.IGNORECASE), "a stylesheet uses @import"),
    (
        re.compile(rf"""L\.(?:imageOverlay|videoOverlay)\(\s*["']{_REMOTE}"""),
        "an image or video overlay loads a remote URL; pass an array or a local file",
    ),
    (re.compile(r"\$\.ajax\("), "a layer loads its data at run time; use GeoJson(embed=True)"),
    (
        re.compile(r"L\.AwesomeMarkers\b"),
        (
            "folium.Icon needs Leaflet.awesome-markers, which is not available offline; "
            "use folium.CircleMarker or folium.DivIcon"
        ),
    ),
)
_LOADING_RELS = {"icon", "preload", "modulepreload", "prefetch", "preconnect", "dns-prefetch"}
_TILE_VAR = re.compile(r"\bvar\s+(?P<name>\w+)\s*=\s*L\.tileLayer(?:\.wms)?\(")


@cache
def _base_dir(asset: _Asset) -> Path:
    try:
        module = importlib.import_module(asset.module)
    except ImportError as err:
        raise OutputError(
            f"offline map: the package {asset.dist!r} (module {asset.module}) is not installed; "
            f"install siteplan's dependencies (`pip install -e .`) or `pip install {asset.dist}`"
        ) from err
    return Path(module.BASE_DIR)


def _data_uri(path: Path) -> str:
    mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode('ascii')}"


def _css_with_data_uris(css: str, folder: Path) -> str:
    def replace(match: re.Match[str]) -> str:
        url = match["url"].strip()
        if url.startswith(("data:", "#")):
            return match[0]
        if re.match(_REMOTE, url):
            raise OutputError(f"offline map: stylesheet in {folder} references remote {url}")
        image = folder / url.split("?")[0].split("#")[0]
        if not image.is_file():
            raise OutputError(
                f"offline map: stylesheet in {folder} references {url}, not found at {image}; "
                "reinstall the package that ships it"
            )
        return f'url("{_data_uri(image)}")'

    return _CSS_URL.sub(replace, css)


@cache
def _asset_text(name: str) -> str:
    asset = _ASSETS[name]
    path = _base_dir(asset) / asset.file
    if not path.is_file():
        raise OutputError(
            f"offline map: {path} is missing from the package {asset.dist!r}; reinstall it"
        )
    text = _SOURCE_MAP.sub("", path.read_text(encoding="utf-8"))
    if asset.kind == "css":
        return _css_with_data_uris(text, path.parent)
    text = re.sub(r"</(script)", r"<\\/\1", text, flags=re.IGNORECASE)
    if name == "leaflet":
        text += _leaflet_icon_fix(path.parent)
    return text


def _leaflet_icon_fix(folder: Path) -> str:
    """Point L.Icon.Default at data: URIs (its CSS-based path detection fails on them)."""
    images = folder / "images"
    urls = {
        key: _data_uri(images / file)
        for key, file in (
            ("iconUrl", "marker-icon.png"),
            ("iconRetinaUrl", "marker-icon-2x.png"),
            ("shadowUrl", "marker-shadow.png"),
        )
    }
    options = ", ".join(f'{key}: "{url}"' for key, url in urls.items())
    return f'\nL.Icon.Default.imagePath = "";\nL.Icon.Default.mergeOptions({{{options}}});\n'


def _asset_for(url: str) -> str | None:
    for pattern, name in _URL_RULES:
        if pattern.search(url.split("?")[0]):
            return name
    raise KeyError(url)


def offline_assets() -> dict[str, int]:
    """Return the assets that can be inlined and their sizes in bytes (UTF-8).

    Every page gets ``leaflet``, ``leaflet_css`` and ``jquery``; ``d3`` only
    when a branca colormap legend is on the map.

    Returns
    -------
    dict of str to int
        Asset name to the size of the text that :func:`inline_assets` puts
        into a page.

    Examples
    --------
    >>> sizes = offline_assets()
    >>> sorted(sizes)
    ['d3', 'jquery', 'leaflet', 'leaflet_css']
    >>> sizes["leaflet"] + sizes["leaflet_css"] + sizes["jquery"] < 300_000
    True
    """
    return {name: len(_asset_text(name).encode("utf-8")) for name in _ASSETS}


def _placeholder(url: str, kind: str, seen: set[str], unresolved: list[str]) -> str:
    """Return the marker that stands for ``url`` until the checks have passed."""
    if url.startswith("data:"):
        return (
            f'<script src="{url}"></script>'
            if kind == "js"
            else f'<link rel="stylesheet" href="{url}"/>'
        )
    try:
        name = _asset_for(url)
    except KeyError:
        unresolved.append(f"{'script' if kind == 'js' else 'stylesheet'} {url}")
        return ""
    if name is None or name in seen:
        return ""
    seen.add(name)
    return f"\x00asset:{name}\x00"


def _asset_tag(match: re.Match[str]) -> str:
    name = match[1]
    tag = "script" if _ASSETS[name].kind == "js" else "style"
    return f"<{tag}>/* {name}: {_ASSETS[name].dist} */\n{_asset_text(name)}\n</{tag}>"


def _active_tile_layers(html: str) -> list[str]:
    names = [match["name"] for match in _TILE_VAR.finditer(html)]
    return [name for name in names if re.search(rf"\b{name}\s*\.addTo\(", html)]


def inline_assets(html: str) -> str:
    """Return ``html`` with Folium's CDN scripts and stylesheets inlined or dropped.

    Leaflet and jQuery are inlined from ``xstatic-leaflet`` and
    ``xstatic-jquery`` (Leaflet's CSS images as ``data:`` URIs); Bootstrap,
    glyphicons, Font Awesome and Leaflet.awesome-markers are dropped.  The
    result is checked to load nothing from outside the file.

    Parameters
    ----------
    html : str
        A page rendered by ``folium.Map.get_root().render()``.

    Returns
    -------
    str
        One self-contained HTML page.

    Raises
    ------
    OutputError
        When the page references a script or stylesheet that no installed
        package provides, loads anything else remotely (CSS ``url()``, images,
        ``$.ajax``), uses awesome markers, or adds a tile layer at load time.

    Examples
    --------
    >>> page = ('<head><script src="https://cdn.example/npm/leaflet@1.9.3/dist/leaflet.js">'
    ...         '</script><link rel="stylesheet" href="https://cdn.example/bootstrap.min.css"/>'
    ...         '</head>')
    >>> out = inline_assets(page)
    >>> "cdn.example" in out, "Leaflet 1.9.3" in out, "bootstrap" in out.lower()
    (False, True, False)
    >>> try:
    ...     inline_assets('<script src="https://cdn.example/leaflet-measure.js"></script>')
    ... except OutputError as err:
    ...     print(str(err).splitlines()[1])
    ...
      - script https://cdn.example/leaflet-measure.js
    """
    seen: set[str] = set()
    unresolved: list[str] = []

    def script(match: re.Match[str]) -> str:
        return _placeholder(match["url"], "js", seen, unresolved)

    def link(match: re.Match[str]) -> str:
        attrs = {m["key"].lower(): m["value"] for m in _ATTR.finditer(match[0])}
        rel = attrs.get("rel", "").lower().split()
        href = attrs.get("href", "")
        if "stylesheet" in rel:
            return _placeholder(href, "css", seen, unresolved)
        if _LOADING_RELS & set(rel) and not href.startswith("data:"):
            unresolved.append(f"link {href}")
        return match[0]

    out = _LINK.sub(link, _SCRIPT_SRC.sub(script, html))
    problems = unresolved + [reason for pattern, reason in _REMOTE_LOADS if pattern.search(out)]
    problems += [
        f"tile layer {name} is shown at load and would request tiles; create the map with "
        "folium.Map(tiles=None) and add tiles with add_basemaps(m, offline=True, ...)"
        for name in _active_tile_layers(out)
    ]
    if problems:
        lines = "\n".join(f"  - {p}" for p in problems)
        raise OutputError(
            f"offline map: {len(problems)} reference(s) cannot be made offline\n{lines}\n"
            "Remove the plugin or element, or add a package that ships the file to "
            "pipeline.offline._ASSETS."
        )
    return re.sub(r"\x00asset:(\w+)\x00", _asset_tag, out)


def save_offline(m: folium.Map, path: str | os.PathLike[str]) -> Path:
    """Render ``m`` as one self-contained HTML file and write it atomically.

    Parameters
    ----------
    m : folium.Map
        The map; it is rendered through its root figure.
    path : path-like
        Where to write; the folder is created.  The file is written to a
        temporary file beside it and moved into place with :func:`os.replace`,
        so a reader never sees half a page.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    OutputError
        From :func:`inline_assets`, or when the file cannot be written.

    Examples
    --------
    >>> import folium, tempfile
    >>> m = folium.Map(location=[35.0, 135.0], zoom_start=12, tiles=None)
    >>> out = save_offline(m, Path(tempfile.mkdtemp()) / "map.html")
    >>> text = out.read_text(encoding="utf-8")
    >>> "cdn." in text, 200_000 < len(text) < 400_000
    (False, True)
    """
    path = Path(path)
    page = inline_assets(m.get_root().render())
    data = page.encode("utf-8")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as err:
        raise OutputError(f"offline map {path}: cannot write in {path.parent}: {err}") from err
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except OSError as err:
        Path(tmp).unlink(missing_ok=True)
        raise OutputError(f"offline map {path}: writing failed: {err}") from err
    logger.info("wrote offline map %s (%.0f kB)", path, len(data) / 1024)
    return path


def escape_html(value: object) -> str:
    """Return ``value`` as text that shows literally in a Folium popup, tooltip or table.

    HTML special characters ``& < > " '`` become character references, and so
    do ``$``, the backtick and the backslash, which folium would otherwise put
    live into a JavaScript template literal.  ``None`` and NaN become ``""``.

    Parameters
    ----------
    value : object
        Any attribute value; it is converted with ``str``.

    Returns
    -------
    str
        Escaped text.

    Examples
    --------
    >>> escape_html("<script>alert(1)</script>")
    '&lt;script&gt;alert(1)&lt;/script&gt;'
    >>> escape_html("${x} `C:\\\\u`")
    '&#36;{x} &#96;C:&#92;u&#96;'
    >>> escape_html(None), escape_html(float("nan")), escape_html(12.5)
    ('', '', '12.5')
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    text = _html.escape(str(value), quote=True)
    return text.replace("$", "&#36;").replace("`", "&#96;").replace("\\", "&#92;")


def escape_columns(frame: pd.DataFrame, *, columns: Sequence[str] | None = None) -> pd.DataFrame:
    """Return a copy of ``frame`` with text columns passed through :func:`escape_html`.

    Parameters
    ----------
    frame : DataFrame or GeoDataFrame
        Attributes that will reach popups, tooltips or tables.
    columns : sequence of str, optional
        Columns to escape; default every object or string column (never the
        geometry).

    Returns
    -------
    DataFrame or GeoDataFrame
        Same type, index and columns as ``frame``.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"name": ["<b>A</b>", None], "margin": [1.5, 2.0]})
    >>> escape_columns(df)["name"].tolist()
    ['&lt;b&gt;A&lt;/b&gt;', '']
    """
    if columns is None:
        geometry = getattr(frame, "_geometry_column_name", None)
        columns = [
            c for c in frame.select_dtypes(include=["object", "string"]).columns if c != geometry
        ]
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise KeyError(
            f"escape_columns: no column(s) {missing}; the frame has {list(frame.columns)}"
        )
    out = frame.copy()
    for column in columns:
        out[column] = frame[column].map(escape_html).astype(object)
    return out


_BASEMAPS: tuple[tuple[str, str, str, str], ...] = (
    (
        "地理院 淡色地図 (GSI pale)",
        "https://cyberjapandata.gsi.go.jp/xyz/pale/{z}/{x}/{y}.png",
        GSI_ATTRIBUTION,
        "gsi_pale",
    ),
    (
        "地理院 標準地図 (GSI standard)",
        "https://cyberjapandata.gsi.go.jp/xyz/std/{z}/{x}/{y}.png",
        GSI_ATTRIBUTION,
        "gsi_std",
    ),
    (
        "地理院 写真 (GSI photo)",
        "https://cyberjapandata.gsi.go.jp/xyz/seamlessphoto/{z}/{x}/{y}.jpg",
        GSI_ATTRIBUTION,
        "gsi_photo",
    ),
    ("OpenStreetMap", "https://tile.openstreetmap.org/{z}/{x}/{y}.png", OSM_ATTRIBUTION, "osm"),
)


def add_basemaps(
    m: folium.Map, *, offline: bool, fallback: ImageOverlay | None
) -> list[folium.map.Layer]:
    """Add the GSI and OpenStreetMap tile basemaps, and a local fallback, to ``m``.

    The four tile layers are base layers (radio buttons in a layer control).
    Online, GSI pale is shown at load.  Offline, no tile layer is shown, so the
    page requests no tile at load, and ``fallback`` is shown instead.

    Parameters
    ----------
    m : folium.Map
        A map created with ``tiles=None``.
    offline : bool
        Whether the page is meant to open without internet.
    fallback : folium.raster_layers.ImageOverlay or None
        A local image (typically the DEM hillshade) made a base layer; it is
        shown at load when ``offline``.  Its ``overlay`` and ``show`` are set.

    Returns
    -------
    list of folium.map.Layer
        The layers added, fallback first when given.

    Raises
    ------
    OutputError
        When ``offline`` and ``m`` already shows a tile layer at load.

    Examples
    --------
    >>> import folium
    >>> m = folium.Map(location=[35.0, 135.0], tiles=None)
    >>> [layer.show for layer in add_basemaps(m, offline=True, fallback=None)]
    [False, False, False, False]
    """
    from folium.raster_layers import TileLayer

    if offline:
        shown = [c.layer_name for c in m._children.values() if isinstance(c, TileLayer) and c.show]
        if shown:
            raise OutputError(
                f"add_basemaps: the map already shows tile layer(s) {shown} at load, which "
                "would make requests offline; create it with folium.Map(tiles=None)"
            )
    layers: list[folium.map.Layer] = []
    if fallback is not None:
        fallback.overlay = False
        fallback.show = offline
        fallback.add_to(m)
        layers.append(fallback)
    for i, (name, url, attribution, _key) in enumerate(_BASEMAPS):
        tile = TileLayer(
            tiles=url,
            attr=attribution,
            name=name,
            overlay=False,
            show=(not offline and i == 0),
            max_zoom=18,
            max_native_zoom=18,
        )
        tile.add_to(m)
        layers.append(tile)
    return layers
