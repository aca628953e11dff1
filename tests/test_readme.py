"""README stays true: its two commands, its study-file reference, its output columns."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from pipeline._schema import iter_schema
from pipeline.columns import COLUMNS, describe
from pipeline.config import Study

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def section(title: str) -> str:
    start = README.index(f"## {title}")
    end = README.find("\n## ", start + 1)
    return README[start:end if end > 0 else None]


def test_readme_opens_with_exactly_two_commands():
    block = re.search(r"```bash\n(.*?)```", README, re.S).group(1)
    commands = [line.split("#")[0].strip() for line in block.splitlines() if line.strip()]
    assert commands == ["make run", "make test"]
    assert README.index("```bash") < README.index("## ")


def test_ci_runs_the_readme_test_command():
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_study_reference_lists_every_key_and_no_other():
    documented = re.findall(r"^\| `([^`]+)` \|", section("Study file reference"), re.M)
    assert documented == [key for key, *_ in iter_schema(Study)]


def test_output_columns_table_matches_the_registry():
    documented = re.findall(r"^\| `([^`]+)` \|", section("Output columns"), re.M)
    assert documented == list(COLUMNS)


def test_every_column_of_the_sites_table_is_documented(tmp_path):
    from pipeline.config import load_study
    from pipeline.demo import write_demo_study
    from pipeline.runner import Runner
    from pipeline.stages import STAGES

    study = load_study(write_demo_study(tmp_path / "layers"))
    Runner(study, {k: v for k, v in STAGES.items() if k != "maps"}).run(["score"])
    sites = pd.read_csv(study.output / "sites.csv", nrows=1)
    parcel_attrs = {"name_ja", "coverage_ratio", "far", "pad_elevation", "corner"}
    undocumented = [c for c in sites.columns if describe(c) is None and c not in parcel_attrs]
    assert undocumented == []
