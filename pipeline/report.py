"""The comparison table for reports: sites as columns, criteria as rows, value and mark.

As in the Japanese plans: each criterion row shows every site's metric with its
unit and its mark (◎ ○ △ ×), then the overall mark and rank. Written as a styled,
printable HTML page and as CSV (UTF-8 with BOM, so spreadsheet programs read the
Japanese). Labels in English or Japanese; the marks are the Japanese ones either
way. Every value is HTML-escaped.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

import numpy as np
import pandas as pd

from pipeline.columns import describe, label
from pipeline.config import Criterion

_TEXT = {
    "en": {"criterion": "Criterion", "overall": "Overall", "rank": "Rank", "score": "Score",
           "robust": "Ranks first under weight changes", "legend":
           "◎ best · ○ acceptable · △ weak · × unacceptable", "veto": "veto"},
    "ja": {"criterion": "評価項目", "overall": "総合評価", "rank": "順位", "score": "総合点",
           "robust": "重み変更時に1位となる割合", "legend": "◎ 適切 · ○ 可 · △ やや不利 · × 不適",
           "veto": "必須"},
}


_COUNTS = ("entrances", "roads", "stalls", "storeys", "storey", "people", "cells", "points")


def format_value(value: object, unit: str) -> str:
    """A metric for the table: rounded sensibly, with its unit.

    Examples
    --------
    >>> format_value(629712.2, "m3"), format_value(2.1, "m"), format_value(0.6, "share")
    ('629,712 m3', '2.1 m', '60 %')
    >>> format_value(True, ""), format_value(float("nan"), "m")
    ('yes', '—')
    >>> format_value(1.0, "share"), format_value(2.0, "entrances"), format_value(0.0, "m3")
    ('100 %', '2', '0 m3')
    """
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "—"
    if isinstance(value, (int, float, np.number)):
        v = float(value)
        if abs(v) < 0.005:
            v = 0.0  # e.g. 0.0002 m3 of cut on a flat pad: no earthwork
        if unit == "share":
            return f"{v * 100:.0f} %"
        if unit in _COUNTS:
            return f"{v:,.0f}"
        if v.is_integer() and unit not in ("m", "m T.P."):
            return f"{v:,.0f} {unit}".strip()
        text = f"{v:,.0f}" if abs(v) >= 1000 else f"{v:,.1f}" if abs(v) >= 1 or v == 0 else f"{v:.2f}"
        return f"{text} {unit}".strip()
    return str(value)


def comparison_table(
    sites: pd.DataFrame,
    criteria: Sequence[Criterion],
    *,
    lang: str = "en",
) -> pd.DataFrame:
    """Criteria as rows, sites as columns, each cell ``"value unit mark"``.

    Parameters
    ----------
    sites : DataFrame
        The sites table with the metrics and the score stage's ``mark_*``,
        ``overall``, ``rank``, ``score`` and ``first_share`` columns.
    criteria : sequence of Criterion
    lang : {"en", "ja"}

    Returns
    -------
    DataFrame
        Index: criterion labels then the overall rows; columns: site names.
    """
    t = _TEXT[lang]
    names = sites["name"].astype(str) if "name" in sites else sites.index.astype(str)
    rows = {}
    for c in criteria:
        doc = describe(c.metric)
        unit = doc.unit if doc else ""
        text = (c.label_ja if lang == "ja" else c.label) or label(c.metric, lang)
        if c.veto:
            text += f" ({t['veto']})"
        rows[text] = [f"{format_value(v, unit)} {m}" for v, m in
                      zip(sites[c.metric], sites[f"mark_{c.metric}"])]
    rows[t["score"]] = [format_value(v, "") for v in sites["score"]]
    rows[t["overall"]] = list(sites["overall"])
    rows[t["rank"]] = [str(r) for r in sites["rank"]]
    if "first_share" in sites:
        rows[t["robust"]] = [format_value(v, "share") for v in sites["first_share"]]
    out = pd.DataFrame.from_dict(rows, orient="index", columns=list(names))
    out.index.name = t["criterion"]
    return out


_CSS = """
body { font-family: "Noto Sans CJK JP", "IPAGothic", "Hiragino Sans", sans-serif; margin: 2em; }
h1 { font-size: 1.3em; }
table { border-collapse: collapse; }
th, td { border: 1px solid #888; padding: 0.35em 0.8em; text-align: center; }
th { background: #eef2f6; }
tbody th { text-align: left; font-weight: normal; }
tr.overall td { font-size: 1.4em; font-weight: bold; }
p.legend { color: #444; }
@media print { body { margin: 0; } th { background: #eee !important;
  -webkit-print-color-adjust: exact; print-color-adjust: exact; } }
"""


def comparison_html(table: pd.DataFrame, *, title: str, lang: str = "en") -> str:
    """A self-contained, printable HTML page of :func:`comparison_table`; all text escaped.

    Examples
    --------
    >>> t = pd.DataFrame({"<b>A</b>": ["2.1 m ◎"]}, index=["Margin"])
    >>> "&lt;b&gt;A&lt;/b&gt;" in comparison_html(t, title="x")
    True
    """
    esc = html.escape
    overall = _TEXT[lang]["overall"]
    head = "".join(f"<th>{esc(str(c))}</th>" for c in table.columns)
    body = []
    for idx, row in table.iterrows():
        cls = ' class="overall"' if idx == overall else ""
        cells = "".join(f"<td>{esc(str(v))}</td>" for v in row)
        body.append(f"<tr{cls}><th>{esc(str(idx))}</th>{cells}</tr>")
    return (f'<!DOCTYPE html>\n<html lang="{lang}"><head><meta charset="utf-8">'
            f"<title>{esc(title)}</title><style>{_CSS}</style></head><body>"
            f"<h1>{esc(title)}</h1><table><thead><tr><th>{esc(str(table.index.name or ''))}"
            f"</th>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
            f'<p class="legend">{esc(_TEXT[lang]["legend"])}</p></body></html>\n')
