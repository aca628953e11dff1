"""Turn parsed TOML into frozen dataclasses, gathering every problem.

The study schema is written as frozen dataclasses (see :mod:`pipeline.config`).
Each field carries ``metadata`` with its documentation (``doc``), ``unit`` and
bounds (``min``, ``max``, ``gt``); :func:`build` walks the dataclass, coerces
every value to the field's type, checks bounds and unknown keys, and records
each problem with the dotted key, the value found and what is allowed. The
caller raises them all at once.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, Union

_MISSING = dataclasses.MISSING


def field(default: Any = _MISSING, *, doc: str, unit: str = "", **bounds: Any) -> Any:
    """A dataclass field carrying documentation and bounds for the study schema.

    Examples
    --------
    >>> from dataclasses import dataclass
    >>> @dataclass(frozen=True)
    ... class Demo:
    ...     ratio: float = field(0.6, doc="coverage ratio", min=0.0, max=1.0)
    >>> build(Demo, {"ratio": 0.8}, "zoning", Path("."), []).ratio
    0.8
    """
    meta = {"doc": doc, "unit": unit, **bounds}
    if isinstance(default, (list, dict, set)):
        raise TypeError("use a tuple or a default_factory for mutable defaults")
    if default is _MISSING:
        return dataclasses.field(metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def _describe(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if origin in (Union, types.UnionType):
        return " or ".join(_describe(a) for a in typing.get_args(tp) if a is not type(None))
    if origin is tuple:
        return f"a list of {_describe(typing.get_args(tp)[0])}"
    if origin is dict:
        return f"a table of {_describe(typing.get_args(tp)[1])}"
    if dataclasses.is_dataclass(tp):
        return "a table"
    return {float: "a number", int: "a whole number", bool: "true or false", str: "a string",
            Path: "a file path"}.get(tp, getattr(tp, "__name__", str(tp)))


def _coerce(value: Any, tp: Any, key: str, base: Path, problems: list[str], unit: str = "") -> Any:
    """Coerce one TOML value to ``tp``; append a problem and return None when it does not fit.

    ``unit`` (the field's) only shapes the hint given for a number written as text.
    """
    origin = typing.get_origin(tp)
    bad = f"{key} = {value!r}: expected {_describe(tp)}"
    if origin in (Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        sub: list[str] = []
        return _coerce(value, args[0], key, base, problems if len(args) == 1 else sub, unit)
    if origin is Literal:
        if value in typing.get_args(tp):
            return value
        close = difflib.get_close_matches(str(value), [str(a) for a in typing.get_args(tp)], n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        problems.append(bad + hint)
        return None
    if origin is tuple:
        if not isinstance(value, list):
            problems.append(bad)
            return None
        item = typing.get_args(tp)[0]
        return tuple(_coerce(v, item, f"{key}[{i}]", base, problems) for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, Mapping):
            problems.append(bad)
            return None
        item = typing.get_args(tp)[1]
        return types.MappingProxyType(
            {str(k): _coerce(v, item, f"{key}.{k}", base, problems) for k, v in value.items()}
        )
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, Mapping):
            problems.append(bad)
            return None
        return build(tp, value, key, base, problems)  # type: ignore[arg-type]
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif tp is str:
        if isinstance(value, str):
            return value
    elif tp is Path:
        if isinstance(value, str) and value:
            path = Path(value).expanduser()
            return path if path.is_absolute() else (base / path).resolve()
    if tp in (int, float) and isinstance(value, str):
        number = re.match(r"\s*([-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?)", value)
        leaf = key.rsplit(".", 1)[-1]
        if number is None:
            bad += "; write a number without quotes"
        else:
            n = float(number.group(1))
            shown = f"{n / 100:g}" if unit == "share" and "%" in value else number.group(1)
            bad += (f"; write the number alone, without quotes or units (e.g. {leaf} = {shown}"
                    + (", a share" if unit == "share" else f", in {unit}" if unit else "") + ")")
    problems.append(bad)
    return None


def _check_bounds(value: Any, meta: Mapping[str, Any], key: str, problems: list[str]) -> None:
    values = value if isinstance(value, tuple) else (value,)
    for v in values:
        if not isinstance(v, (int, float)) or isinstance(v, bool):
            continue
        if "min" in meta and v < meta["min"]:
            problems.append(f"{key} = {v!r}: must be at least {meta['min']}")
        if "max" in meta and v > meta["max"]:
            hint = (f" (a share: {v:g} % is {v / 100:g})"
                    if meta.get("unit") == "share" and meta["max"] <= 1 < v <= 100 else "")
            problems.append(f"{key} = {v!r}: must be at most {meta['max']}{hint}")
        if "gt" in meta and v <= meta["gt"]:
            problems.append(f"{key} = {v!r}: must be greater than {meta['gt']}")


def build(cls: type, data: Mapping[str, Any], key: str, base: Path, problems: list[str]) -> Any:
    """Build the frozen dataclass ``cls`` from ``data``, appending problems to ``problems``.

    Parameters
    ----------
    cls : dataclass type
        The schema.
    data : mapping
        Parsed TOML table.
    key : str
        Dotted key of the table, used in messages (``""`` for the root).
    base : Path
        Folder that relative paths resolve against (the study file's folder).
    problems : list of str
        Receives one sentence per problem.

    Returns
    -------
    An instance of ``cls``, or None when a required key is missing or a value is unusable.
    """
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    prefix = f"{key}." if key else ""
    for name in data:
        if name not in fields:
            close = difflib.get_close_matches(name, list(fields), n=1, cutoff=0.6)
            hint = f"; did you mean '{prefix}{close[0]}'?" if close else ""
            allowed = ", ".join(sorted(fields))
            problems.append(f"unknown key '{prefix}{name}'{hint} (allowed here: {allowed})")
    kwargs: dict[str, Any] = {}
    ok = True
    for name, f in fields.items():
        full = f"{prefix}{name}"
        if name not in data:
            if f.default is _MISSING and f.default_factory is _MISSING:
                problems.append(f"missing key {full}: {f.metadata.get('doc', '')}".rstrip(": "))
                ok = False
            continue
        before = len(problems)
        value = _coerce(data[name], hints[name], full, base, problems,
                        unit=f.metadata.get("unit", ""))
        if len(problems) > before:
            ok = False
            continue
        _check_bounds(value, f.metadata, full, problems)
        kwargs[name] = value
    if not ok:
        return None
    try:
        obj = cls(**kwargs)
    except (TypeError, ValueError) as err:
        problems.append(f"{key or 'study'}: {err}")
        return None
    check = getattr(obj, "_check", None)
    if check is not None:
        problems.extend(f"{prefix}{msg}" for msg in check())
    return obj


def iter_schema(cls: type, key: str = "") -> typing.Iterator[tuple[str, str, Any, str, str]]:
    """Yield ``(dotted key, type, default, unit, doc)`` for every key of the schema.

    Examples
    --------
    >>> from dataclasses import dataclass
    >>> @dataclass(frozen=True)
    ... class Demo:
    ...     ratio: float = field(0.6, doc="coverage ratio", unit="-")
    >>> list(iter_schema(Demo))
    [('ratio', 'a number', 0.6, '-', 'coverage ratio')]
    """
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        full = f"{key}.{f.name}" if key else f.name
        tp = hints[f.name]
        inner = _dataclass_in(tp)
        default = f.default if f.default is not _MISSING else None
        if inner is not None:
            list_of = typing.get_origin(tp) is tuple
            yield from iter_schema(inner, f"{full}[]" if list_of else full)
            continue
        yield full, _describe(tp), default, f.metadata.get("unit", ""), f.metadata.get("doc", "")


def _dataclass_in(tp: Any) -> type | None:
    if dataclasses.is_dataclass(tp):
        return tp  # type: ignore[return-value]
    for arg in typing.get_args(tp):
        if dataclasses.is_dataclass(arg):
            return arg  # type: ignore[return-value]
    return None
