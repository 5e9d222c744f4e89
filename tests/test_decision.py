"""The keep rule (driver/decision.py): the t quantile at the pool's degrees of freedom, the standard error of a
difference of means, the pool of unselected groups nearest the bar, the sampling floor, and saying when the
false-keep rate cannot be held."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hf_autoresearch.driver.decision import (
    SCREEN_PASS,
    Group,
    KeepRule,
    bar_of,
    groups_of,
    needed_gain,
    pool,
    quantile,
    seed_for,
)
from hf_autoresearch.ledger import ExperimentRecord


def best_with(scores, kind="baseline", number=0):
    record = ExperimentRecord(number, "keep", "best", commit="c0", selection=float(np.mean(scores)))
    record.trials = [{"kind": kind, "commit": "c0", "status": "ok", "selection": s} for s in scores]
    return record


def rule_with(*groups, rows=0, min_delta=0.0, **options):
    rule = KeepRule("maximize", min_delta, rows=rows, **options)
    rule.groups = [Group.of(f"g{i}", list(g)) for i, g in enumerate(groups)]
    return rule


def test_the_final_test_is_a_t_test_of_a_difference_of_means():
    base = [0.50, 0.52, 0.48]  # sigma 0.02, 2 degrees of freedom
    rule = rule_with(base)
    threshold, noise = rule.needed(0.50, 3, 3, "final")
    assert noise["df"] == 2 and noise["sigma"] == pytest.approx(0.02)
    # t(0.99, 2) = 6.965, not z = 2.33: three runs cannot hold 1% with a z quantile
    assert threshold == pytest.approx(6.9646 * 0.02 * math.sqrt(1 / 3 + 1 / 3), rel=1e-4)
    # one run against a mean of three: the spread of the difference is sigma * sqrt(1 + 1/3)
    assert rule.needed(0.50, 1, 3, "final")[0] == pytest.approx(6.9646 * 0.02 * math.sqrt(4 / 3), rel=1e-4)
    assert rule.needed(0.50, 1, 3, "screen")[0] == pytest.approx(
        quantile(1 - SCREEN_PASS, 2) * 0.02 * math.sqrt(4 / 3)
    )
    # the rate is the user's: 5% needs less
    assert rule_with(base, false_keep_rate=0.05).needed(0.5, 3, 3, "final")[0] < threshold
    clears, decision = rule.decide(0.50 + threshold + 1e-6, 3, best_with(base), "final")
    assert clears and decision["rate_held"] and decision["best_runs"] == 3 and decision["false_keep_rate"] == 0.01
    assert not rule.decide(0.50 + threshold - 1e-6, 3, best_with(base), "final")[0]
    assert KeepRule("minimize", 0.0, groups=rule.groups).decide(0.50 - threshold - 1e-6, 3, best_with(base), "x")[0]
    # min_delta still binds a final test
    assert rule_with(base).needed(0.5, 3, 3, "final")[0] < rule_with(base, min_delta=0.5).needed(0.5, 3, 3, "final")[0]


def test_noise_is_pooled_from_the_groups_nearest_the_bar():
    quiet = [0.010, 0.012, 0.008, 0.010, 0.010]  # an untrained baseline: sigma ~0.0014 near 0.01
    loud = [[0.30, 0.40], [0.25, 0.33], [0.36, 0.28]] * 8  # trained models near 0.32: sigma ~0.05
    rule = rule_with(quiet, *loud)
    near_best = rule.noise(0.32)
    assert near_best["df"] == 20 and near_best["sigma"] > 0.05  # pooled until 20 df: the loud groups, nearest
    at_baseline = rule.noise(0.01)
    assert at_baseline["sigma"] < near_best["sigma"]  # the quiet group counts fully where it was measured
    # the pooled variance is the sum of squares over the degrees of freedom
    var, df = pool([0.0, 1.0], [2.0, 6.0], [2, 3], 0.0, cap=100)
    assert (var, df) == (pytest.approx(8 / 5), 5)


def test_a_quieter_level_is_not_borrowed_a_louder_one_is():
    """Issue 19's real case: the untrained baseline's spread (sigma 0.01) must not be pooled with a trained best's
    (sigma 0.077): it would halve the noise where the comparison happens. A louder group is pooled (fewer keeps)."""
    trained, pair, untrained = (0.157, 4 * 0.0059, 4), (0.102, 0.0049, 1), (0.012, 4 * 0.0001, 4)
    var, df = pool(*zip(trained, pair, untrained, strict=True), 0.157)
    assert df == 5 and math.sqrt(var) == pytest.approx(0.0755, abs=1e-3)
    var, df = pool(*zip(untrained, trained, strict=True), 0.012)  # at the baseline, the trained spread is pooled
    assert df == 8 and var == pytest.approx((4 * 0.0001 + 4 * 0.0059) / 8)


def test_a_noise_of_zero_falls_back_to_the_sampling_floor_and_says_so():
    rule = rule_with([0.50, 0.50, 0.50], rows=1000)  # repeats that happen to agree
    clears, decision = rule.decide(0.501, 3, best_with([0.50, 0.50, 0.50]), "final")
    assert not clears
    assert decision["sigma_source"] == "floor" and decision["pooled_sigma"] == 0.0
    assert decision["sigma"] == pytest.approx(math.sqrt(0.25 / 1000))  # ~1.6 points at 50% on 1,000 rows
    # a pool above the floor decides
    assert rule_with([0.40, 0.60, 0.50], rows=1000).noise(0.5)["sigma_source"] == "pooled"


def test_without_repeated_runs_the_rule_says_the_rate_is_not_held():
    rule = KeepRule("maximize", 0.0, rows=1000)  # one baseline run: no group
    clears, decision = rule.decide(0.6, 1, best_with([0.5]), "first run")
    assert decision["df"] == 0 and not decision["rate_held"]
    assert "not held" in decision["warning"] and "sampling floor" in decision["warning"]
    assert decision["threshold"] == pytest.approx(2.3263 * math.sqrt(0.25 / 1000) * math.sqrt(2), rel=1e-3)
    assert clears
    # a metric outside [0, 1] has no sampling floor: only min_delta is left, and the warning says that too
    decision = KeepRule("minimize", 0.0).decide(3.0, 1, best_with([4.0]), "first run")[1]
    assert decision["sigma_source"] == "none" and "only min_delta" in decision["warning"]


def test_groups_hold_unselected_runs_only_and_the_bar_is_the_re_measure_mean():
    record = ExperimentRecord(4, "keep", "x", commit="c4", selection=0.7)
    run = lambda kind, s, commit="c4", status="ok": {"kind": kind, "commit": commit, "status": status, "selection": s}  # noqa: E731
    record.trials = [
        run("first run", 0.90),  # the screen chose it: never in a group
        run("confirmation", 0.70),
        run("confirmation", 0.72),
        run("re-measure", 0.60),
        run("re-measure", 0.64),
        run("re-measure", 0.0, status="crash"),
    ]
    groups = groups_of(record)
    assert sorted((g.runs, round(g.mean, 4)) for g in groups) == [(2, 0.62), (2, 0.71)]
    assert bar_of(record) == (pytest.approx(0.62), 2, False)
    # a keep decided by the old rule has only its deciding runs: their mean, flagged as biased
    old = ExperimentRecord(2, "keep", "old", commit="c2", selection=0.8)
    old.trials = [run("first run", 0.82, "c2"), run("confirmation", 0.78, "c2")]
    assert groups_of(old) == [] and bar_of(old) == (0.8, 2, True)


def test_needed_gain_and_quantile_work_on_arrays_for_the_benchmark():
    gains = needed_gain(np.array([1.0, 1.0]), 1, 3, np.array([0, 4]), 0.99)
    assert gains[0] == pytest.approx(2.3263 * math.sqrt(4 / 3), rel=1e-4)
    assert gains[1] == pytest.approx(3.7469 * math.sqrt(4 / 3), rel=1e-4)


def test_every_run_has_a_seed_of_its_own():
    seeds = {seed_for(0, n, i) for n in range(200) for i in range(12)}
    assert len(seeds) == 200 * 12
    assert [seed_for(7, 0, i) for i in range(3)] == [7, 8, 9]  # the baseline's, as before
