"""Required floor area: the published figures of the Hamanaka, Oyabe and Goka plans."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.errors import ConfigError, InputNotFoundError
from pipeline.programme import (
    STANDARDS_DIR,
    available_standards,
    load_programmes,
    load_standard,
    packaged_programme,
    per_person_benchmarks,
    reference_facilities,
    required_floor_area,
    round_m2,
)


@pytest.fixture(scope="module")
def hamanaka() -> dict:
    return packaged_programme("hamanaka_2017")


def lines(result, section: str) -> dict[str, float]:
    return {line.item: line.area_m2 for line in result.lines if line.section == section}


# --------------------------------------------------------------------------- rounding


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (686.4 * 0.1, 68.6),
        (686.4 * 0.13, 89.2),
        (3160.7 * 0.35, 1106.2),
        (0.05, 0.1),
        (0.15, 0.2),
        (2.675, 2.7),
        (1106.25, 1106.3),
        (-0.0, 0.0),
    ],
)
def test_round_m2_rounds_half_up_to_a_tenth_like_the_plans(value, expected):
    assert round_m2(value) == expected


# --------------------------------------------------------------------------- MLIT, Hamanaka


def test_mlit_hamanaka_reproduces_the_published_subtotals_and_total(hamanaka):
    result = required_floor_area(hamanaka["mlit"])
    assert result.subtotals == {
        "office": 755.0,
        "ancillary": 348.1,
        "specific": 1791.6,
        "plant": 266.0,
        "circulation": 1106.2,
    }
    assert result.total_m2 == 4266.9
    assert result.facts == {"staff": 110.0, "converted_staff": 171.6}
    assert result.source == "mlit"


def test_mlit_hamanaka_office_lines_match_the_plan_table(hamanaka):
    result = required_floor_area(hamanaka["mlit"])
    office = lines(result, "office")
    assert office == {
        "executive": 72.0,
        "section_chief": 140.0,
        "subsection_chief": 230.4,
        "general": 244.0,
        "office surcharge": 68.6,
    }
    converted = [
        line.quantity
        for line in result.lines
        if line.section == "office" and line.quantity is not None
    ]
    assert converted == [18.0, 35.0, 57.6, 61.0]


def test_mlit_hamanaka_ancillary_lines_match_the_plan_table(hamanaka):
    ancillary = lines(required_floor_area(hamanaka["mlit"]), "ancillary")
    assert ancillary == {
        "meeting rooms": 44.0,
        "meeting rooms surcharge": 4.4,
        "storage": 89.2,
        "night duty room": 10.0,
        "janitor room": 10.0,
        "kitchenettes": 39.0,
        "reception": 6.5,
        "toilets": 46.0,
        "medical": 45.0,
        "shop": 0.0,
        "canteen": 54.0,
    }


def test_mlit_hamanaka_specific_plant_and_circulation(hamanaka):
    result = required_floor_area(hamanaka["mlit"])
    specific = lines(result, "specific")
    assert specific["council"] == 420.0
    support = [line.area_m2 for line in result.lines if line.basis == "business support"]
    assert float(sum(map(Decimal, map(str, support)))) == 1121.6
    assert lines(result, "plant") == {
        "machine room": 176.0,
        "electrical room": 61.0,
        "generator room": 29.0,
    }
    (circ,) = [line for line in result.lines if line.section == "circulation"]
    assert circ.area_m2 == 1106.2 and "3160.7" in circ.basis


def test_result_frame_lists_every_line_and_adds_up(hamanaka):
    result = required_floor_area(hamanaka["mlit"])
    frame = result.to_frame()
    assert len(frame) == len(result.lines)
    assert list(frame.columns) == [
        "section",
        "item",
        "item_ja",
        "quantity",
        "unit_area_m2",
        "area_m2",
        "basis",
    ]
    assert round(frame["area_m2"].sum(), 6) == 4266.9
    assert frame.loc[frame["item"] == "storage", "item_ja"].item() == "倉庫"


@pytest.mark.parametrize(
    ("staff", "area"), [(100, 40.0), (109, 40.0), (110, 44.0), (235, 92.0), (50, 20.0), (45, 20.0)]
)
def test_meeting_rooms_rule_40_per_100_staff_plus_4_per_further_10(tmp_path, hamanaka, staff, area):
    # a completed copy of the standard: toilets below 100 staff, and a shop area
    text = (STANDARDS_DIR / "mlit.toml").read_text(encoding="utf-8")
    text = text.replace(
        "bands = [{ min_staff = 100, area = 46.0 }]",
        "bands = [{ min_staff = 0, area = 20.0 }, { min_staff = 100, area = 46.0 }]",
    )
    text = text.replace(
        "bands = [{ min_staff = 150 }]", "bands = [{ min_staff = 150, area = 30.0 }]"
    )
    (tmp_path / "full.toml").write_text(text, encoding="utf-8")
    spec = {**hamanaka["mlit"], "staff": {"general": staff}, "standard": "full.toml"}
    ancillary = lines(required_floor_area(spec, base_dir=tmp_path), "ancillary")
    assert ancillary["meeting rooms"] == area
    assert ancillary["toilets"] == (46.0 if staff >= 100 else 20.0)
    assert ancillary["shop"] == (30.0 if staff >= 150 else 0.0)


def test_toilets_below_the_plans_band_ask_for_the_standard_to_be_completed(hamanaka):
    spec = {**hamanaka["mlit"], "staff": {"general": 80}}
    with pytest.raises(ConfigError, match="'toilets' has no band for 80 staff"):
        required_floor_area(spec)


def test_shop_band_without_area_asks_for_it(hamanaka):
    spec = {**hamanaka["mlit"], "staff": {"general": 160}}
    with pytest.raises(ConfigError, match="'shop'.*150 staff has no 'area'"):
        required_floor_area(spec)


def test_goka_variant_converts_116_staff_to_182(hamanaka):
    goka = packaged_programme("goka_2025")
    result = required_floor_area(goka["mlit"])
    assert result.facts == {"staff": 116.0, "converted_staff": 182.0}
    office = lines(result, "office")
    assert office["executive"] == 99.0  # 3 x 10 = 30 converted x 3.3 m2
    assert result.subtotals["office"] == 660.7  # 182 x 3.3 = 600.6, + 60.1
    assert lines(result, "specific") == {"council": 350.0}  # 10 members x 35 m2
    assert lines(result, "ancillary")["storage"] == 78.1  # 600.6 x 0.13
    assert available_standards() == ["mlit", "mlit_goka"]


def test_a_study_can_point_to_its_own_standard_file(tmp_path, hamanaka):
    text = (STANDARDS_DIR / "mlit.toml").read_text(encoding="utf-8")
    own = text.replace("area_per_converted_person = 4.0", "area_per_converted_person = 3.3")
    (tmp_path / "std").mkdir()
    (tmp_path / "std" / "town.toml").write_text(own, encoding="utf-8")
    spec = {**hamanaka["mlit"], "standard": "std/town.toml"}
    result = required_floor_area(spec, base_dir=tmp_path)
    assert result.subtotals["office"] == 622.9  # 171.6 x 3.3 = 566.3 (rounded), + 56.6
    assert result.source == "mlit"


def test_programme_file_resolves_files_against_its_folder(tmp_path, monkeypatch):
    (tmp_path / "rooms.csv").write_text(
        "room,area_m2\nhall,120.0\noffice,80.05\n", encoding="utf-8"
    )
    (tmp_path / "p.toml").write_text(
        '[r]\nmethod = "rooms"\nrooms_file = "rooms.csv"\n', encoding="utf-8"
    )
    monkeypatch.chdir("/")
    specs = load_programmes(tmp_path / "p.toml")
    assert required_floor_area(specs["r"]).total_m2 == 200.1


# --------------------------------------------------------------------------- other methods


def test_bond_rule_35_3_m2_for_122_people(hamanaka):
    result = required_floor_area(hamanaka["per_person"])
    assert result.total_m2 == 4306.6
    assert result.facts == {"people": 122.0, "area_per_person": 35.3}


def test_oyabe_per_staff_benchmarks_against_the_target_range():
    oyabe = packaged_programme("oyabe_2024")["benchmarks"]
    table = per_person_benchmarks(oyabe["items"], target_range=oyabe["target_range_m2"])
    assert table["area_m2"].tolist() == [7333.2, 6123.6, 6812.9]
    assert table["position"].tolist() == ["above", "within", "above"]
    assert table["gap_m2"].tolist() == [533.2, 0.0, 12.9]
    assert table["people"].tolist() == [252.0, 252.0, 193.0]


def test_room_by_room_sum_hamanaka_is_4288(hamanaka):
    result = required_floor_area(hamanaka["rooms"])
    assert result.total_m2 == 4288.0
    sub = result.subtotals
    assert sub["council"] == 283.3 and sub["meeting"] == 828.2
    assert sub["office_support"] == 667.5  # uses the printed 520.4 of the archive row
    archive = next(line for line in result.lines if line.item_ja == "書庫")
    assert (archive.unit_area_m2, archive.area_m2) == (520.3, 520.4)


def test_room_by_room_sum_goka_is_4805():
    result = required_floor_area(packaged_programme("goka_2025")["rooms"])
    assert result.total_m2 == 4805.0
    assert len(result.lines) == 52


def test_room_list_given_inline_with_counts():
    spec = {
        "method": "rooms",
        "rooms": [
            {"name": "counselling room", "area": 35.0, "count": 4},
            {"name": "toilets", "area": 64.0, "count": 3},
            {"name": "corridor", "area": 130.05},
        ],
    }
    result = required_floor_area(spec)
    assert [line.area_m2 for line in result.lines] == [140.0, 192.0, 130.1]
    assert result.total_m2 == 462.1


def test_current_plus_new_functions_hamanaka_is_3753_2(hamanaka):
    result = required_floor_area(hamanaka["current_plus_new"])
    assert result.subtotals == {"current": 3014.8, "new": 738.4}
    assert result.total_m2 == 3753.2
    inline = {"method": "current_plus_new", "current": {"hall": 3014.8}, "new": {"x": 738.4}}
    assert required_floor_area(inline).total_m2 == 3753.2


def test_evacuation_space_580_people_at_2_m2_and_a_named_3_5_standard(hamanaka):
    assert required_floor_area(hamanaka["evacuation"]).total_m2 == 1160.0
    default = required_floor_area({"method": "evacuation", "people": 580})
    assert default.total_m2 == 1160.0 and default.source == "hokkaido_urban_park"
    sphere = required_floor_area({"method": "evacuation", "people": 580, "rate": "sphere"})
    assert sphere.total_m2 == 2030.0
    own = required_floor_area({"method": "evacuation", "people": 580, "area_per_person": 3.3})
    assert own.total_m2 == 1914.0


def test_goka_target_is_70_percent_of_the_merged_buildings():
    result = required_floor_area(packaged_programme("goka_2025")["target"])
    assert result.total_m2 == 4515.0
    assert result.facts["existing_m2"] == 6448.0
    assert result.facts["existing_rounded_m2"] == 6450.0


def test_given_area():
    assert required_floor_area({"method": "given", "area": 4266.9}).total_m2 == 4266.9


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ({}, "key 'method' is missing"),
        ({"method": "guess"}, "'guess'; use one of"),
        ({"method": "given", "area": 10, "arae": 1}, "unknown key.*arae"),
        ({"method": "given"}, "key 'area' is missing"),
        ({"method": "given", "area": -1}, "'area' must be >= 0"),
        ({"method": "given", "area": "big"}, "'area' must be a number"),
        ({"method": "per_person", "people": 3, "rate": "nope"}, "'rate' = 'nope'"),
        ({"method": "per_person", "people": 3}, "'area_per_person' or 'rate' is missing"),
        (
            {"method": "per_person", "people": 3, "rate": "somusho_bond", "area_per_person": 2},
            "not both",
        ),
        (
            {"method": "mlit", "floors": 3, "staff": {"director": 2}},
            "staff.director: unknown grade",
        ),
        ({"method": "mlit", "floors": 3, "staff": {"general": 2.5}}, "staff.general: expected"),
        ({"method": "mlit", "staff": {"general": 120}}, "key 'floors' is missing"),
        (
            {"method": "mlit", "floors": 3, "staff": {"general": 120}, "standard": "mlit_x"},
            "'mlit_x' is not a packaged standard",
        ),
        (
            {"method": "mlit", "floors": 3, "staff": {"general": 120}, "specific": [{"name": "a"}]},
            r"specific\[0\]: needs",
        ),
        ({"method": "rooms"}, "exactly one of 'rooms'"),
        ({"method": "rooms", "rooms": [{"name": "a"}]}, "rooms need"),
    ],
)
def test_bad_specs_raise_config_error_naming_the_key(spec, match):
    with pytest.raises(ConfigError, match=match):
        required_floor_area(spec)


def test_missing_files_raise_input_not_found(tmp_path):
    with pytest.raises(InputNotFoundError, match="nope.csv"):
        required_floor_area({"method": "rooms", "rooms_file": "nope.csv"}, base_dir=tmp_path)
    with pytest.raises(InputNotFoundError, match="std.toml"):
        load_standard("std.toml", base_dir=tmp_path)


def test_invalid_standard_file_lists_every_problem(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("[office]\narea_per_converted_person = -1\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"bad.toml: \d+ problems") as err:
        load_standard(path)
    assert "office.area_per_converted_person" in str(err.value)
    assert "circulation.share" in str(err.value)


# --------------------------------------------------------------------------- properties


@settings(max_examples=40, deadline=None)
@given(
    staff=st.fixed_dictionaries(
        {},
        optional={
            grade: st.integers(0, 12)
            for grade in ("executive", "section_chief", "subsection_chief", "part_time")
        },
    ),
    general=st.integers(100, 101),
    floors=st.integers(1, 8),
)
def test_mlit_total_is_the_sum_of_rounded_lines(hamanaka, staff, general, floors):
    # 100-148 staff: the range the plan's banded rooms cover
    spec = {**hamanaka["mlit"], "staff": {**staff, "general": general}, "floors": floors}
    result = required_floor_area(spec)
    areas = [Decimal(str(line.area_m2)) for line in result.lines]
    assert all(a == a.quantize(Decimal("0.1")) for a in areas)
    assert Decimal(str(result.total_m2)) == sum(areas)
    rooms = sum(Decimal(str(v)) for k, v in result.subtotals.items() if k != "circulation")
    assert result.subtotals["circulation"] == round_m2(rooms * Decimal("0.35"))


# --------------------------------------------------------------------------- reference list


def test_reference_facilities_table():
    ref = reference_facilities()
    assert len(ref) == 14
    assert ref.index.tolist() == list(range(1, 15))
    assert ref.loc[1, "name_ja"] == "小清水町防災拠点複合庁舎「ワタシノ」"
    assert ref.loc[14, "name_ja"] == "アオーレ長岡"
    assert int(ref.loc[14, "floor_area_m2"]) == 35485
    assert int(ref.loc[3, "population_served"]) == 31732
    assert ref["category"].value_counts().to_dict() == {"other": 6, "town_hall": 5, "hall": 3}
    per = ref["floor_area_per_resident_m2"]
    assert per.loc[4] == pytest.approx(3887 / 2543)
    assert ref["opening_year"].between(2007, 2025).all()
    assert {"name", "town", "main_functions_ja", "opened"} <= set(ref.columns)


def test_data_files_are_packaged():
    root = Path(__file__).resolve().parents[1] / "pipeline" / "data"
    for name in (
        "standards/mlit.toml",
        "standards/mlit_goka.toml",
        "standards/rates.toml",
        "programmes/hamanaka_2017.toml",
        "reference_facilities.csv",
        "README.md",
    ):
        assert (root / name).is_file(), name


def test_relative_file_names_need_a_base_dir():
    with pytest.raises(ConfigError, match="'rooms_file'.*relative but no base_dir"):
        required_floor_area({"method": "rooms", "rooms_file": "rooms.csv"})
    with pytest.raises(ConfigError, match="'standard'.*relative"):
        required_floor_area(
            {"method": "mlit", "standard": "std/x.toml", "floors": 1, "staff": {"general": 100}}
        )
