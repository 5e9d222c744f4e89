"""The keep rule: a one-sided t-test of the candidate's mean against the best's, at a stated false-keep rate.

Every best (the baseline, and each keep once it is decided) is trained K times with seeds that take part in no
decision: their mean is the score to beat (the *bar*, unbiased) and their spread is noise measured where the next
comparisons happen. A candidate trains once (the screen): it earns confirmation runs only if it clears the
`1 - SCREEN_PASS` t quantile, so about SCREEN_PASS of no-effect edits cost more than one run. Then the mean of all
its runs is compared with the bar:

    gain / (sigma * sqrt(1/n + 1/m)) > t(1 - false_keep_rate, df)   and   gain > min_delta

n and m are the runs on each side; sigma is the pooled std of the repeated groups nearest the bar (every group of
unselected runs of one commit: baseline repeats, the runs after a screen, a keep's re-measure runs), at least the
sampling error of the score on the selection split; df the pool's degrees of freedom (0: the z quantile, and the
rate is not held). The screen only ever discards, so the final test alone bounds the false-keep rate (a
non-binding futility stage). docs/keep-rule.md has the assumptions and the benchmark.

The functions at the top work on numpy arrays as well as floats: scripts/bench_keep_rule.py simulates the rule with
them.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import asdict, dataclass, field

import numpy as np

DEFAULT_FALSE_KEEP_RATE = 0.01  # a no-effect edit is kept with at most this probability
SCREEN_PASS = 0.2  # share of no-effect candidates whose first run earns confirmation runs
CONFIRM_RUNS = 2  # runs added after the screen (two: their spread is unselected noise, one degree of freedom)
POOL_DF = 20  # the nearest groups are pooled until they hold this many degrees of freedom
CONSISTENT = 0.05  # a group quieter than the pool at this one-sided F level is not pooled
UNSELECTED = ("baseline", "confirmation", "re-applied", "re-measure")  # trial kinds no decision selected


# --- the statistics, on floats or numpy arrays ----------------------------------------------------------------
def quantile(p, df):
    """The p quantile of Student's t with `df` degrees of freedom; the normal's where df is 0 (no pooled noise)."""
    from scipy.stats import norm, t

    df = np.asarray(df, dtype=float)
    q = np.where(df > 0, t.ppf(p, np.maximum(df, 1.0)), norm.ppf(p))
    return q if q.ndim else float(q)


def needed_gain(sigma, n, m, df, p):
    """The smallest gain of a mean of n runs over a mean of m runs that clears the p quantile."""
    return quantile(p, df) * np.asarray(sigma) * np.sqrt(1.0 / np.asarray(n) + 1.0 / np.asarray(m))


def sampling_floor(score, rows):
    """The standard error of a proportion-like score in [0, 1] measured on `rows` rows (0 outside [0, 1] or without
    rows): the least noise a score on that split has, whatever the repeats say."""
    score = np.asarray(score, dtype=float)
    inside = (score >= 0) & (score <= 1) & (rows > 0)
    p = np.clip(score, 0.0, 1.0)
    return np.where(inside, np.sqrt(p * (1 - p) / max(rows, 1)), 0.0)


def pool(means, ss, dfs, bar, cap: int = POOL_DF, consistent: float = CONSISTENT):
    """Pooled variance and degrees of freedom of the groups nearest `bar` (the last axis holds the groups).

    `ss`: each group's sum of squared deviations from its own mean, `dfs`: its runs minus one (0: no group). Groups
    are taken nearest-mean first until the pool holds `cap` degrees of freedom; a group significantly *quieter* than
    the pool so far (a one-sided F-test at level `consistent`) is left out: a quieter level's noise (an untrained
    baseline's, say) is not borrowed, while a louder group is (that errs towards fewer keeps). Under normal noise a
    group's spread is independent of its mean, so choosing groups by their means does not bias the pooled variance.
    """
    from scipy.stats import f

    means, ss, dfs = np.asarray(means, float), np.asarray(ss, float), np.asarray(dfs, float)
    distance = np.where(dfs > 0, np.abs(means - np.expand_dims(np.asarray(bar, float), -1)), np.inf)
    order = np.argsort(distance, axis=-1, kind="stable")
    ss, dfs = np.take_along_axis(ss, order, -1), np.take_along_axis(dfs, order, -1)
    total, df = np.zeros(dfs.shape[:-1]), np.zeros(dfs.shape[:-1])
    for j in range(dfs.shape[-1]):
        group_ss, group_df = ss[..., j], dfs[..., j]
        if not np.any(group_df > 0):
            continue
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = (group_ss / np.maximum(group_df, 1)) / (total / np.maximum(df, 1))  # inf on a pool of 0
        fits = (df == 0) | (ratio >= f.ppf(consistent, np.maximum(group_df, 1), np.maximum(df, 1)))
        take = (group_df > 0) & (df < cap) & fits
        total, df = total + np.where(take, group_ss, 0.0), df + np.where(take, group_df, 0.0)
    var = np.where(df > 0, total / np.maximum(df, 1.0), 0.0)
    return var, df


# --- the run's noise and its rule ------------------------------------------------------------------------------
@dataclass
class NoiseFloor:
    """The baseline's runs (kept in its record as `decision["noise"]`)."""

    scores: list[float]  # selection score of each baseline run
    seeds: list[int]

    @property
    def mean(self) -> float:
        return statistics.fmean(self.scores)

    @property
    def std(self) -> float:
        """Sample standard deviation; 0 with a single run."""
        return statistics.stdev(self.scores) if len(self.scores) > 1 else 0.0

    def to_dict(self) -> dict:
        return {**asdict(self), "mean": self.mean, "std": self.std}

    @classmethod
    def from_dict(cls, data: dict) -> NoiseFloor:
        return cls(scores=list(data["scores"]), seeds=list(data["seeds"]))


@dataclass
class Group:
    """Unselected runs of one commit: their mean, their sum of squares about it, their number."""

    label: str  # exp-NNNN kind
    mean: float
    ss: float
    runs: int

    @classmethod
    def of(cls, label: str, scores: list[float]) -> Group:
        mean = statistics.fmean(scores)
        return cls(label, mean, sum((s - mean) ** 2 for s in scores), len(scores))


def groups_of(record) -> list[Group]:
    """The groups of unselected runs a record holds: its baseline runs, its re-measure runs, the runs of one commit
    trained after a screen (confirmations, re-applied runs). A first run is never in a group: the screen chose it."""
    by_key: dict[tuple, list[float]] = {}
    for trial in record.trials:
        if not isinstance(trial, dict) or trial.get("kind") not in UNSELECTED or trial.get("status", "ok") != "ok":
            continue
        score = trial.get("selection")
        if isinstance(score, int | float) and not isinstance(score, bool) and math.isfinite(score):
            by_key.setdefault((trial["kind"], trial.get("commit", "")), []).append(float(score))
    return [Group(f"{record.experiment} {kind}", *_stats(s)) for (kind, _), s in by_key.items() if len(s) > 1]


def _stats(scores: list[float]) -> tuple[float, float, int]:
    group = Group.of("", scores)
    return group.mean, group.ss, group.runs


def bar_of(record) -> tuple[float, int, bool]:
    """(the score to beat, the runs it is a mean of, whether those runs took part in the decision that kept it).

    A best's bar is its re-measure runs (or the baseline's runs); a keep decided before the bar existed (an older
    run) has only its deciding runs: their mean is biased upward, and is said to be."""
    for kind in ("re-measure", "baseline"):
        scores = [
            float(t["selection"])
            for t in record.trials
            if isinstance(t, dict) and t.get("kind") == kind and t.get("status", "ok") == "ok"
            if isinstance(t.get("selection"), int | float)
        ]
        if scores:
            return statistics.fmean(scores), len(scores), False
    decided = [t for t in record.trials if isinstance(t, dict) and t.get("commit", record.commit) == record.commit]
    return float(record.selection), max(1, len(decided)), record.number > 0


@dataclass
class KeepRule:
    direction: str  # maximize or minimize
    min_delta: float
    false_keep_rate: float = DEFAULT_FALSE_KEEP_RATE
    confirm: bool = True  # False: the first run's test is final (same rate, less power)
    rows: int = 0  # rows of the selection split (the sampling floor)
    groups: list[Group] = field(default_factory=list)

    def observe(self, record) -> None:
        """Add a decided record's groups to the pool."""
        self.groups += groups_of(record)

    def gain(self, score: float, best: float) -> float:
        """How much better `score` is than `best`, positive when it is better whatever the direction."""
        return score - best if self.direction == "maximize" else best - score

    def noise(self, bar: float) -> dict:
        """sigma at `bar`: the pooled std of the nearest groups, at least the sampling floor; which bound decided."""
        if self.groups:
            var, df = pool(
                [g.mean for g in self.groups], [g.ss for g in self.groups], [g.runs - 1 for g in self.groups], bar
            )
            pooled, df = math.sqrt(float(var)), int(df)
        else:
            pooled, df = 0.0, 0
        floor = float(sampling_floor(bar, self.rows))
        sigma = max(pooled, floor)
        source = "none" if sigma == 0 else "pooled" if pooled >= floor else "floor"
        return {"sigma": sigma, "sigma_source": source, "pooled_sigma": pooled, "df": df, "floor": floor}

    def needed(self, bar: float, n: int, m: int, stage: str) -> tuple[float, dict]:
        """The gain `stage` needs of a mean of n runs over the bar (a mean of m), and the noise behind it."""
        noise = self.noise(bar)
        level = 1 - SCREEN_PASS if stage == "screen" else 1 - self.false_keep_rate
        threshold = float(needed_gain(noise["sigma"], n, m, noise["df"], level))
        if stage != "screen":
            threshold = max(threshold, self.min_delta)
        return threshold, {**noise, "level": level}

    def decide(self, score: float, n: int, best, stage: str) -> tuple[bool, dict]:
        """(clears?, the numbers for the ledger): the mean `score` of n runs against `best`'s bar."""
        bar, m, biased = bar_of(best)
        threshold, noise = self.needed(bar, n, m, stage)
        gain = self.gain(score, bar)
        clears = gain > threshold
        held = noise["df"] > 0 and noise["sigma_source"] != "none"
        decision = {
            "rule": "t-test",
            "stage": stage,
            "score": score,
            "runs": n,
            "best": bar,
            "best_runs": m,
            "best_experiment": best.number,
            "gain": gain,
            "threshold": threshold,
            **noise,
            "false_keep_rate": self.false_keep_rate,
            "min_delta": self.min_delta,
            "direction": self.direction,
            "rate_held": held,
        }
        if biased:
            decision["bar_biased"] = True
        if not held:
            decision["warning"] = "the false-keep rate is not held: no repeated runs measure the noise yet" + (
                ", sigma is the sampling floor alone (normal quantile)" if noise["sigma"] else ", only min_delta"
            )
        return clears, decision

    def facts(self, best) -> dict:
        """The rule as it stands for the next candidate on `best`, for the agent's prompt: the gain a confirmed keep
        needs, as `z * noise_std` (z = threshold / sigma) so the older prompt text stays true."""
        bar, m, _ = bar_of(best)
        n = 1 + CONFIRM_RUNS if self.confirm else 1
        threshold, noise = self.needed(bar, n, m, "final")
        sigma = noise["sigma"]
        return {
            "min_delta": self.min_delta,
            "z": threshold / sigma if sigma else 0.0,
            "noise_std": sigma,
            "threshold": threshold,
            "confirm": self.confirm,
            "direction": self.direction,
            "false_keep_rate": self.false_keep_rate,
            "df": noise["df"],
        }


def rule_for(run, records) -> KeepRule:
    """The run's rule: its options, the selection split's size and every repeated group its ledger holds."""
    rule = KeepRule(
        direction=run.recipe.metric.direction,
        min_delta=run.config.min_delta or 0.0,
        false_keep_rate=run.config.false_keep_rate or DEFAULT_FALSE_KEEP_RATE,
        confirm=run.config.confirm,
        rows=_rows(run.splits / "selection.jsonl"),
    )
    for record in records:
        rule.observe(record)
    return rule


def _rows(path) -> int:
    try:
        with open(path, "rb") as f:
            return sum(1 for line in f if line.strip())
    except OSError:
        return 0


def seed_for(seed: int, number: int, index: int) -> int:
    """The seed of run `index` of experiment `number`: the baseline's runs take seed, seed + 1, ...; experiment n
    starts at seed + 1000 n, so no two candidates share a first run's seed (their comparisons share no luck)."""
    return seed + 1000 * number + index
