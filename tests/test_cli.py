"""The command line: stages, exit status 2 with one readable message, verbosity."""

from __future__ import annotations

import subprocess
import sys

import pytest
from click.testing import CliRunner

from pipeline.cli import cli


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli") / "layers"
    result = CliRunner().invoke(cli, ["demo", str(folder)])
    assert result.exit_code == 0, result.output
    return folder / "study.toml"


def test_demo_writes_the_study(demo):
    assert demo.is_file()
    assert (demo.parent / "dem.tif").is_file()


def test_demo_refuses_to_clobber_edited_files(demo):
    edited = demo.parent / "extra"
    edited.mkdir(exist_ok=True)
    runner = CliRunner()
    assert runner.invoke(cli, ["demo", str(edited)]).exit_code == 0
    (edited / "study.toml").write_text("# mine\n")
    result = runner.invoke(cli, ["demo", str(edited)])
    assert result.exit_code == 2
    assert "already holds study.toml with other content; pass --overwrite" in result.output
    assert (edited / "study.toml").read_text() == "# mine\n"
    assert runner.invoke(cli, ["demo", str(edited), "--overwrite"]).exit_code == 0


def test_check(demo):
    result = CliRunner().invoke(cli, ["check", str(demo)])
    assert result.exit_code == 0, result.output


def test_one_stage(demo):
    result = CliRunner().invoke(cli, ["hazard", str(demo)])
    assert result.exit_code == 0, result.output
    assert (demo.parent.parent / "maps" / "stages" / "hazard.parquet").is_file()


def test_bad_study_exits_2_with_one_message(tmp_path):
    bad = tmp_path / "study.toml"
    bad.write_text('[study]\nname = "x"\nfoo = 1\n')
    result = CliRunner().invoke(cli, ["run", str(bad)])
    assert result.exit_code == 2
    assert result.output.startswith("Error: study file ")
    assert "unknown key 'study.foo'" in result.output
    assert "Traceback" not in result.output


def test_missing_study_file(tmp_path):
    result = CliRunner().invoke(cli, ["run", str(tmp_path / "nope.toml")])
    assert result.exit_code == 2
    assert "does not exist" in result.output


def test_verbose_shows_the_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "pipeline", "-v", "run",
                           str(tmp_path / "nope.toml")], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "Traceback" in proc.stderr
    assert "Error: study file" in proc.stderr


def test_python_m_pipeline_is_the_same_cli():
    proc = subprocess.run([sys.executable, "-m", "pipeline", "--help"], capture_output=True,
                          text=True)
    assert proc.returncode == 0
    for command in ("run", "hazard", "envelope", "access", "score", "maps", "demo", "check"):
        assert command in proc.stdout


def test_quiet_prints_nothing_on_success(demo):
    proc = subprocess.run([sys.executable, "-m", "pipeline", "-q", "hazard", str(demo)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
