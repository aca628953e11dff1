"""The bundled default study reproduces the published Hamanaka figures.

Published (planning-facts.md section 1; seed 001): sites at 16 / 42 / 45 m against
a 13.9 m T.P. design run-up (margins 2.1 / 28.1 / 31.1 m), areas 15,000 / 18,700 /
17,000 m2, cut 630,000 / 135,000 / 130,000 m3, one / one / two entrances,
~100 m at 7.5 % / ~600 m at 6.8 % / ~600 m at 6.4 % from the central street,
overall × / ◎ / △; the MLIT programme 4,266.9 m2 and 580 x 2 = 1,160 m2 of
evacuation space.
"""

from __future__ import annotations

import pandas as pd
import pytest

from pipeline.config import load_study
from pipeline.demo import write_demo_study
from pipeline.runner import Runner
from pipeline.stages import STAGES

DEM_TOL = 0.3  # the 5 m laser DEM's vertical accuracy


@pytest.fixture(scope="module")
def sites(tmp_path_factory) -> pd.DataFrame:
    folder = tmp_path_factory.mktemp("study")
    study = load_study(write_demo_study(folder))
    Runner(study, STAGES).run(["score"])
    return pd.read_csv(study.output / "sites.csv", index_col="site_id")


def test_margins_over_the_design_runup(sites):
    margin = sites["tsunami_margin"]
    assert margin["S1"] == pytest.approx(2.1, abs=DEM_TOL)
    assert margin["S2"] == pytest.approx(28.1, abs=DEM_TOL)
    assert margin["S3"] == pytest.approx(31.1, abs=DEM_TOL)
    assert margin["S0"] < 0  # the current town hall is below the run-up
    assert sites.loc["S0", "ground_min"] == pytest.approx(3.2, abs=DEM_TOL)
    assert sites.loc[["S1", "S2", "S3"], "tsunami_clear"].all()
    assert not sites.loc["S0", "tsunami_clear"]
    assert (sites["tsunami_level"] == 13.9).all()


def test_site_areas(sites):
    assert sites.loc["S1", "site_area"] == pytest.approx(15_000, rel=0.02)
    assert sites.loc["S2", "site_area"] == pytest.approx(18_700, rel=0.02)
    assert sites.loc["S3", "site_area"] == pytest.approx(17_000, rel=0.02)


def test_earthwork_hilltop_needs_far_less_cut_than_the_bluff(sites):
    cut = sites["cut_m3"]
    assert cut["S1"] == pytest.approx(630_000, rel=0.1)
    assert cut["S2"] == pytest.approx(135_000, rel=0.1)
    assert cut["S3"] == pytest.approx(130_000, rel=0.1)
    assert cut["S1"] > 4 * cut["S2"]


def test_entrances(sites):
    assert sites.loc[["S1", "S2", "S3"], "n_entrances"].tolist() == [1, 1, 2]


def test_distance_and_grade_from_the_central_street(sites):
    d, g = sites["dist_street_m"], sites["street_grade_mean_pct"]
    assert d["S1"] == pytest.approx(100, abs=10)
    assert d["S2"] == pytest.approx(600, abs=30)
    assert d["S3"] == pytest.approx(600, abs=30)
    assert d["S1"] == d[["S1", "S2", "S3"]].min()  # the bluff is closest...
    assert g["S1"] == pytest.approx(7.5, abs=0.3)   # ...and steepest
    assert g["S2"] == pytest.approx(6.8, abs=0.3)
    assert g["S3"] == pytest.approx(6.4, abs=0.3)
    assert g["S1"] == g[["S1", "S2", "S3"]].max()


def test_evacuating_population_reaches_sites(sites):
    share = sites["pop_share_within_walk"]
    assert share["S0"] == 1.0
    assert 0 < share["S3"] < share["S2"] < 1


def test_programme_and_evacuation_space(sites):
    assert (sites["required_floor_area"] == 4266.9).all()
    assert (sites["evacuation_space_m2"] == 1160.0).all()


def test_published_overall_pattern(sites):
    assert sites.loc[["S1", "S2", "S3"], "overall"].tolist() == ["×", "◎", "△"]
    assert sites.loc["S2", "rank"] == 1
    assert sites.loc["S2", "first_share"] > 0.5


def test_riverside_site_needs_raised_floors(sites):
    # planned flood ~1.0 m: the 1st floor raised ~1.2 m; maximum flood ~3.0 m: ~3.2 m
    assert sites.loc["S4", "flood_planned_floor_raise_needed"] == pytest.approx(1.2, abs=0.1)
    assert sites.loc["S4", "flood_max_floor_raise_needed"] == pytest.approx(3.2, abs=0.1)
    assert sites.loc["S4", "flood_max_dry_floor"] == 2
