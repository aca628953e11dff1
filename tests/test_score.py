"""Ratings: marks, overall mark with vetoes, ranking, weight sensitivity."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipeline.config import Criterion, ScoreSettings
from pipeline.score import criterion_points, marks_from_points, rate_sites, weight_sensitivity

# The published Hamanaka table (planning-facts.md section 1 and seed 001), marks per criterion:
# site 1: ◎ ○ × △ × ○ × ×  -> overall ×
# site 2: ◎ ◎ ○ ○ ◎ △ ○ ○  -> overall ◎
# site 3: ◎ ◎ ○ ◎ △ △ ○ ×  -> overall △
PUBLISHED = {
    "S1": [3, 2, 0, 1, 0, 2, 0, 0],
    "S2": [3, 3, 2, 2, 3, 1, 2, 2],
    "S3": [3, 3, 2, 3, 1, 1, 2, 0],
}


def published_sites_and_criteria():
    sites = pd.DataFrame(PUBLISHED, index=[f"c{i}" for i in range(1, 9)]).T.astype(float)
    crit = [
        Criterion(metric=f"c{i}", thresholds=(3.0, 2.0, 1.0), veto=(i in (1, 3, 7)))
        for i in range(1, 9)
    ]
    return sites, crit


def test_published_marks_give_the_published_overall_pattern():
    sites, crit = published_sites_and_criteria()
    settings = ScoreSettings(overall_thresholds=(2.2, 1.9, 1.0))
    out = rate_sites(sites, crit, settings)
    assert out["overall"].tolist() == ["×", "◎", "△"]
    assert out["vetoed"].tolist() == [True, False, False]
    assert out["score"].round(3).tolist() == [1.0, 2.25, 1.875]
    assert out["rank"].tolist() == [3, 1, 2]
    assert out.loc["S1", "mark_c3"] == "×"


@pytest.mark.parametrize(
    "better, thresholds, values, expected",
    [
        ("higher", (20.0, 5.0, 0.0), [28.1, 20.0, 4.99, 0.0, -0.01], [3, 3, 1, 1, 0]),
        ("lower", (300.0, 700.0, 1500.0), [100, 300, 300.1, 1500, 1500.1], [3, 3, 2, 1, 0]),
        ("higher", (1.0,), [2.0, 1.0, 0.5], [2, 2, 0]),
    ],
)
def test_thresholds_at_their_boundaries(better, thresholds, values, expected):
    c = Criterion(metric="m", thresholds=thresholds, better=better)
    assert criterion_points(pd.Series(values, dtype=float), c).tolist() == expected


def test_missing_metric_values_are_left_out_of_the_mean():
    sites = pd.DataFrame({"a": [3.0, 3.0], "b": [np.nan, 0.0]}, index=["X", "Y"])
    crit = [
        Criterion(metric="a", thresholds=(3.0, 2.0, 1.0)),
        Criterion(metric="b", thresholds=(3.0, 2.0, 1.0)),
    ]
    out = rate_sites(sites, crit)
    assert out["score"].tolist() == [3.0, 1.5]
    assert out["mark_b"].tolist() == ["—", "×"]


def test_unknown_metric_names_the_available_columns():
    from pipeline.errors import ConfigError

    with pytest.raises(ConfigError, match=r"metric\(s\) nope are not columns .* available: a"):
        rate_sites(pd.DataFrame({"a": [1.0]}), [Criterion(metric="nope", thresholds=(1.0,))])


def test_sensitivity_is_reproducible_and_sums_to_one():
    sites, crit = published_sites_and_criteria()
    ratings = rate_sites(sites, crit)
    a = weight_sensitivity(ratings, crit, ScoreSettings(sensitivity_draws=300))
    b = weight_sensitivity(ratings, crit, ScoreSettings(sensitivity_draws=300))
    assert a.equals(b)
    assert a.sum() == pytest.approx(1.0)
    assert a["S1"] == 0.0  # vetoed sites never come first
    assert a["S2"] > 0.9  # the hilltop wins under almost any weighting


def test_marks_from_points():
    assert marks_from_points(pd.Series([0, 1, 2, 3])).tolist() == ["×", "△", "○", "◎"]
