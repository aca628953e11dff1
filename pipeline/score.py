"""Ratings: criterion marks ◎ ○ △ ×, the overall mark, the rank, and its robustness.

Each criterion of the study names a metric (a column of the sites table), the
direction that is better and the breaks that turn a value into a mark. Marks
count as points (◎ 3, ○ 2, △ 1, × 0); the overall score is the weighted mean of
a site's points, and the overall mark follows from ``[score]
overall_thresholds``. A × on a criterion marked ``veto`` makes the site × overall
whatever its score, as a site below the design water level is unacceptable
however good its access. The sensitivity check redraws the weights many times
and counts how often each site comes first.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline.config import Criterion, ScoreSettings
from pipeline.errors import ConfigError

logger = logging.getLogger(__name__)

MARKS = ("×", "△", "○", "◎")
"""Marks by points: ``MARKS[points]``."""
NO_MARK = "—"


def criterion_points(values: pd.Series, criterion: Criterion) -> pd.Series:
    """Points (0-3) of one criterion for every site; NaN where the metric is missing.

    With three breaks ``(a, b, c)`` and ``better = "higher"``: value >= a is ◎ (3),
    >= b is ○ (2), >= c is △ (1), else × (0); with ``"lower"`` the comparisons are
    <=. With one break it is pass (○, 2) or fail (×, 0). Booleans count as 1/0.

    Examples
    --------
    >>> c = Criterion(metric="m", thresholds=(20.0, 5.0, 0.0))
    >>> criterion_points(pd.Series([28.1, 2.1, -10.7, None]), c).tolist()
    [3.0, 1.0, 0.0, nan]
    >>> c = Criterion(metric="d", thresholds=(300.0, 700.0, 1500.0), better="lower")
    >>> criterion_points(pd.Series([100.0, 600.0, 2000.0]), c).tolist()
    [3.0, 2.0, 0.0]
    >>> criterion_points(pd.Series([True, False]), Criterion(metric="ok", thresholds=(1,))).tolist()
    [2.0, 0.0]
    """
    v = pd.to_numeric(values.astype("float64") if values.dtype == bool else values,
                      errors="coerce").to_numpy(dtype=float)
    t = np.asarray(criterion.thresholds, dtype=float)
    passed = (v[:, None] >= t[None, :]) if criterion.better == "higher" else (v[:, None] <= t[None, :])
    if len(t) == 1:
        points = np.where(passed[:, 0], 2.0, 0.0)
    else:
        points = passed.sum(axis=1).astype(float)
    points[np.isnan(v)] = np.nan
    return pd.Series(points, index=values.index, name=criterion.metric)


def rate_sites(
    sites: pd.DataFrame,
    criteria: Sequence[Criterion],
    settings: ScoreSettings = ScoreSettings(),
) -> pd.DataFrame:
    """Mark every site on every criterion, then overall, and rank the sites.

    Parameters
    ----------
    sites : DataFrame
        One row per site with the metric columns the criteria name.
    criteria : sequence of Criterion
        From the study's ``[[criterion]]`` tables.
    settings : ScoreSettings
        Overall thresholds.

    Returns
    -------
    DataFrame
        Aligned to ``sites.index``: ``mark_<metric>`` and ``points_<metric>`` per
        criterion, ``score`` (weighted mean points), ``vetoed``, ``overall`` (mark)
        and ``rank`` (1 = best; vetoed sites last).

    Examples
    --------
    >>> sites = pd.DataFrame({"margin": [2.1, 28.1, 31.1], "cut": [630e3, 135e3, 130e3]},
    ...                      index=["S1", "S2", "S3"])
    >>> crit = [Criterion(metric="margin", thresholds=(20.0, 5.0, 0.0), veto=True),
    ...         Criterion(metric="cut", better="lower", thresholds=(100e3, 200e3, 400e3),
    ...                   veto=True)]
    >>> rate_sites(sites, crit)[["overall", "rank"]]
       overall  rank
    S1       ×     3
    S2       ◎     1
    S3       ◎     1
    """
    missing = [c.metric for c in criteria if c.metric not in sites.columns]
    if missing:
        raise ConfigError(f"[[criterion]] metric(s) {', '.join(missing)} are not columns of the "
                          f"sites table; available: {', '.join(map(str, sites.columns))}")
    out = pd.DataFrame(index=sites.index)
    points = pd.DataFrame(index=sites.index)
    for c in criteria:
        p = criterion_points(sites[c.metric], c)
        points[c.metric] = p
        out[f"points_{c.metric}"] = p
        out[f"mark_{c.metric}"] = marks_from_points(p)
    weights = np.array([c.weight for c in criteria], dtype=float)
    out["score"] = _weighted_mean(points.to_numpy(), weights)
    vetoes = [c.metric for c in criteria if c.veto]
    out["vetoed"] = (points[vetoes] == 0).any(axis=1) if vetoes else False
    overall = overall_points(out["score"], settings.overall_thresholds)
    overall[out["vetoed"].to_numpy()] = 0
    out["overall"] = marks_from_points(pd.Series(overall, index=sites.index))
    key = np.where(out["vetoed"], -np.inf, out["score"].fillna(-np.inf))
    out["rank"] = pd.Series(key, index=sites.index).rank(ascending=False, method="min").astype(int)
    return out


def _weighted_mean(points: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted mean along axis -1 ignoring NaN; ``weights`` broadcast against ``points``."""
    points, weights = np.broadcast_arrays(points, weights)
    valid = ~np.isnan(points)
    w = weights * valid
    total = w.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, (np.nan_to_num(points) * w).sum(axis=-1) / total, np.nan)


def overall_points(score: pd.Series, thresholds: Sequence[float]) -> np.ndarray:
    """Overall points 0-3 from the weighted mean score and three decreasing breaks.

    Examples
    --------
    >>> overall_points(pd.Series([2.6, 2.0, 1.2, 0.5]), (2.5, 1.75, 1.0)).tolist()
    [3, 2, 1, 0]
    """
    s = score.to_numpy(dtype=float)
    return (s[:, None] >= np.asarray(thresholds)[None, :]).sum(axis=1)


def marks_from_points(points: pd.Series) -> pd.Series:
    """◎ ○ △ × from points 3..0; ``—`` where missing.

    Examples
    --------
    >>> marks_from_points(pd.Series([3, 2, 1, 0, None])).tolist()
    ['◎', '○', '△', '×', '—']
    """
    p = pd.to_numeric(points, errors="coerce")
    marks = [NO_MARK if np.isnan(v) else MARKS[int(round(v))] for v in p.to_numpy(dtype=float)]
    return pd.Series(marks, index=points.index, dtype=object)


def weight_sensitivity(
    ratings: pd.DataFrame,
    criteria: Sequence[Criterion],
    settings: ScoreSettings = ScoreSettings(),
) -> pd.Series:
    """Share of weight draws in which each site ranks first.

    Every weight is multiplied by a factor drawn uniformly in ``[1 - r, 1 + r]``
    (``r = settings.sensitivity_range``), ``settings.sensitivity_draws`` times,
    with a fixed seed; vetoed sites never rank first. Ties go to the first site in
    table order.

    Examples
    --------
    >>> sites = pd.DataFrame({"a": [3.0, 1.0], "b": [0.0, 1.0]}, index=["X", "Y"])
    >>> crit = [Criterion(metric="a", thresholds=(3.0, 2.0, 1.0)),
    ...         Criterion(metric="b", thresholds=(3.0, 2.0, 1.0))]
    >>> weight_sensitivity(rate_sites(sites, crit), crit).round(2).tolist()
    [0.92, 0.08]
    """
    n = settings.sensitivity_draws
    index = ratings.index
    if n == 0 or not criteria or len(index) == 0:
        return pd.Series(np.nan, index=index, name="first_share")
    rng = np.random.default_rng(settings.seed)
    base = np.array([c.weight for c in criteria], dtype=float)
    r = settings.sensitivity_range
    draws = base[None, :] * rng.uniform(1 - r, 1 + r, size=(n, len(criteria)))
    points = ratings[[f"points_{c.metric}" for c in criteria]].to_numpy(dtype=float)
    scores = _weighted_mean(points[None, :, :], draws[:, None, :])  # (draws, sites)
    scores = np.where(ratings["vetoed"].to_numpy(dtype=bool)[None, :], -np.inf,
                      np.nan_to_num(scores, nan=-np.inf))
    winners = np.argmax(scores, axis=1)
    counts = np.bincount(winners, minlength=len(index))
    return pd.Series(counts / n, index=index, name="first_share")


# --------------------------------------------------------------------------- the stage


def sites_table(parcels: Any, parts: Sequence[pd.DataFrame]) -> Any:
    """Parcels (geometry and attributes) joined with the stages' tables, one row per site."""
    frame = parcels.drop(columns=[c for c in parcels.columns if c == "site_id"])
    for part in parts:
        frame = frame.join(part.drop(columns=[c for c in part.columns if c in frame.columns]))
    return frame


def run_stage(ctx: Any) -> tuple[dict[str, Path], str]:
    """The ``score`` stage: the sites table (CSV, GeoPackage) and the comparison table."""
    from pipeline._io import write_atomic, write_frame, write_text
    from pipeline.qgis import add_layer_style
    from pipeline.report import comparison_html, comparison_table

    study = ctx.study
    parts = [ctx.stage_frame(name) for name in ("hazard", "envelope", "access")]
    sites = sites_table(ctx.parcels, parts)
    criteria = study.criterion
    if criteria:
        ratings = rate_sites(sites, criteria, study.score)
        ratings["first_share"] = weight_sensitivity(ratings, criteria, study.score)
        sites = sites.join(ratings)
    lang = ctx.options.lang or study.study.lang
    out = ctx.output
    def gpkg(tmp: Path) -> None:
        _gpkg_ready(sites).to_file(tmp, layer="sites", driver="GPKG", engine="pyogrio")
        add_layer_style(tmp, "sites", marks="overall" in sites)

    paths = {
        "sites_csv": write_frame(out / "sites.csv", sites.drop(columns=sites.geometry.name)),
        "sites_gpkg": write_atomic(out / "sites.gpkg", gpkg),
    }
    if study.database.results_table:
        from pipeline.postgis import write_table

        write_table(_gpkg_ready(sites), study.database.results_table,
                    url_env=study.database.url_env)
    if criteria:
        table = comparison_table(sites, criteria, lang=lang)
        paths["comparison_csv"] = write_frame(out / "comparison.csv", table)
        paths["comparison_html"] = write_text(out / "comparison.html", comparison_html(
            table, title=study.maps.title or study.study.name, lang=lang))
        best = sites.sort_values("rank").iloc[0]
        summary = (f"{len(sites)} sites rated on {len(criteria)} criteria; overall "
                   + " ".join(f"{i}:{m}" for i, m in sites["overall"].items())
                   + f"; first: {best.name} ({best['first_share']:.0%} of weight draws)")
    else:
        summary = f"{len(sites)} sites, no criteria to rate ([[criterion]] in the study)"
    return paths, summary


def _gpkg_ready(sites: Any) -> Any:
    """A copy GeoPackage can store: object columns as text, booleans kept."""
    out = sites.copy()
    for c in out.columns:
        if c != out.geometry.name and out[c].dtype == object:
            out[c] = out[c].astype(str)
    out.index = out.index.astype(str)
    return out.reset_index()
