"""Required floor area of a civic building, computed the ways Japanese plans compute it.

A *programme spec* is a mapping (usually one table of a TOML file) with a ``method`` key
and that method's inputs; :func:`required_floor_area` turns it into a
:class:`ProgrammeResult`, an itemised table whose lines add up to the total.

Methods (keys besides ``method``; ``label``, ``name``, ``name_ja`` are always allowed):

``given``
    ``area``: the floor area stated by the study.
``mlit``
    MLIT government-office standard (新営一般庁舎面積算定基準): ``standard`` (packaged name
    such as ``"mlit"`` / ``"mlit_goka"`` or a path to a TOML file of the same schema),
    ``staff`` (grade -> head count), ``floors``, ``council_members``, ``specific`` and
    ``plant`` (lists of ``{name, area}``), optional ``night_duty_persons``, ``janitors``.
``per_person`` / ``evacuation``
    ``people`` x ``area_per_person``, or a named ``rate`` of ``data/standards/rates.toml``
    (evacuation defaults to 2.0 m2 per person).
``rooms``
    Sum of a room table: ``rooms`` (list of ``{name, area, count}``) or ``rooms_file`` (CSV).
``current_plus_new``
    ``current`` (list of ``{name, area}``) plus ``new`` (list) or the ``new_m2`` column of
    ``rooms_file``.
``existing_share``
    ``share`` of the sum of ``existing`` floor areas, the sum first rounded to
    ``round_sum_to`` m2 when given.

Rounding rule: Japanese plans print every line to 0.1 m2 and add the printed (rounded)
lines, rounding half up (四捨五入). All arithmetic here is done in :class:`decimal.Decimal`
from the decimal text of the inputs, each line is rounded half up to 0.1 m2, and
subtotals and totals are sums of rounded lines, so 686.4 x 0.13 = 89.232 -> 89.2 and
3,160.7 x 0.35 = 1,106.245 -> 1,106.2 as printed, and 0.05 cases round up.
"""

from __future__ import annotations

import logging
import math
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import pandas as pd

from pipeline.errors import ConfigError, InputNotFoundError, raise_all

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

logger = logging.getLogger(__name__)

DATA_DIR = Path(__file__).resolve().parent / "data"
STANDARDS_DIR = DATA_DIR / "standards"
PROGRAMMES_DIR = DATA_DIR / "programmes"
STEP = Decimal("0.1")
MLIT_SECTIONS = ("office", "ancillary", "specific", "plant", "circulation")
_COMMON_KEYS = frozenset({"method", "label", "name", "name_ja"})


@dataclass(frozen=True)
class ProgrammeLine:
    """One printed line of a floor-area calculation (areas in m2, rounded to 0.1)."""

    section: str
    item: str
    area_m2: float
    item_ja: str = ""
    quantity: float | None = None
    unit_area_m2: float | None = None
    basis: str = ""


@dataclass(frozen=True)
class ProgrammeResult:
    """Itemised required floor area; the total is the sum of the rounded lines.

    Attributes
    ----------
    method : str
        The spec's ``method``.
    lines : tuple of ProgrammeLine
        Every line, in the order the plans print them.
    source : str
        Standard or table the figures come from.
    facts : mapping
        Intermediate counts (staff, converted staff, ...).
    """

    method: str
    lines: tuple[ProgrammeLine, ...]
    source: str = ""
    facts: Mapping[str, float] = field(default_factory=dict)

    @property
    def total_m2(self) -> float:
        """Total floor area (m2): sum of the rounded lines."""
        return float(_sum(line.area_m2 for line in self.lines))

    @property
    def subtotals(self) -> dict[str, float]:
        """Subtotal (m2) per section, in the order the sections first appear."""
        out: dict[str, Decimal] = {}
        for line in self.lines:
            out[line.section] = out.get(line.section, Decimal(0)) + _dec(line.area_m2)
        return {key: float(value) for key, value in out.items()}

    def to_frame(self) -> pd.DataFrame:
        """The lines as a DataFrame (one row per line).

        Examples
        --------
        >>> res = required_floor_area({"method": "given", "area": 4288})
        >>> res.to_frame()[["section", "area_m2"]].to_dict("records")
        [{'section': 'given', 'area_m2': 4288.0}]
        """
        columns = ["section", "item", "item_ja", "quantity", "unit_area_m2", "area_m2", "basis"]
        rows = [{col: getattr(line, col) for col in columns} for line in self.lines]
        return pd.DataFrame(rows, columns=columns)


def round_m2(value: float | str | Decimal) -> float:
    """Round an area half up to 0.1 m2, as the plans print it.

    Parameters
    ----------
    value : float, str or Decimal
        Area in m2; floats are read from their shortest decimal text.

    Returns
    -------
    float

    Examples
    --------
    >>> round_m2(1106.245), round_m2(0.15), round(0.15, 1)
    (1106.2, 0.2, 0.1)
    """
    return float(_round(_dec(value)))


def required_floor_area(spec: Mapping[str, Any], *,
                        base_dir: str | Path | None = None) -> ProgrammeResult:
    """Required floor area of a building from a programme spec.

    Parameters
    ----------
    spec : mapping
        ``method`` plus that method's inputs (see the module docstring).
    base_dir : str or Path, optional
        Folder that relative file names in the spec (``rooms_file``, a ``standard``
        path) are resolved against, usually the study file's folder; without it such
        names must be absolute (as :func:`load_programmes` makes them).

    Returns
    -------
    ProgrammeResult

    Raises
    ------
    ConfigError
        A key is missing, unknown or out of range; the message names it.

    Examples
    --------
    >>> required_floor_area({"method": "per_person", "people": 122,
    ...                      "area_per_person": 35.3}).total_m2
    4306.6
    >>> required_floor_area(packaged_programme("hamanaka_2017")["mlit"]).subtotals
    {'office': 755.0, 'ancillary': 348.1, 'specific': 1791.6, 'plant': 266.0, 'circulation': 1106.2}
    """
    if not isinstance(spec, Mapping):
        raise ConfigError(f"programme spec: expected a table of keys, got {type(spec).__name__}")
    method = spec.get("method")
    if method not in _METHODS:
        found = "missing" if method is None else f"{method!r}"
        raise ConfigError(f"programme spec: key 'method' is {found}; use one of "
                          f"{', '.join(sorted(_METHODS))}")
    handler, keys = _METHODS[method]
    unknown = sorted(set(spec) - keys - _COMMON_KEYS)
    if unknown:
        raise ConfigError(f"programme spec (method {method!r}): unknown key(s) "
                          f"{', '.join(unknown)}; allowed: {', '.join(sorted(keys))}")
    base = Path(base_dir) if base_dir is not None else None
    result = handler(spec, base)
    logger.debug("programme %s: %.1f m2 in %d lines", method, result.total_m2,
                 len(result.lines))
    return result


def load_programmes(path: str | Path) -> dict[str, dict[str, Any]]:
    """Read a programme TOML file: each top-level table is one spec.

    ``rooms_file`` and path-like ``standard`` values are made absolute against the
    file's folder, so the specs can be passed to :func:`required_floor_area` directly.

    Parameters
    ----------
    path : str or Path
        The TOML file.

    Returns
    -------
    dict
        Table name -> spec.

    Examples
    --------
    >>> specs = load_programmes(PROGRAMMES_DIR / "hamanaka_2017.toml")
    >>> sorted(specs)
    ['current_plus_new', 'evacuation', 'mlit', 'per_person', 'rooms']
    """
    path = Path(path)
    data = _read_toml(path, what="programme file")
    for name, spec in data.items():
        if not isinstance(spec, dict):
            raise ConfigError(f"programme file {path}: top-level key {name!r} must be a table")
        for key, value in spec.items():
            if isinstance(value, str) and (key.endswith("_file") or
                                           (key == "standard" and _path_like(value))):
                spec[key] = str((path.parent / value).resolve())
    return data


def packaged_programme(name: str) -> dict[str, dict[str, Any]]:
    """Programme specs of a published plan shipped in ``pipeline/data/programmes``.

    Parameters
    ----------
    name : str
        ``"hamanaka_2017"``, ``"oyabe_2024"`` or ``"goka_2025"``.

    Returns
    -------
    dict

    Examples
    --------
    >>> packaged_programme("goka_2025")["site"]["area_m2"]
    16900.0
    """
    path = PROGRAMMES_DIR / f"{name}.toml"
    if not path.is_file():
        known = sorted(p.stem for p in PROGRAMMES_DIR.glob("*.toml"))
        raise ConfigError(f"packaged programme {name!r} does not exist; use one of "
                          f"{', '.join(known)}")
    return load_programmes(path)


def available_standards() -> list[str]:
    """Names of the packaged floor-area standards.

    Examples
    --------
    >>> available_standards()
    ['mlit', 'mlit_goka']
    """
    return sorted(p.stem for p in STANDARDS_DIR.glob("*.toml") if p.stem != "rates")


def load_standard(standard: str | Path, *, base_dir: str | Path | None = None) -> dict[str, Any]:
    """Read and validate a government-office standard (schema of ``data/standards/mlit.toml``).

    Parameters
    ----------
    standard : str or Path
        A packaged name (see :func:`available_standards`) or a path to a TOML file.
    base_dir : str or Path, optional
        Folder a relative path is resolved against (required for relative paths).

    Returns
    -------
    dict
        The standard's tables.

    Examples
    --------
    >>> load_standard("mlit_goka")["office"]["area_per_converted_person"]
    3.3
    """
    text = str(standard)
    if isinstance(standard, Path) or _path_like(text):
        path = _resolve(text, base_dir, "standard")
    else:
        path = STANDARDS_DIR / f"{text}.toml"
        if not path.is_file() or text == "rates":
            raise ConfigError(f"programme spec key 'standard': {text!r} is not a packaged "
                              f"standard ({', '.join(available_standards())}) nor a .toml path")
    data = _read_toml(path, what="standard file")
    raise_all(_standard_problems(data), ConfigError, f"standard file {path}")
    data.setdefault("name", path.stem)
    return data


def per_person_benchmarks(items: Sequence[Mapping[str, Any]], *,
                          target_range: tuple[float, float] | None = None) -> pd.DataFrame:
    """Floor area by several per-person rules, compared with a target range.

    Parameters
    ----------
    items : sequence of mappings
        ``per_person`` specs with a ``name`` (``method`` may be left out).
    target_range : (float, float), optional
        Lower and upper floor area (m2) the plan aims at.

    Returns
    -------
    DataFrame
        Indexed by name: ``people``, ``area_per_person``, ``area_m2``, ``position``
        (below / within / above the range) and ``gap_m2`` (distance outside it).

    Examples
    --------
    >>> oyabe = packaged_programme("oyabe_2024")["benchmarks"]
    >>> table = per_person_benchmarks(oyabe["items"], target_range=oyabe["target_range_m2"])
    >>> table["area_m2"].tolist(), table["position"].tolist()
    ([7333.2, 6123.6, 6812.9], ['above', 'within', 'above'])
    """
    rows = []
    for i, item in enumerate(items):
        spec = {"method": "per_person", **item}
        if spec["method"] != "per_person" or "name" not in spec:
            raise ConfigError(f"benchmark item {i}: needs a 'name' and method 'per_person'")
        res = required_floor_area(spec)
        rows.append({"name": spec["name"], "name_ja": spec.get("name_ja", ""),
                     "people": res.facts["people"],
                     "area_per_person": res.facts["area_per_person"],
                     "area_m2": res.total_m2})
    table = pd.DataFrame(rows).set_index("name")
    if target_range is None:
        table["position"], table["gap_m2"] = "", 0.0
        return table
    low, high = sorted(float(v) for v in target_range)
    area = table["area_m2"]
    table["position"] = ["below" if a < low else "above" if a > high else "within" for a in area]
    table["gap_m2"] = [round_m2(max(low - a, a - high, 0.0)) for a in area]
    return table


def reference_facilities() -> pd.DataFrame:
    """The 14 recently built civic buildings of the reference list, with floor area per resident.

    Returns
    -------
    DataFrame
        Indexed by ``id``; the columns of ``data/reference_facilities.csv`` plus
        ``floor_area_per_resident_m2`` (floor area / population of the municipality).

    Examples
    --------
    >>> ref = reference_facilities()
    >>> len(ref), ref.loc[1, "name_ja"], round(float(ref.loc[1, "floor_area_per_resident_m2"]), 3)
    (14, '小清水町防災拠点複合庁舎「ワタシノ」', 0.915)
    """
    table = pd.read_csv(DATA_DIR / "reference_facilities.csv", index_col="id",
                        dtype={"population_date": str, "opened": str})
    table["floor_area_per_resident_m2"] = table["floor_area_m2"] / table["population_served"]
    return table


# --------------------------------------------------------------------------- methods


def _given(spec: Mapping[str, Any], base: Path | None) -> ProgrammeResult:
    area = _number(spec, "area", "given", minimum=0.0)
    label = str(spec.get("label", "given floor area"))
    return ProgrammeResult("given", (ProgrammeLine("given", label, float(_round(area))),),
                           source="study")


def _per_person(spec: Mapping[str, Any], base: Path | None, *, kind: str = "per_person"
                ) -> ProgrammeResult:
    people = _number(spec, "people", kind, minimum=0.0)
    rate, source = _rate(spec, kind)
    area = _round(people * rate)
    item = str(spec.get("label", spec.get("name", kind.replace("_", " "))))
    line = ProgrammeLine(kind, item, float(area), item_ja=str(spec.get("name_ja", "")),
                         quantity=float(people), unit_area_m2=float(rate),
                         basis=f"{people} people x {rate} m2")
    facts = {"people": float(people), "area_per_person": float(rate)}
    return ProgrammeResult(kind, (line,), source=source, facts=facts)


def _evacuation(spec: Mapping[str, Any], base: Path | None) -> ProgrammeResult:
    return _per_person(spec, base, kind="evacuation")


def _rooms(spec: Mapping[str, Any], base: Path | None) -> ProgrammeResult:
    table, source = _room_table(spec, base, "rooms")
    lines = tuple(
        ProgrammeLine(row.group, row.name, float(_round(_dec(row.area))), item_ja=row.name_ja,
                      quantity=row.quantity, unit_area_m2=row.unit_area, basis=row.basis)
        for row in table.itertuples(index=False)
    )
    return ProgrammeResult("rooms", lines, source=source)


def _current_plus_new(spec: Mapping[str, Any], base: Path | None) -> ProgrammeResult:
    current = _item_lines(spec, "current", "current", required=True)
    if "new" in spec:
        new = _item_lines(spec, "new", "new", required=True)
        source = "spec"
    else:
        table, source = _room_table(spec, base, "current_plus_new")
        if "new_m2" not in table.columns:
            raise ConfigError(f"programme spec (method 'current_plus_new'): {source} has no "
                              "'new_m2' column; give the new functions as key 'new'")
        picked = table[table["new_m2"].fillna(0) > 0]
        new = [ProgrammeLine("new", r.name, float(_round(_dec(r.new_m2))), item_ja=r.name_ja)
               for r in picked.itertuples(index=False)]
    return ProgrammeResult("current_plus_new", (*current, *new), source=source)


def _existing_share(spec: Mapping[str, Any], base: Path | None) -> ProgrammeResult:
    existing = _item_lines(spec, "existing", "existing", required=True)
    share = _number(spec, "share", "existing_share", minimum=0.0)
    total = _sum(line.area_m2 for line in existing)
    basis_total = total
    if "round_sum_to" in spec:
        step = _number(spec, "round_sum_to", "existing_share", minimum=0.0)
        if step > 0:
            basis_total = (total / step).quantize(Decimal(1), ROUND_HALF_UP) * step
    area = _round(basis_total * share)
    parts = " + ".join(f"{line.area_m2:g}" for line in existing)
    line = ProgrammeLine("target", str(spec.get("label", "share of existing floor area")),
                         float(area), quantity=float(basis_total),
                         basis=f"({parts} = {total:f} ~ {basis_total:f}) x {share}")
    facts = {"existing_m2": float(total), "existing_rounded_m2": float(basis_total),
             "share": float(share)}
    return ProgrammeResult("existing_share", (line,), source="spec", facts=facts)


def _mlit(spec: Mapping[str, Any], base: Path | None) -> ProgrammeResult:
    std = load_standard(spec.get("standard", "mlit"), base_dir=base)
    staff = _staff(spec, std)
    n_staff = sum(staff.values())
    floors = _number(spec, "floors", "mlit", minimum=1.0)
    office, office_base, converted = _office_lines(std, staff)
    ancillary = _ancillary_lines(std, spec, n_staff, office_base, floors)
    specific = [*_item_lines(spec, "specific", "specific"), *_council_line(std, spec)]
    plant = _item_lines(spec, "plant", "plant")
    before = [*office, *ancillary, *specific, *plant]
    circ = _circulation_line(std, _sum(line.area_m2 for line in before))
    facts = {"staff": float(n_staff), "converted_staff": float(converted)}
    return ProgrammeResult("mlit", (*before, circ), source=str(std["name"]), facts=facts)


_Handler = Callable[[Mapping[str, Any], "Path | None"], ProgrammeResult]
_METHODS: dict[str, tuple[_Handler, frozenset[str]]]
_METHODS = {
    "given": (_given, frozenset({"area"})),
    "mlit": (_mlit, frozenset({"standard", "staff", "floors", "council_members",
                               "night_duty_persons", "janitors", "specific", "plant"})),
    "per_person": (_per_person, frozenset({"people", "area_per_person", "rate"})),
    "evacuation": (_evacuation, frozenset({"people", "area_per_person", "rate"})),
    "rooms": (_rooms, frozenset({"rooms", "rooms_file"})),
    "current_plus_new": (_current_plus_new, frozenset({"current", "new", "rooms", "rooms_file"})),
    "existing_share": (_existing_share, frozenset({"existing", "share", "round_sum_to"})),
}


# --------------------------------------------------------------------------- MLIT pieces


def _staff(spec: Mapping[str, Any], std: Mapping[str, Any]) -> dict[str, int]:
    staff = spec.get("staff")
    grades = [g["key"] for g in std["office"]["grades"]]
    if not isinstance(staff, Mapping) or not staff:
        raise ConfigError("programme spec (method 'mlit'): key 'staff' must be a table of "
                          f"grade = head count, grades of standard {std['name']!r}: "
                          f"{', '.join(grades)}")
    problems = []
    for key, count in staff.items():
        if key not in grades:
            problems.append(f"staff.{key}: unknown grade; use one of {', '.join(grades)}")
        elif not isinstance(count, int) or isinstance(count, bool) or count < 0:
            problems.append(f"staff.{key}: expected a head count (integer >= 0), got {count!r}")
    raise_all(problems, ConfigError, "programme spec (method 'mlit')")
    return {key: int(count) for key, count in staff.items()}


def _office_lines(std: Mapping[str, Any], staff: Mapping[str, int]
                  ) -> tuple[list[ProgrammeLine], Decimal, Decimal]:
    office = std["office"]
    unit = _dec(office["area_per_converted_person"])
    lines, converted_total = [], Decimal(0)
    for grade in office["grades"]:
        if grade["key"] not in staff:
            continue
        count, rate = staff[grade["key"]], _dec(grade["rate"])
        converted = _round(count * rate)
        converted_total += converted
        lines.append(ProgrammeLine(
            "office", grade["key"], float(_round(converted * unit)),
            item_ja=grade.get("label_ja", ""), quantity=float(converted),
            unit_area_m2=float(unit), basis=f"{count} staff x {rate} = {converted} converted"))
    base = _sum(line.area_m2 for line in lines)
    surcharge = _dec(office["surcharge"])
    lines.append(ProgrammeLine("office", "office surcharge", float(_round(base * surcharge)),
                               item_ja="執務面積割増", basis=f"{base} x {surcharge}"))
    return lines, base, converted_total


def _ancillary_lines(std: Mapping[str, Any], spec: Mapping[str, Any], n_staff: int,
                     office_base: Decimal, floors: Decimal) -> list[ProgrammeLine]:
    anc = std["ancillary"]
    meet = anc["meeting_rooms"]
    meeting = _meeting_area(n_staff, meet)
    night = _persons(spec, "night_duty_persons", anc["night_duty"])
    janitors = _persons(spec, "janitors", anc["janitor"])
    lines = [
        ProgrammeLine("ancillary", "meeting rooms", float(meeting), item_ja="会議室",
                      basis=f"{meet['base_area']} m2 per {meet['base_staff']} staff + "
                            f"{meet['step_area']} m2 per further {meet['step_staff']}; "
                            f"{n_staff} staff"),
        _share_line("meeting rooms surcharge", "会議室の面積割増", meeting,
                    _dec(meet["surcharge"])),
        _share_line("storage", "倉庫", office_base, _dec(anc["storage"]["share_of_office"])),
        _per_line("night duty room", "宿直室", night, anc["night_duty"]["area_per_person"],
                  "persons"),
        _per_line("janitor room", "庁務員室", janitors, anc["janitor"]["area_per_person"],
                  "persons"),
        _per_line("kitchenettes", "湯沸室", floors, anc["kitchenette"]["area_per_floor"],
                  "floors"),
        ProgrammeLine("ancillary", "reception", float(_round(_dec(anc["reception"]["area"]))),
                      item_ja="受付及び巡視溜"),
    ]
    lines += [_banded_line(room, n_staff, std["name"]) for room in anc.get("banded", [])]
    return lines


def _meeting_area(n_staff: int, rule: Mapping[str, Any]) -> Decimal:
    """Meeting rooms: base area per base staff, + step area per full step of further staff.

    Below the base staff count the same density is kept per started step (an
    assumption: the plans only show staff counts above 100).
    """
    base_staff, step_staff = int(rule["base_staff"]), int(rule["step_staff"])
    base_area, step_area = _dec(rule["base_area"]), _dec(rule["step_area"])
    if n_staff >= base_staff:
        return _round(base_area + step_area * ((n_staff - base_staff) // step_staff))
    return _round(step_area * math.ceil(n_staff / step_staff))


def _banded_line(room: Mapping[str, Any], n_staff: int, std_name: str) -> ProgrammeLine:
    bands = sorted(room["bands"], key=lambda b: b["min_staff"])
    hit = [b for b in bands if b["min_staff"] <= n_staff]
    label = room.get("label_ja", "")
    if not hit:
        if room.get("below", "none") == "error":
            raise ConfigError(f"standard {std_name!r}: ancillary room {room['key']!r} has no "
                              f"band for {n_staff} staff (lowest band starts at "
                              f"{bands[0]['min_staff']}); add one to [[ancillary.banded]]")
        return ProgrammeLine("ancillary", room["key"].replace("_", " "), 0.0, item_ja=label,
                             basis=f"not required below {bands[0]['min_staff']} staff")
    band = hit[-1]
    if "area" not in band:
        raise ConfigError(f"standard {std_name!r}: ancillary room {room['key']!r}, band from "
                          f"{band['min_staff']} staff has no 'area'; add it to the standard")
    return ProgrammeLine("ancillary", room["key"].replace("_", " "),
                         float(_round(_dec(band["area"]))), item_ja=label,
                         basis=f"{band['min_staff']}+ staff")


def _council_line(std: Mapping[str, Any], spec: Mapping[str, Any]) -> list[ProgrammeLine]:
    if "council_members" not in spec:
        return []
    members = _number(spec, "council_members", "mlit", minimum=0.0)
    per = _dec(std["council"]["area_per_member"])
    return [ProgrammeLine("specific", "council", float(_round(members * per)),
                          item_ja="議会機能", quantity=float(members), unit_area_m2=float(per),
                          basis=f"{members} members x {per} m2")]


def _circulation_line(std: Mapping[str, Any], rooms: Decimal) -> ProgrammeLine:
    share = _dec(std["circulation"]["share"])
    extra = _dec(std["circulation"].get("extra_area", 0.0))
    basis = f"({rooms} m2 of rooms) x {share}" + (f" + {extra} m2" if extra else "")
    return ProgrammeLine("circulation", "entrances, corridors etc.",
                         float(_round(rooms * share) + _round(extra)),
                         item_ja="玄関、廊下等", basis=basis)


def _share_line(item: str, item_ja: str, base: Decimal, share: Decimal) -> ProgrammeLine:
    return ProgrammeLine("ancillary", item, float(_round(base * share)), item_ja=item_ja,
                         basis=f"{base} x {share}")


def _per_line(item: str, item_ja: str, count: Decimal, per: float, unit: str
              ) -> ProgrammeLine:
    per_d = _dec(per)
    return ProgrammeLine("ancillary", item, float(_round(count * per_d)), item_ja=item_ja,
                         quantity=float(count), unit_area_m2=float(per_d),
                         basis=f"{count} {unit} x {per_d} m2")


def _persons(spec: Mapping[str, Any], key: str, rule: Mapping[str, Any]) -> Decimal:
    if key in spec:
        return _number(spec, key, "mlit", minimum=0.0)
    return _dec(rule.get("default_persons", 1))


_STANDARD_NUMBERS = (
    "office.area_per_converted_person", "office.surcharge",
    "ancillary.meeting_rooms.base_staff", "ancillary.meeting_rooms.base_area",
    "ancillary.meeting_rooms.step_staff", "ancillary.meeting_rooms.step_area",
    "ancillary.meeting_rooms.surcharge", "ancillary.storage.share_of_office",
    "ancillary.night_duty.area_per_person", "ancillary.janitor.area_per_person",
    "ancillary.kitchenette.area_per_floor", "ancillary.reception.area",
    "council.area_per_member", "circulation.share",
)


def _standard_problems(data: Mapping[str, Any]) -> list[str]:
    problems = []
    for dotted in _STANDARD_NUMBERS:
        node: Any = data
        for part in dotted.split("."):
            node = node.get(part) if isinstance(node, Mapping) else None
        if isinstance(node, bool) or not isinstance(node, (int, float)) or node < 0:
            problems.append(f"key {dotted!r}: expected a number >= 0, got {node!r}")
    if _dig(data, dotted_path=("ancillary", "meeting_rooms", "step_staff")) == 0:
        problems.append("key 'ancillary.meeting_rooms.step_staff': must be > 0")
    grades = _dig(data, dotted_path=("office", "grades"))
    if not isinstance(grades, list) or not grades:
        problems.append("key 'office.grades': expected [[office.grades]] tables with key, rate")
    else:
        for i, grade in enumerate(grades):
            if not isinstance(grade, Mapping) or "key" not in grade or not isinstance(
                    grade.get("rate"), (int, float)):
                problems.append(f"office.grades[{i}]: needs 'key' and a numeric 'rate'")
    for i, room in enumerate(_dig(data, dotted_path=("ancillary", "banded")) or []):
        if "key" not in room or not room.get("bands") or room.get("below", "none") not in (
                "none", "error"):
            problems.append(f"ancillary.banded[{i}]: needs 'key', non-empty 'bands' and "
                            "below = 'none' or 'error'")
        elif any("min_staff" not in band for band in room["bands"]):
            problems.append(f"ancillary.banded[{i}] ({room['key']}): every band needs min_staff")
    return problems


def _dig(data: Mapping[str, Any], *, dotted_path: tuple[str, ...]) -> Any:
    node: Any = data
    for part in dotted_path:
        node = node.get(part) if isinstance(node, Mapping) else None
    return node


# --------------------------------------------------------------------------- helpers


def _dec(value: object) -> Decimal:
    """Decimal from the shortest decimal text of a number (no binary artefacts)."""
    if isinstance(value, Decimal):
        return value
    if isinstance(value, bool):
        raise InvalidOperation(f"not a number: {value!r}")
    return Decimal(str(value))


def _round(value: Decimal) -> Decimal:
    return value.quantize(STEP, rounding=ROUND_HALF_UP)


def _sum(values: Any) -> Decimal:
    return sum((_dec(v) for v in values), Decimal(0))


def _number(spec: Mapping[str, Any], key: str, method: str, *, minimum: float) -> Decimal:
    where = f"programme spec (method {method!r})"
    if key not in spec:
        raise ConfigError(f"{where}: key {key!r} is missing")
    value = spec[key]
    try:
        number = _dec(value)
    except (InvalidOperation, ValueError):
        raise ConfigError(f"{where}: key {key!r} must be a number, got {value!r}") from None
    if not number.is_finite() or number < _dec(minimum):
        raise ConfigError(f"{where}: key {key!r} must be >= {minimum}, got {value!r}")
    return number


def _rate(spec: Mapping[str, Any], kind: str) -> tuple[Decimal, str]:
    if "area_per_person" in spec and "rate" in spec:
        raise ConfigError(f"programme spec (method {kind!r}): give 'area_per_person' or "
                          "'rate', not both")
    if "area_per_person" in spec:
        return _number(spec, "area_per_person", kind, minimum=0.0), "spec"
    rates = _read_toml(STANDARDS_DIR / "rates.toml", what="rate table")
    name = spec.get("rate", rates.get("defaults", {}).get(kind))
    table = rates.get(kind, {})
    if name is None:
        raise ConfigError(f"programme spec (method {kind!r}): key 'area_per_person' or 'rate' "
                          f"is missing; named rates: {', '.join(sorted(table))}")
    if name not in table:
        raise ConfigError(f"programme spec (method {kind!r}): key 'rate' = {name!r} is not in "
                          f"{STANDARDS_DIR / 'rates.toml'} [{kind}]; use one of "
                          f"{', '.join(sorted(table))} or give 'area_per_person'")
    return _dec(table[name]["area_per_person"]), str(name)


def _item_lines(spec: Mapping[str, Any], key: str, section: str, *, required: bool = False
                ) -> list[ProgrammeLine]:
    """Lines from a list of ``{name, area[, count, name_ja]}`` or a ``{name: area}`` table."""
    where = f"programme spec (method {spec.get('method')!r})"
    value = spec.get(key)
    if value is None:
        if required:
            raise ConfigError(f"{where}: key {key!r} is missing; give a list of "
                              "{name, area} tables")
        return []
    if isinstance(value, Mapping):
        value = [{"name": k, "area": v} for k, v in value.items()]
    if not isinstance(value, Sequence) or isinstance(value, str):
        raise ConfigError(f"{where}: key {key!r} must be a list of {{name, area}} tables")
    lines, problems = [], []
    for i, item in enumerate(value):
        try:
            area = _dec(item["area"]) * _dec(item.get("count", 1))
            if not area.is_finite() or area < 0:
                raise ValueError
        except (KeyError, TypeError, ValueError, InvalidOperation):
            problems.append(f"{key}[{i}]: needs a 'name' and a numeric 'area' >= 0, got {item!r}")
            continue
        lines.append(ProgrammeLine(section, str(item.get("name", f"{key} {i + 1}")),
                                   float(_round(area)), item_ja=str(item.get("name_ja", "")),
                                   basis=str(item.get("group", ""))))
    raise_all(problems, ConfigError, where)
    return lines


def _room_table(spec: Mapping[str, Any], base: Path | None, method: str
                ) -> tuple[pd.DataFrame, str]:
    """Normalised room table: group, name, name_ja, quantity, unit_area, area, basis, new_m2."""
    where = f"programme spec (method {method!r})"
    if ("rooms" in spec) == ("rooms_file" in spec):
        raise ConfigError(f"{where}: give exactly one of 'rooms' (a list) or 'rooms_file' (CSV)")
    if "rooms" in spec:
        rooms = spec["rooms"]
        if not isinstance(rooms, Sequence) or isinstance(rooms, str):
            raise ConfigError(f"{where}: key 'rooms' must be a list of {{name, area}} tables")
        raw, source = pd.DataFrame([dict(r) for r in rooms]), "spec"
    else:
        path = _resolve(spec["rooms_file"], base, "rooms_file")
        if not path.is_file():
            raise InputNotFoundError(f"{where}: rooms_file {path} does not exist")
        raw, source = pd.read_csv(path), str(path)
    return _normalise_rooms(raw, f"{where} {source}"), source


def _normalise_rooms(raw: pd.DataFrame, where: str) -> pd.DataFrame:
    name = _column(raw, "room", "name")
    if name.isna().all() or not ({"area_m2", "unit_area_m2", "area"} & set(raw.columns)):
        raise ConfigError(f"{where}: rooms need a 'room' (or 'name') column and 'area_m2' "
                          f"or 'unit_area_m2' (or 'area'); found {', '.join(map(str, raw))}")
    count = pd.to_numeric(_column(raw, "count"), errors="coerce").fillna(1.0)
    unit = pd.to_numeric(_column(raw, "unit_area_m2", "area"), errors="coerce")
    total = pd.to_numeric(_column(raw, "area_m2"), errors="coerce")
    # the printed row total wins: it is what the plan adds up (see the 書庫 row of Hamanaka)
    area = total.where(total.notna(), unit * count)
    bad = area.isna() | (area < 0)
    if bad.any():
        raise ConfigError(f"{where}: rows {bad[bad].index.tolist()} have no valid area")
    basis = _column(raw, "basis_ja", "basis").fillna("").astype(str)
    sizes = [f"{u:g} m2 x {c:g}" if pd.notna(u) else "" for u, c in zip(unit, count)]
    out = pd.DataFrame({
        "group": _column(raw, "group").fillna("rooms").astype(str),
        "name": name.fillna("").astype(str),
        "name_ja": _column(raw, "room_ja", "name_ja").fillna("").astype(str),
        "quantity": count.astype(float), "unit_area": unit.astype(float),
        "area": area.astype(float),
        "basis": [b or s for b, s in zip(basis, sizes)],
    })
    if "new_m2" in raw:
        out["new_m2"] = pd.to_numeric(raw["new_m2"], errors="coerce")
    return out


def _column(raw: pd.DataFrame, *names: str) -> pd.Series:
    """The first of ``names`` that is a column of ``raw``, else an all-missing column."""
    for name in names:
        if name in raw.columns:
            return raw[name]
    return pd.Series(float("nan"), index=raw.index, dtype=object)


def _read_toml(path: Path, *, what: str) -> dict[str, Any]:
    if not path.is_file():
        raise InputNotFoundError(f"{what} {path} does not exist")
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{what} {path}: not valid TOML ({err})") from None


def _resolve(text: str | Path, base: str | Path | None, key: str) -> Path:
    """Absolute path of a file named in a spec; relative names need a base folder."""
    path = Path(text)
    if path.is_absolute():
        return path
    if base is None:
        raise ConfigError(f"programme spec key {key!r}: {str(text)!r} is relative but no "
                          "base_dir was given; pass base_dir (the study file's folder) or "
                          "an absolute path")
    return Path(base) / path


def _path_like(text: str) -> bool:
    return text.endswith(".toml") or "/" in text or "\\" in text
