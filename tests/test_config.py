"""Study file parsing and validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline._schema import iter_schema
from pipeline.config import Study, load_study, study_from_dict
from pipeline.errors import ConfigError, InputNotFoundError

MINIMAL = """
[study]
name = "Demo"
[layers.parcels]
path = "parcels.gpkg"
[layers.dem]
path = "dem/dem.tif"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "study.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_minimal_study_has_defaults_and_resolves_paths_against_the_file(tmp_path, monkeypatch):
    monkeypatch.chdir("/")
    study = load_study(write(tmp_path, MINIMAL))
    assert study.layers.dem.path == tmp_path.resolve() / "dem" / "dem.tif"
    assert study.output == tmp_path.resolve() / "output"
    assert study.hazard.depth_classes == (0.3, 0.5, 1.0, 3.0, 5.0, 10.0, 20.0)
    assert study.zoning.coverage_ratio == 0.6
    assert study.layers.roads is None
    assert study.path == (tmp_path / "study.toml").resolve()


def test_study_is_frozen(tmp_path):
    study = load_study(write(tmp_path, MINIMAL))
    with pytest.raises(AttributeError):
        study.zoning.far = 3.0  # type: ignore[misc]


def test_bundled_study_parses():
    root = Path(__file__).resolve().parents[1]
    study = load_study(root / "layers" / "study.toml")
    assert study.study.crs == "EPSG:6681"
    assert [s.name for s in study.scenario] == ["tsunami", "flood_planned", "flood_max"]
    assert study.scenario[0].runup == 13.9


def test_bundled_study_matches_the_demo_template():
    root = Path(__file__).resolve().parents[1]
    template = root / "pipeline" / "templates" / "demo_study.toml"
    assert (root / "layers" / "study.toml").read_text() == template.read_text()


def test_every_problem_is_listed_once_with_key_value_and_allowed(tmp_path):
    text = (
        MINIMAL.replace('name = "Demo"', 'name = "Demo"\ncrs = 5')
        + """
[zoning]
coverage_ratio = 1.4
far = "two"
zone_kind = "residental"
[[scenario]]
name = "ts"
kind = "tsunami"
"""
    )
    with pytest.raises(ConfigError) as info:
        load_study(write(tmp_path, text))
    msg = str(info.value)
    assert "5 problems" in msg
    assert "study.crs = 5: expected a string" in msg
    assert "zoning.coverage_ratio = 1.4: must be at most 1.0" in msg
    assert "zoning.far = 'two': expected a number" in msg
    assert (
        "zoning.zone_kind = 'residental': expected one of 'residential', 'other' "
        "(did you mean 'residential'?)" in msg
    )
    assert "needs `depth`" in msg
    assert str(tmp_path) in msg


def test_unknown_key_suggests_the_nearest(tmp_path):
    text = MINIMAL.replace('path = "parcels.gpkg"', 'path = "parcels.gpkg"\nidcolumn = "x"')
    with pytest.raises(
        ConfigError,
        match=r"unknown key 'layers.parcels.idcolumn'; did you mean "
        r"'layers.parcels.id_column'\?",
    ):
        load_study(write(tmp_path, text))


def test_unknown_section_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match=r"unknown key 'zonning'; did you mean 'zoning'"):
        load_study(write(tmp_path, MINIMAL + "\n[zonning]\nfar = 2.0\n"))


@pytest.mark.parametrize(
    "text, match",
    [
        (
            "[zoning]\ncoverage_ratio = -0.1",
            r"zoning.coverage_ratio = -0.1: must be greater than 0.0",
        ),
        ("[zoning]\nfar = 0", r"zoning.far = 0.0: must be greater than 0.0"),
        (
            "[programme]\nparking_need = 2.5",
            r"programme.parking_need = 2.5: expected a whole number",
        ),
        (
            "[hazard]\ndepth_classes = [0.3, 'x']",
            r"hazard.depth_classes\[1\] = 'x': expected a number",
        ),
        (
            "[[criterion]]\nmetric = 'a'\nthresholds = [1, 2]",
            r"give three breaks \(◎, ○, △\) or one",
        ),
        ("[[criterion]]\nmetric = 'a'\nthresholds = [1, 2, 3]", r"the breaks must be decreasing"),
        ("[score]\noverall_thresholds = [1, 2, 3]", r"three decreasing breaks"),
    ],
)
def test_bad_values(tmp_path, text, match):
    with pytest.raises(ConfigError, match=match):
        load_study(write(tmp_path, MINIMAL + text))


def test_missing_required_keys(tmp_path):
    with pytest.raises(ConfigError, match=r"missing key layers.dem"):
        load_study(write(tmp_path, MINIMAL.replace('[layers.dem]\npath = "dem/dem.tif"', "")))


def test_not_toml(tmp_path):
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_study(write(tmp_path, "[study\nname="))


def test_missing_file(tmp_path):
    with pytest.raises(InputNotFoundError, match="does not exist"):
        load_study(tmp_path / "nope.toml")


def test_duplicate_scenario_names(tmp_path):
    text = MINIMAL + "\n".join(["[[scenario]]\nname='a'\nkind='flood'\nrunup=1.0"] * 2)
    with pytest.raises(ConfigError, match="repeated: a"):
        load_study(write(tmp_path, text))


def test_schema_lists_every_key():
    keys = [k for k, *_ in iter_schema(Study)]
    assert "layers.parcels.id_column" in keys
    assert "scenario[].runup" in keys
    assert "criterion[].thresholds" in keys
    assert len(keys) == len(set(keys))


def test_study_from_dict_names_the_file():
    with pytest.raises(ConfigError, match=r"study file x\.toml: missing key study"):
        study_from_dict(
            {"layers": {"parcels": {"path": "a"}, "dem": {"path": "b"}}}, Path("x.toml")
        )
