"""A run killed mid-stage loses nothing (issue 7, item 4).

``python -m pipeline run STUDY`` runs once to completion; then an input changes
(the population, so the access stage and the score and maps after it rerun) and a second
run is killed with SIGKILL in the middle of the access stage: after it has
replaced ``stages/access.parquet`` with the new table and while it is writing
``stages/routes.gpkg`` (the temporary file is written, not yet renamed over the
target). Then:

- every output of the first run is still readable (parquet, CSV, GeoPackage), and
  the score and maps stages' outputs are byte for byte those of the first run;
- the only files left over are dot-prefixed temporary files, which no reader takes
  for an output;
- the next run skips hazard and envelope ("up to date, skipped") and redoes access,
  score and maps.

To kill at a known point without a hook in pipeline/runner.py, the killed run gets
a ``sitecustomize.py`` on ``PYTHONPATH`` that wraps :func:`pipeline._io.write_atomic`:
before renaming the temporary file over the target named by ``SITEPLAN_TEST_PAUSE``
it prints a marker on stderr and sleeps. The command run is still
``python -m pipeline ...``.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest

from pipeline.demo import write_demo_study
from pipeline.stages import OUTPUTS

COMMAND = "run"
STAGES = ("hazard", "envelope", "access", "score", "maps")
MARKER = "SITEPLAN_TEST_PAUSED"

SITECUSTOMIZE = textwrap.dedent(f'''
    """Test hook: pause before the write of one output file is committed."""
    import os

    if os.environ.get("SITEPLAN_TEST_PAUSE"):
        import sys
        import time

        import pipeline._io as io

        _original = io.write_atomic

        def write_atomic(target, writer):
            if target.name != os.environ["SITEPLAN_TEST_PAUSE"]:
                return _original(target, writer)
            with io.atomic_path(target) as tmp:
                writer(tmp)
                print("{MARKER}", tmp, file=sys.stderr, flush=True)
                time.sleep(120)  # killed here, before the rename
            return target

        io.write_atomic = write_atomic
''')


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    path = write_demo_study(tmp_path_factory.mktemp("template") / "layers")
    path.write_text(path.read_text().replace("demo = true", "demo = false"))
    return path.parent


@pytest.fixture
def study(tmp_path, template) -> Path:
    shutil.copytree(template, tmp_path / "layers")
    path = tmp_path / "layers" / "study.toml"
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(SITECUSTOMIZE)
    return path


def env(study: Path, pause: str | None = None) -> dict[str, str]:
    out = {k: v for k, v in os.environ.items() if k != "SITEPLAN_TEST_PAUSE"}
    out["PYTHONPATH"] = os.pathsep.join(
        [str(study.parent.parent / "hook"), *filter(None, [os.environ.get("PYTHONPATH")])])
    if pause:
        out["SITEPLAN_TEST_PAUSE"] = pause
    return out


def siteplan(study: Path) -> subprocess.CompletedProcess[str]:
    """A complete run (``-v``: log lines name their module, e.g. ``pipeline.runner``)."""
    proc = subprocess.run([sys.executable, "-m", "pipeline", "-v", COMMAND, str(study),
                           "--no-progress"],
                          check=False, capture_output=True, text=True, env=env(study), timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc


def kill_while_writing(study: Path, file: str) -> str:
    """Start a run that pauses before committing ``file``; SIGKILL it there; its stderr."""
    lines: list[str] = []
    with subprocess.Popen([sys.executable, "-m", "pipeline", COMMAND, str(study),
                           "--no-progress"], stderr=subprocess.PIPE, text=True,
                          env=env(study, pause=file)) as proc:
        try:
            for line in proc.stderr:  # type: ignore[union-attr]
                lines.append(line)
                if line.startswith(MARKER):
                    proc.send_signal(signal.SIGKILL)
                    break
        finally:
            if proc.poll() is None and not any(x.startswith(MARKER) for x in lines):
                proc.kill()  # never hang the suite if the pause point is not reached
            proc.wait(timeout=60)
    assert any(x.startswith(MARKER) for x in lines), "".join(lines)
    assert proc.returncode == -signal.SIGKILL
    return "".join(lines)


def outputs(study: Path) -> dict[str, bytes]:
    out = study.parent.parent / "maps"
    return {rel: (out / rel).read_bytes() for name in STAGES for rel in OUTPUTS[name]}


def read_all(study: Path) -> None:
    """Parse every output: a half-written file would fail here."""
    out = study.parent.parent / "maps"
    for name in STAGES:
        for rel in OUTPUTS[name]:
            path = out / rel
            if path.suffix == ".parquet":
                assert len(pd.read_parquet(path)) > 0, rel
            elif path.suffix == ".csv":
                assert len(pd.read_csv(path)) > 0, rel
            elif path.suffix == ".gpkg":
                assert len(gpd.read_file(path, layer=path.stem)) > 0, rel
            elif path.suffix == ".png":
                from PIL import Image

                with Image.open(path) as image:
                    image.verify()
            else:
                assert path.read_text(encoding="utf-8").strip(), rel


def test_killed_mid_stage_keeps_outputs_and_the_next_run_redoes_only_the_rest(study):
    siteplan(study)
    before = outputs(study)
    read_all(study)

    population = gpd.read_file(study.parent / "population.gpkg", layer="population")
    population.loc[population.index[:20], "people"] += 50
    population.to_file(study.parent / "population.gpkg", layer="population")

    log = kill_while_writing(study, "routes.gpkg")
    assert "hazard: up to date, skipped" in log and "envelope: up to date, skipped" in log

    # previous outputs readable; score and maps never ran, so their files are untouched
    read_all(study)
    after = outputs(study)
    for rel in OUTPUTS["score"] + OUTPUTS["maps"] + OUTPUTS["hazard"] + OUTPUTS["envelope"]:
        assert after[rel] == before[rel], rel
    assert after["stages/access.parquet"] != before["stages/access.parquet"]  # committed
    assert after["stages/routes.gpkg"] == before["stages/routes.gpkg"]  # not yet

    # what is left over is hidden: dot-prefixed temporary files only
    out = study.parent.parent / "maps"
    known = {out / rel for rel in before} | {out / ".siteplan" / "state.json"}
    extra = [p for p in out.rglob("*") if p.is_file() and p not in known]
    assert extra, "the kill should have left the temporary routes file"
    assert all(p.name.startswith(".") for p in extra), extra

    # the next run redoes the interrupted stage and the one after it, nothing else
    log = siteplan(study).stderr
    for name in ("hazard", "envelope"):
        assert f"{name}: up to date, skipped" in log
    for name in ("access", "score", "maps"):
        assert f"{name}: up to date, skipped" not in log
        assert f"INFO pipeline.runner: {name}: " in log
    read_all(study)
    final = outputs(study)
    assert final["sites.csv"] != before["sites.csv"]  # the new population is rated


def test_killed_in_the_first_stage_of_a_fresh_run_leaves_no_output(study):
    log = kill_while_writing(study, "hazard.parquet")
    assert "zonal_stats" in log
    out = study.parent.parent / "maps"
    files = [p for p in out.rglob("*") if p.is_file()]
    assert all(p.name.startswith(".") for p in files), files
    log = siteplan(study).stderr
    assert "up to date, skipped" not in log
    read_all(study)
