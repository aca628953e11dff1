"""Stage runner: outputs, skipping unchanged stages, rerunning exactly what a change touches."""

from __future__ import annotations

import json
import shutil

import geopandas as gpd
import pytest

from pipeline.config import load_study
from pipeline.demo import write_demo_study
from pipeline.errors import OutputError
from pipeline.runner import Options, Runner
from pipeline.stages import OUTPUTS, STAGES

# the maps stage has its own tests; these exercise the runner on the others
ALL = ["hazard", "envelope", "access", "score"]
STAGES4 = {k: v for k, v in STAGES.items() if k in ALL}


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    folder = tmp_path_factory.mktemp("template") / "layers"
    write_demo_study(folder)
    return folder


@pytest.fixture
def study_path(tmp_path, template):
    folder = tmp_path / "layers"
    shutil.copytree(template, folder)
    return folder / "study.toml"


def ran(results):
    return [r.name for r in results if r.ran]


def test_first_run_runs_everything_and_writes_outputs(study_path):
    study = load_study(study_path)
    results = Runner(study, STAGES4).run(ALL)
    assert ran(results) == ALL
    for name in ALL:
        for rel in OUTPUTS[name]:
            assert (study.output / rel).is_file(), rel
    state = json.loads((study.output / ".siteplan" / "state.json").read_text())
    assert set(state["stages"]) == set(ALL)


def test_rerun_with_nothing_changed_skips_every_stage(study_path):
    Runner(load_study(study_path), STAGES4).run(ALL)
    assert ran(Runner(load_study(study_path), STAGES4).run(ALL)) == []


def test_changed_population_reruns_access_and_score_only(study_path):
    Runner(load_study(study_path), STAGES4).run(ALL)
    pop_path = study_path.parent / "population.gpkg"
    pop = gpd.read_file(pop_path)
    pop.loc[0, "people"] += 10
    pop.to_file(pop_path, layer="population")
    assert ran(Runner(load_study(study_path), STAGES4).run(ALL)) == ["access", "score"]


def test_changed_dem_reruns_everything(study_path):
    Runner(load_study(study_path), STAGES4).run(ALL)
    import rasterio

    with rasterio.open(study_path.parent / "dem.tif", "r+") as ds:
        z = ds.read(1)
        z[0, 0] += 1.0
        ds.write(z, 1)
    assert ran(Runner(load_study(study_path), STAGES4).run(ALL)) == ALL


def test_touched_but_unchanged_input_is_still_up_to_date(study_path):
    Runner(load_study(study_path), STAGES4).run(ALL)
    (study_path.parent / "roads.gpkg").touch()
    assert ran(Runner(load_study(study_path), STAGES4).run(ALL)) == []


def test_changed_programme_reruns_envelope_and_score(study_path):
    Runner(load_study(study_path), STAGES4).run(ALL)
    text = study_path.read_text().replace("parking_need = 214", "parking_need = 150")
    study_path.write_text(text)
    assert ran(Runner(load_study(study_path), STAGES4).run(ALL)) == ["envelope", "score"]


def test_a_setting_that_changes_nothing_downstream_stops_there(study_path):
    # every parcel has its own coverage_ratio, so the study default changes no result:
    # envelope reruns (its settings changed) but writes the same table, and score is skipped
    Runner(load_study(study_path), STAGES4).run(ALL)
    text = study_path.read_text().replace("coverage_ratio = 0.6", "coverage_ratio = 0.5")
    study_path.write_text(text)
    assert ran(Runner(load_study(study_path), STAGES4).run(ALL)) == ["envelope"]


def test_running_one_stage_brings_its_upstream_up_to_date(study_path):
    results = Runner(load_study(study_path), STAGES4).run(["envelope"])
    assert ran(results) == ["hazard", "envelope"]


def test_force_reruns_the_named_stage_only(study_path):
    Runner(load_study(study_path), STAGES4).run(ALL)
    results = Runner(load_study(study_path), STAGES4, Options(force=True)).run(["score"])
    assert ran(results) == ["score"]


def test_deleted_output_is_rewritten(study_path):
    study = load_study(study_path)
    Runner(study, STAGES4).run(ALL)
    (study.output / "sites.csv").unlink()
    assert ran(Runner(load_study(study_path), STAGES4).run(ALL)) == ["score"]


def test_a_file_siteplan_did_not_write_is_not_overwritten(study_path):
    study = load_study(study_path)
    study.output.mkdir(parents=True)
    (study.output / "sites.csv").write_text("my own spreadsheet")
    with pytest.raises(OutputError, match=r"sites.csv exists and was not written by siteplan; "
                                          r"pass --overwrite"):
        Runner(study, STAGES4).run(ALL)
    assert (study.output / "sites.csv").read_text() == "my own spreadsheet"
    Runner(load_study(study_path), STAGES4, Options(overwrite=True)).run(ALL)
    assert (study.output / "sites.csv").read_text() != "my own spreadsheet"


def test_output_folder_that_holds_the_inputs_is_refused(study_path):
    text = study_path.read_text().replace('output = "../maps"', 'output = "."')
    study_path.write_text(text)
    with pytest.raises(OutputError, match=r"output folder .*layers holds input .* of the study"):
        Runner(load_study(study_path), STAGES4).run(ALL)
