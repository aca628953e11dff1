"""Static figures for slides and printed reports (matplotlib, Agg, no browser).

- :func:`overlay_figure`: the candidate parcels coloured by overall mark and
  labelled, over the design tsunami's depth (the national hazard-map colours, as
  on the interactive map) and a shaded relief, with roads, access routes, the
  town centre and shelters, a legend, a north arrow, a scale bar and a title;
  drawn in the study's metric CRS (axes in metres).
- :func:`profiles_figure`: one elevation profile per site along its route from
  the town centre, with each scenario's design water level as a line.

Figures are built on :class:`matplotlib.figure.Figure` with the Agg canvas
(no pyplot state). Japanese labels need a CJK font: :func:`cjk_font` finds an
installed one (IPAGothic from ``fonts-ipafont-gothic``, Noto Sans CJK...) and
registers it with matplotlib; without one the figures use English labels, and
any text the fonts cannot draw falls back to the site id, so matplotlib never
warns about a missing glyph.
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from pipeline.maps import (
    DEPTH_COLOURS,
    LEVEL_COLOURS,
    POI_COLOURS,
    depth_classes,
    depth_legend_labels,
    scenario_levels,
    shaded_relief,
)
from pipeline.qgis import MARK_COLOURS

if TYPE_CHECKING:
    import geopandas as gpd
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

logger = logging.getLogger(__name__)

__all__ = [
    "cjk_font",
    "figure_lang",
    "overlay_figure",
    "profiles_figure",
    "read_grid",
    "save_png",
    "write_figures",
]

_CJK_FILES = ("ipagp", "ipaexg", "notosanscjk", "notosansjp", "ipag", "takao", "vl-gothic",
              "vlgothic", "notoserifcjk", "ipamp", "ipaexm", "ipam", "droidsansfallback", "wqy")
"""File-name prefixes of fonts with Japanese glyphs, proportional gothic faces first."""
_BASE_FONT = "DejaVu Sans"

_TEXT = {
    "en": {"overlay": "Candidate sites, design inundation depth and access routes",
           "profiles": "Elevation along the route from the town centre",
           "distance": "Distance along the route (m)", "elevation": "Elevation (m T.P.)",
           "marks": "Overall mark", "depth": "Inundation depth", "roads": "Road",
           "from_centre": "Route from the town centre", "from_street":
           "Route from the central street", "x": "Easting (m)", "y": "Northing (m)",
           "ground": "Ground", "no_route": "no route"},
    "ja": {"overlay": "候補地・想定浸水深・アクセス経路", "profiles": "市街地中心からの経路の標高断面",
           "distance": "経路上の距離 (m)", "elevation": "標高 (m T.P.)", "marks": "総合評価",
           "depth": "浸水深", "roads": "道路", "from_centre": "市街地中心からの経路",
           "from_street": "中央通りからの経路", "x": "X (m)", "y": "Y (m)", "ground": "地盤",
           "no_route": "経路なし"},
}


# --------------------------------------------------------------------------- fonts


@functools.cache
def cjk_font() -> str | None:
    """Family name of an installed font with Japanese glyphs, registered with matplotlib.

    Returns
    -------
    str or None
        e.g. ``"IPAGothic"``; None when no such font is installed
        (``fc-list :lang=ja`` is empty; ``docs/ci-browser.sh`` installs one).

    Examples
    --------
    >>> font = cjk_font()
    >>> font is None or isinstance(font, str)
    True
    """
    from matplotlib import font_manager

    known = {entry.fname: entry.name for entry in font_manager.fontManager.ttflist}
    files = set(known) | {p for p in font_manager.findSystemFonts()
                          if p.lower().endswith((".ttf", ".otf"))}
    ranked = sorted((rank, path) for path in files if (rank := _cjk_rank(path)) is not None)
    for _, path in ranked:
        if _covers(path, "候補地"):
            if path not in known:
                font_manager.fontManager.addfont(path)
            return str(font_manager.FontProperties(fname=path).get_name())
    return None


def _cjk_rank(path: str) -> int | None:
    """Preference of a font file among :data:`_CJK_FILES` (lower first), or None."""
    name = Path(path).name.lower().replace("_", "").replace(" ", "")
    return next((i for i, prefix in enumerate(_CJK_FILES) if name.startswith(prefix)), None)


@functools.cache
def _charmap(path: str) -> frozenset[int]:
    from matplotlib.ft2font import FT2Font

    try:
        return frozenset(FT2Font(path).get_charmap())
    except (OSError, RuntimeError, ValueError):
        return frozenset()


def _covers(path: str, text: str) -> bool:
    charmap = _charmap(path)
    return all(ord(ch) in charmap for ch in text if not ch.isspace())


def _font_paths(families: Sequence[str]) -> list[str]:
    from matplotlib import font_manager

    return [font_manager.findfont(font_manager.FontProperties(family=f), fallback_to_default=False)
            for f in families]


def figure_lang(lang: str) -> str:
    """``lang`` when the figures can draw it: Japanese needs a CJK font, else English.

    Examples
    --------
    >>> figure_lang("en")
    'en'
    >>> figure_lang("ja") in ("ja", "en")
    True
    """
    return "ja" if lang == "ja" and cjk_font() is not None else "en"


def _families(lang: str) -> list[str]:
    """Japanese: the CJK font first (DejaVu for what it lacks); English: DejaVu Sans only."""
    cjk = cjk_font()
    return [cjk, _BASE_FONT] if lang == "ja" and cjk is not None else [_BASE_FONT]


def _bold(lang: str) -> str:
    """Bold where the font has a bold face (CJK fonts such as IPAGothic have none)."""
    return "normal" if figure_lang(lang) == "ja" else "bold"


def _drawable(text: str, fallback: str, families: Sequence[str]) -> str:
    """``text`` when some font of ``families`` has every glyph of it, else ``fallback``."""
    paths = _font_paths(families)
    if all(any(ord(ch) in _charmap(p) for p in paths) for ch in text if not ch.isspace()):
        return text
    return fallback


def _rc(lang: str) -> Any:
    return {"font.family": _families(lang), "font.size": 10, "axes.titlesize": 11,
            "axes.unicode_minus": False, "savefig.facecolor": "white"}


# --------------------------------------------------------------------------- rasters


def read_grid(path: str | Path, *, max_size: int = 1500
              ) -> tuple[np.ndarray, tuple[float, float, float, float]]:
    """Band 1 of a raster (NaN for no data), decimated to at most ``max_size`` a side.

    Returns
    -------
    (ndarray, (left, right, bottom, top))
        Values and the extent for ``imshow`` in the raster's CRS.

    Examples
    --------
    >>> import tempfile, rasterio
    >>> from affine import Affine
    >>> tif = Path(tempfile.mkdtemp()) / "g.tif"
    >>> with rasterio.open(tif, "w", driver="GTiff", width=30, height=20, count=1,
    ...                    dtype="float32", nodata=-9999, crs="EPSG:6681",
    ...                    transform=Affine(5, 0, 0, 0, -5, 100)) as ds:
    ...     ds.write(np.ones((1, 20, 30), "float32"))
    >>> values, extent = read_grid(tif, max_size=10)
    >>> values.shape, extent
    ((7, 10), (0.0, 150.0, 0.0, 100.0))
    """
    import rasterio
    from rasterio.enums import Resampling

    with rasterio.open(path) as ds:
        scale = max(1.0, max(ds.width, ds.height) / max_size)
        shape = (max(1, round(ds.height / scale)), max(1, round(ds.width / scale)))
        values = ds.read(1, out_shape=shape, masked=True, resampling=Resampling.bilinear)
        b = ds.bounds
    return values.astype("float64").filled(np.nan), (b.left, b.right, b.bottom, b.top)


# --------------------------------------------------------------------------- overlay


def _site_labels(sites: pd.DataFrame, lang: str, families: Sequence[str]) -> pd.Series:
    names = sites["name"].astype(str) if "name" in sites else sites.index.astype(str)
    if lang == "ja" and "name_ja" in sites:
        ja = sites["name_ja"]
        names = ja.where(ja.notna() & (ja.astype(str) != ""), names).astype(str)
    marks = sites["overall"].astype(str) if "overall" in sites else pd.Series("", sites.index)
    return pd.Series([_drawable(f"{mark} {name}".strip(), f"{mark} {site}".strip(), families)
                      for site, name, mark in zip(sites.index, names, marks)], index=sites.index)


def _draw_rasters(ax: Axes, dem: tuple[np.ndarray, Any] | None,
                  depth: tuple[np.ndarray, Any] | None, *, wet_threshold: float) -> None:
    from matplotlib.colors import BoundaryNorm, ListedColormap

    if dem is not None:
        values, extent = dem
        cell = abs(extent[1] - extent[0]) / values.shape[1]
        ax.imshow(shaded_relief(values, cellsize=cell), extent=extent, zorder=0,
                  interpolation="bilinear")
    if depth is not None:
        values, extent = depth
        ranks = np.ma.masked_equal(depth_classes(values, wet_threshold=wet_threshold), 0)
        cmap = ListedColormap(list(DEPTH_COLOURS))
        ax.imshow(ranks, extent=extent, cmap=cmap, norm=BoundaryNorm(np.arange(0.5, 9.5), 8),
                  alpha=0.85, zorder=1, interpolation="nearest")


def _draw_vectors(ax: Axes, sites: gpd.GeoDataFrame, roads: gpd.GeoDataFrame | None,
                  routes: gpd.GeoDataFrame | None, poi: gpd.GeoDataFrame | None, *,
                  width_column: str, kind_column: str) -> None:
    if roads is not None and len(roads):
        width = pd.to_numeric(roads[width_column], errors="coerce").fillna(6.0) \
            if width_column in roads else pd.Series(6.0, index=roads.index)
        roads.plot(ax=ax, color="#777777", linewidth=np.clip(width.to_numpy(float) / 4, 0.8, 3),
                   zorder=2)
    if routes is not None and len(routes):
        for kind, colour, style in (("from_street", "#e66101", "--"),
                                    ("from_centre", "#1f4e9c", "-")):
            part = routes[routes["kind"] == kind]
            if len(part):
                part.plot(ax=ax, color=colour, linestyle=style, linewidth=2.2, zorder=3)
    colours = sites["overall"].map(MARK_COLOURS).fillna(MARK_COLOURS["—"]) \
        if "overall" in sites else MARK_COLOURS["—"]
    sites.plot(ax=ax, color=colours, edgecolor="#111111", linewidth=1.0, alpha=0.85, zorder=4)
    if poi is not None and len(poi):
        kinds = poi.get(kind_column, pd.Series("", index=poi.index)).astype(str)
        ax.scatter(poi.geometry.x, poi.geometry.y, s=70, zorder=6, edgecolors="white",
                   linewidths=1.5, c=[POI_COLOURS.get(k, "#444444") for k in kinds])


def _label_sites(ax: Axes, sites: gpd.GeoDataFrame, labels: pd.Series, weight: str) -> None:
    from matplotlib import patheffects

    halo = [patheffects.withStroke(linewidth=3, foreground="white")]
    bounds = sites.bounds
    for site in sites.index:  # above the parcel, so its colour stays visible
        x = (bounds.at[site, "minx"] + bounds.at[site, "maxx"]) / 2
        ax.annotate(labels[site], (x, bounds.at[site, "maxy"]), xytext=(0, 3),
                    textcoords="offset points", ha="center", va="bottom", fontsize=9,
                    fontweight=weight, zorder=7, path_effects=halo)


def _north_arrow(ax: Axes, weight: str) -> None:
    ax.annotate("N", xy=(0.05, 0.95), xytext=(0.05, 0.85), xycoords="axes fraction",
                ha="center", va="center", fontsize=13, fontweight=weight, zorder=9,
                arrowprops={"arrowstyle": "-|>,head_width=0.5,head_length=0.9",
                            "color": "black", "lw": 2},
                bbox={"boxstyle": "circle,pad=0.2", "fc": "white", "ec": "none", "alpha": 0.8})


def nice_length(span: float) -> float:
    """A round scale-bar length up to a quarter of ``span`` (metres).

    Examples
    --------
    >>> nice_length(3000.0), nice_length(420.0), nice_length(12_000.0)
    (500.0, 100.0, 2000.0)
    """
    target = span / 4.0
    power = 10 ** math.floor(math.log10(target))
    return float(max(m * power for m in (1, 2, 5) if m * power <= target))


def _scale_bar(ax: Axes) -> None:
    from matplotlib.patches import Rectangle

    x0, x1 = ax.get_xlim()
    y0, y1 = ax.get_ylim()
    length = nice_length(x1 - x0)
    left, base, height = x0 + 0.04 * (x1 - x0), y0 + 0.05 * (y1 - y0), 0.012 * (y1 - y0)
    ax.add_patch(Rectangle((left - 0.01 * (x1 - x0), base - 0.9 * height),
                           length + 0.02 * (x1 - x0), 4.3 * height, fc="white", ec="none",
                           alpha=0.8, zorder=8))
    for i in range(4):
        ax.add_patch(Rectangle((left + i * length / 4, base), length / 4, height, zorder=9,
                               fc="black" if i % 2 == 0 else "white", ec="black", lw=0.8))
    unit, div = ("km", 1000.0) if length >= 1000 else ("m", 1.0)
    for v in (0.0, length / 2, length):
        ax.text(left + v, base + 1.6 * height, f"{v / div:g}", ha="center", va="bottom",
                fontsize=8, zorder=9)
    ax.text(left + length + 0.012 * (x1 - x0), base + 0.5 * height, unit, va="center",
            fontsize=8, zorder=9)


def _legends(ax: Axes, t: Mapping[str, str], marks: Mapping[str, str], *, depth_name: str | None,
             lang: str, places: Sequence[str], kinds: Mapping[str, str]) -> None:
    """Two legends right of the map: marks, lines and points; then the depth ranks."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    handles: list[Any] = [Patch(fc=MARK_COLOURS[m], ec="#111111", label=f"{m} {w}")
                          for m, w in marks.items() if m != "—"]
    handles += [Line2D([], [], color="#777777", lw=2, label=t["roads"]),
                Line2D([], [], color="#1f4e9c", lw=2.2, label=t["from_centre"]),
                Line2D([], [], color="#e66101", lw=2.2, ls="--", label=t["from_street"])]
    handles += [Line2D([], [], ls="", marker="o", ms=8, mfc=POI_COLOURS.get(k, "#444444"),
                       mec="white", label=kinds.get(k, k.replace("_", " "))) for k in places]
    first = ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.02, 1.0),
                      fontsize=9, frameon=False, title=t["marks"], title_fontsize=10,
                      alignment="left")
    if depth_name is None:
        return
    ax.add_artist(first)
    ranks = [Patch(fc=c, ec="#999999", label=label) for c, label in depth_legend_labels(lang)]
    ax.legend(handles=ranks, loc="lower left", bbox_to_anchor=(1.02, 0.0), fontsize=9,
              frameon=False, title=f"{t['depth']} (m)\n{depth_name}", title_fontsize=10,
              alignment="left")


def overlay_figure(
    sites: gpd.GeoDataFrame,
    *,
    dem: tuple[np.ndarray, tuple[float, float, float, float]] | None = None,
    depth: tuple[np.ndarray, tuple[float, float, float, float]] | None = None,
    depth_name: str = "",
    roads: gpd.GeoDataFrame | None = None,
    routes: gpd.GeoDataFrame | None = None,
    poi: gpd.GeoDataFrame | None = None,
    title: str = "",
    lang: str = "en",
    wet_threshold: float = 0.0,
    width_column: str = "width",
    kind_column: str = "kind",
) -> Figure:
    """The site overlay in the study's metric CRS.

    Parameters
    ----------
    sites : GeoDataFrame
        Parcels indexed by site id with ``name`` (``name_ja``) and ``overall``.
    dem, depth : (ndarray, extent), optional
        From :func:`read_grid`, in the sites' CRS.
    depth_name : str
        Scenario label of the depth raster (subtitle).
    roads, routes, poi : GeoDataFrame, optional
        In the sites' CRS.
    title : str
    lang : {"en", "ja"}
        Japanese only when a CJK font is installed (:func:`figure_lang`).

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import geopandas as gpd
    >>> from shapely.geometry import box
    >>> sites = gpd.GeoDataFrame({"name": ["Hilltop"], "overall": ["◎"]},
    ...                          geometry=[box(0, 0, 100, 100)], index=["S2"], crs=6681)
    >>> fig = overlay_figure(sites, title="Demo")
    >>> [t.get_text() for t in fig.axes[0].texts if t.get_text().startswith("◎")]
    ['◎ Hilltop']
    """
    import matplotlib
    from matplotlib.figure import Figure

    from pipeline.maps import text as map_text

    lang = figure_lang(lang)
    t, families = _TEXT[lang], _families(lang)
    x0, x1, y0, y1 = _extent(sites, routes)
    width = 9.0
    height = float(np.clip(width * (y1 - y0) / (x1 - x0), 4.5, 11.0))
    with matplotlib.rc_context(_rc(lang)):
        fig = Figure(figsize=(width + 3.4, height + 1.2), dpi=150, layout="constrained")
        ax = fig.add_subplot()
        _draw_rasters(ax, dem, depth, wet_threshold=wet_threshold)
        _draw_vectors(ax, sites, roads, routes, poi, width_column=width_column,
                      kind_column=kind_column)
        _frame(ax, (x0, x1, y0, y1), sites.crs, t)
        _label_sites(ax, sites, _site_labels(sites, lang, families), _bold(lang))
        _north_arrow(ax, _bold(lang))
        _scale_bar(ax)
        places = sorted(set(poi[kind_column].astype(str))) if poi is not None and \
            kind_column in poi else []
        shown = _drawable(depth_name, "", families) if depth is not None else None
        _legends(ax, t, map_text(lang)["marks"], depth_name=shown, lang=lang, places=places,
                 kinds=map_text(lang)["kinds"])
        subtitle = t["overlay"]
        fig.suptitle(_drawable(f"{title}\n{subtitle}" if title else subtitle, subtitle, families),
                     fontsize=13, fontweight=_bold(lang))
    return fig


def _extent(sites: gpd.GeoDataFrame, routes: gpd.GeoDataFrame | None
            ) -> tuple[float, float, float, float]:
    """``(x0, x1, y0, y1)``: the sites and routes with a margin, in their CRS."""
    boxes = [sites.total_bounds] + ([routes.total_bounds] if routes is not None and len(routes)
                                    else [])
    x0, y0 = min(b[0] for b in boxes), min(b[1] for b in boxes)
    x1, y1 = max(b[2] for b in boxes), max(b[3] for b in boxes)
    pad = max(0.12 * max(x1 - x0, y1 - y0), 150.0)
    return x0 - pad, x1 + pad, y0 - pad, y1 + pad


def _frame(ax: Axes, extent: tuple[float, float, float, float], crs: Any,
           t: Mapping[str, str]) -> None:
    """Zoom to ``extent``; metric axes with thousands separators."""
    from matplotlib.ticker import FuncFormatter

    ax.set_xlim(extent[0], extent[1])
    ax.set_ylim(extent[2], extent[3])
    ax.set_aspect("equal")
    fmt = FuncFormatter(lambda v, _: f"{v:,.0f}")
    ax.xaxis.set_major_formatter(fmt)
    ax.yaxis.set_major_formatter(fmt)
    ax.set_xlabel(f"{t['x']}  {crs.to_string() if crs is not None else ''}".strip(), fontsize=8)
    ax.set_ylabel(t["y"], fontsize=8)
    ax.tick_params(labelsize=7)


# --------------------------------------------------------------------------- profiles


def profiles_figure(
    profiles: pd.DataFrame,
    sites: pd.DataFrame,
    *,
    levels: Mapping[Any, Sequence[tuple[str, float]]],
    title: str = "",
    lang: str = "en",
    kind: str = "from_centre",
) -> Figure:
    """One elevation profile per site along its route, with the design water levels.

    Parameters
    ----------
    profiles : DataFrame
        ``site_id, kind, distance_m, elevation_m`` (the access stage's profiles).
    sites : DataFrame
        Indexed by site id, with ``name`` (``name_ja``) and ``overall``.
    levels : mapping
        Site id to ``[(label, level m T.P.), ...]`` (:func:`pipeline.maps.scenario_levels`).
    title : str
    lang : {"en", "ja"}
    kind : str
        Which profile of each site.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> profiles = pd.DataFrame({"site_id": "S2", "kind": "from_centre",
    ...                          "distance_m": [0.0, 600.0], "elevation_m": [3.2, 44.0]})
    >>> sites = pd.DataFrame({"name": ["Hilltop"], "overall": ["◎"]}, index=["S2"])
    >>> fig = profiles_figure(profiles, sites, levels={"S2": [("Tsunami", 13.9)]})
    >>> fig.axes[0].get_title(), fig.axes[0].get_lines()[-1].get_ydata()[0]
    ('S2  ◎ Hilltop', 13.9)
    """
    import matplotlib
    from matplotlib.figure import Figure

    lang = figure_lang(lang)
    t, families = _TEXT[lang], _families(lang)
    mine = profiles[profiles["kind"] == kind] if len(profiles) else profiles
    n = max(1, len(sites))
    cols = min(3, n)
    rows = math.ceil(n / cols)
    labels = _site_labels(sites, lang, families)
    with matplotlib.rc_context(_rc(lang)):
        fig = Figure(figsize=(5.0 * cols, 3.4 * rows + 0.6), dpi=150, layout="constrained")
        axes = fig.subplots(rows, cols, sharey=True, squeeze=False).ravel()
        for ax, site in zip(axes, sites.index):
            part = mine[mine["site_id"] == site].sort_values("distance_m")
            _profile_panel(ax, part, levels.get(site, ()), t, families)
            ax.set_title(f"{site}  {labels[site]}", fontsize=10, fontweight=_bold(lang))
        for ax in axes[len(sites):]:
            ax.set_visible(False)
        for ax in axes[::cols]:
            ax.set_ylabel(t["elevation"])
        heading = t["profiles"]
        fig.suptitle(_drawable(f"{title}\n{heading}" if title else heading, heading, families),
                     fontsize=13, fontweight=_bold(lang))
    return fig


def _profile_panel(ax: Axes, part: pd.DataFrame, levels: Sequence[tuple[str, float]],
                   t: Mapping[str, str], families: Sequence[str]) -> None:
    if len(part) == 0:
        ax.text(0.5, 0.5, t["no_route"], ha="center", va="center", transform=ax.transAxes)
        return
    d, z = part["distance_m"].to_numpy(float), part["elevation_m"].to_numpy(float)
    ax.fill_between(d, min(0.0, np.nanmin(z)), z, color="#e3d3b0", zorder=1)
    ax.plot(d, z, color="#6b4f2a", lw=1.6, zorder=2, label=t["ground"])
    drawn = [(i, label, level) for i, (label, level) in enumerate(levels) if np.isfinite(level)]
    for j, (i, label, level) in enumerate(drawn):  # labels alternate left and right
        colour = LEVEL_COLOURS[i % len(LEVEL_COLOURS)]
        ax.axhline(level, color=colour, ls="--", lw=1.3, zorder=3)
        text = _drawable(f"{label}: {level:.1f} m", f"{level:.1f} m", families)
        ax.text(0.02 if j % 2 == 0 else 0.98, level, text, transform=ax.get_yaxis_transform(),
                color=colour, fontsize=8, va="bottom", ha="left" if j % 2 == 0 else "right",
                zorder=4, bbox={"fc": "white", "ec": "none", "alpha": 0.7, "pad": 0.5})
    ax.set_xlim(0, max(d.max(), 1.0))
    ax.set_xlabel(t["distance"], fontsize=9)
    ax.grid(True, color="#dddddd", lw=0.6)
    ax.tick_params(labelsize=8)


# --------------------------------------------------------------------------- output


def save_png(fig: Figure, path: str | Path, *, dpi: int = 150) -> Path:
    """Write ``fig`` as PNG atomically (Agg canvas) and return the path.

    Examples
    --------
    >>> import tempfile
    >>> from matplotlib.figure import Figure
    >>> out = save_png(Figure(figsize=(2, 1)), Path(tempfile.mkdtemp()) / "f" / "x.png", dpi=50)
    >>> out.name, out.read_bytes()[1:4]
    ('x.png', b'PNG')
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from pipeline._io import write_atomic

    FigureCanvasAgg(fig)
    return write_atomic(Path(path), lambda tmp: fig.savefig(tmp, format="png", dpi=dpi))


def _depth_scenario(scenarios: Sequence[Any]) -> Any | None:
    """The scenario shown on the overlay: the first tsunami with a depth raster, else any."""
    with_depth = [s for s in scenarios if s.depth is not None]
    tsunami = [s for s in with_depth if s.kind == "tsunami"]
    return (tsunami or with_depth or [None])[0]


def write_figures(ctx: Any, frames: Mapping[str, Any], *, lang: str) -> dict[str, Path]:
    """Draw and write ``figures/overlay.png`` and ``figures/profiles.png`` for the maps stage.

    Parameters
    ----------
    ctx : pipeline.runner.Context
    frames : mapping
        ``sites``, ``routes``, ``profiles``, ``roads``, ``poi`` in the study CRS
        (as read by the maps stage).
    lang : {"en", "ja"}

    Returns
    -------
    dict of str to Path
        ``{"overlay": ..., "profiles": ...}``.
    """
    study, sites = ctx.study, frames["sites"]
    scenario = _depth_scenario(study.scenario)
    depth = read_grid(ctx.raster(scenario.depth, scenario.name)) if scenario else None
    dem = read_grid(ctx.dem)
    title = study.maps.title or study.study.name
    roads_spec, poi_spec = study.layers.roads, study.layers.poi
    overlay = overlay_figure(
        sites, dem=dem, depth=depth, depth_name=(scenario.label or scenario.name) if scenario
        else "", roads=frames["roads"], routes=frames["routes"], poi=frames["poi"], title=title,
        lang=lang, wet_threshold=study.hazard.wet_threshold,
        width_column=roads_spec.width_column if roads_spec else "width",
        kind_column=poi_spec.kind_column if poi_spec else "kind")
    profiles = frames["profiles"] if frames["profiles"] is not None else pd.DataFrame(
        columns=["site_id", "kind", "distance_m", "elevation_m"])
    chart = profiles_figure(profiles, sites, levels=scenario_levels(sites, study.scenario),
                            title=title, lang=lang)
    folder = ctx.output / "figures"
    return {"overlay": save_png(overlay, folder / "overlay.png"),
            "profiles": save_png(chart, folder / "profiles.png")}
