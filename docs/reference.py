"""Print README's reference tables (study-file keys, output columns) from the code.

    .venv/bin/python docs/reference.py study     # the "Study file reference" table
    .venv/bin/python docs/reference.py columns   # the "Output columns" table

tests/test_readme.py checks that README holds exactly these keys and columns.
"""

from __future__ import annotations

import sys

from pipeline._schema import iter_schema
from pipeline.columns import COLUMNS
from pipeline.config import Study


def _default(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, tuple):
        return "[" + ", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in value) + "]"
    if isinstance(value, bool):
        return str(value).lower()
    if hasattr(value, "as_posix"):
        return f'"{value.as_posix()}"'  # type: ignore[union-attr]
    if isinstance(value, str):
        return f'"{value}"'
    return str(value)


def study_table() -> str:
    rows = ["| key | type | default | unit | meaning |", "|---|---|---|---|---|"]
    for key, kind, default, unit, doc in iter_schema(Study):
        rows.append(f"| `{key}` | {kind} | {_default(default)} | {unit} | {doc} |")
    return "\n".join(rows)


def columns_table() -> str:
    rows = ["| column | unit | meaning |", "|---|---|---|"]
    for name, col in COLUMNS.items():
        rows.append(f"| `{name}` | {col.unit} | {col.label} ({col.label_ja}): {col.meaning} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print({"study": study_table, "columns": columns_table}[sys.argv[1]]())
