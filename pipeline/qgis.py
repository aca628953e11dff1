"""A default QGIS style stored inside the sites GeoPackage.

QGIS reads a layer's default style from the GeoPackage table ``layer_styles``
(the table QGIS itself writes with "Save style > In database"). Storing one
there means GIS staff who open ``sites.gpkg`` see the parcels coloured by their
overall mark (◎ ○ △ ×) with the site name as label, without any setup.
"""

from __future__ import annotations

import html
import sqlite3
import time
from pathlib import Path

MARK_COLOURS = {"◎": "#1a9641", "○": "#a6d96a", "△": "#fdae61", "×": "#d7191c", "—": "#bdbdbd"}
"""Colours of the overall marks, shared with the interactive map and the figures."""

_CREATE = """
CREATE TABLE IF NOT EXISTS layer_styles (
  id INTEGER PRIMARY KEY AUTOINCREMENT, f_table_catalog TEXT(256), f_table_schema TEXT(256),
  f_table_name TEXT(256), f_geometry_column TEXT(256), styleName TEXT(30), styleQML TEXT,
  styleSLD TEXT, useAsDefault BOOLEAN, description TEXT, owner TEXT(30), ui TEXT(30),
  update_time DATETIME DEFAULT CURRENT_TIMESTAMP)
"""


def _symbol(name: str, colour: str) -> str:
    r, g, b = (int(colour[i:i + 2], 16) for i in (1, 3, 5))
    return (f'<symbol name="{name}" type="fill" alpha="0.75"><layer class="SimpleFill">'
            f'<Option type="Map"><Option name="color" type="QString" value="{r},{g},{b},255"/>'
            '<Option name="outline_color" type="QString" value="35,35,35,255"/>'
            '<Option name="outline_width" type="QString" value="0.4"/>'
            '<Option name="style" type="QString" value="solid"/></Option></layer></symbol>')


def style_qml(field: str = "overall", label_field: str = "name") -> str:
    """QML of a categorized renderer on ``field`` with the mark colours, labelled by name.

    Examples
    --------
    >>> qml = style_qml()
    >>> qml.count("<category ") == len(MARK_COLOURS), 'attr="overall"' in qml
    (True, True)
    """
    cats = "".join(f'<category value="{html.escape(m)}" symbol="{i}" label="{html.escape(m)}" '
                   'render="true"/>' for i, m in enumerate(MARK_COLOURS))
    syms = "".join(_symbol(str(i), c) for i, c in enumerate(MARK_COLOURS.values()))
    return ('<!DOCTYPE qgis PUBLIC \'http://mrcc.com/qgis.dtd\' \'SYSTEM\'>'
            '<qgis version="3.28" styleCategories="Symbology|Labeling">'
            f'<renderer-v2 type="categorizedSymbol" attr="{html.escape(field)}" '
            f'enableorderby="0"><categories>{cats}</categories><symbols>{syms}</symbols>'
            '</renderer-v2><labeling type="simple"><settings>'
            f'<text-style fieldName="{html.escape(label_field)}" fontSize="10" '
            'textColor="0,0,0,255"><text-buffer bufferDraw="1" bufferSize="1" '
            'bufferColor="255,255,255,255"/></text-style></settings></labeling>'
            '<labelsEnabled>1</labelsEnabled></qgis>')


def add_layer_style(gpkg: Path, layer: str, *, marks: bool = True) -> None:
    """Store the default style of ``layer`` in ``gpkg`` (replacing an earlier siteplan style).

    Without marks (no criteria in the study) the parcels are coloured by nothing
    in particular: a single grey category is still a readable default.
    """
    qml = style_qml("overall" if marks else "name")
    with sqlite3.connect(gpkg) as db:
        db.execute(_CREATE)
        db.execute("DELETE FROM layer_styles WHERE f_table_name = ? AND styleName = ?",
                   (layer, "siteplan"))
        db.execute(
            "INSERT INTO layer_styles (f_table_catalog, f_table_schema, f_table_name, "
            "f_geometry_column, styleName, styleQML, styleSLD, useAsDefault, description, owner, "
            "ui, update_time) VALUES ('', '', ?, 'geom', 'siteplan', ?, '', 1, ?, '', '', ?)",
            (layer, qml, "Parcels by overall mark (siteplan)", time.strftime("%Y-%m-%dT%H:%M:%S")))
