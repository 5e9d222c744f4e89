"""The keep rule simulated (scripts/bench_keep_rule.py simulate): the old rule beside the new, K = 1..5 baseline runs.

Scores are in units of the training noise sigma (every run = the configuration's true score + N(0, 1), runs
independent: no seed is shared between configurations); the sampling floor is off (it can only raise sigma). The
decisions are the real code's: the new rule's functions from hf_autoresearch.driver.decision (quantile, pool,
needed_gain, the constants), the old rule's DecisionRule from git history (a14688a:hf_autoresearch/decision.py). The
flow around them (screen, confirmation runs, re-measure; first run then one confirmation for the old rule) mirrors
driver/assess.py.

Measured, for each K:
- false keeps per 100 no-effect experiments: nights of 100 edits with no effect, the bar moving at each (false) keep;
- runs per no-effect experiment in those nights (re-measure runs of false keeps included);
- power: P(keep) of an edit with a true gain of 1, 2, 3 sigma, judged as the night's first experiment (the baseline's
  runs only) and after 50 no-effect experiments (the pool the night has grown by then);
- the bias of a keep's carried-forward score (the next bar minus the kept configuration's true score), for kept
  no-effect edits and for kept 2-sigma gains.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from hf_autoresearch.driver import decision

OLD_COMMIT = "a14688a"
GAINS = (0.0, 1.0, 2.0, 3.0)  # 0: P(false keep) of one no-effect edit
PROBE_AFTER = 50


def old_rule_module():
    """hf_autoresearch/decision.py as of a14688a (the rule before issue 19), loaded as a module."""
    root = Path(__file__).resolve().parents[1]
    source = subprocess.run(
        ["git", "show", f"{OLD_COMMIT}:hf_autoresearch/decision.py"], cwd=root, capture_output=True, text=True
    )
    if source.returncode != 0:
        raise SystemExit(f"cannot read the old rule from git ({source.stderr.strip()}); run from a clone with history")
    path = Path(tempfile.mkdtemp()) / "old_decision.py"
    path.write_text(source.stdout)
    spec = importlib.util.spec_from_file_location("old_decision", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["old_decision"] = module
    spec.loader.exec_module(module)
    return module


# --- the old rule: gain > max(min_delta, z * the baseline's std), a first run then the mean with one confirmation ---
def old_rule(old, base: np.ndarray):
    return old.DecisionRule("maximize", 0.0, 2.0, old.NoiseFloor(list(base), list(range(len(base)))))


def old_night(old, K: int, experiments: int, rng) -> tuple[int, int, list[float]]:
    """(keeps, runs, carried scores of the keeps) of one night of no-effect edits (true score 0 throughout)."""
    base = rng.standard_normal(K)
    rule = old_rule(old, base)
    best, first, confirm = float(np.mean(base)), rng.standard_normal(experiments), rng.standard_normal(experiments)
    keeps, runs, carried, i = 0, 0, [], 0
    while i < experiments:
        clears1, _ = rule.decide(first[i:], best, 0, "first run")
        mean = (first[i:] + confirm[i:]) / 2
        clears2, _ = rule.decide(mean, best, 0, "mean with confirmation run")
        kept = np.flatnonzero(clears1 & clears2)
        if not len(kept):
            runs += experiments - i + int(clears1.sum())
            break
        j = int(kept[0])
        runs += j + 1 + int(clears1[: j + 1].sum())
        keeps, best, i = keeps + 1, float(mean[j]), i + j + 1
        carried.append(best)  # the kept mean becomes the bar; the truth is 0
    return keeps, runs, carried


def old_probe(old, K: int, draws: int, rng) -> tuple[list[float], float]:
    """(power for each gain, bias of the carried score of kept 2-sigma gains) at a night's first experiment."""
    gains = np.array(GAINS)
    kept = np.zeros(len(gains))
    carried = []
    for _ in range(draws):
        base = rng.standard_normal(K)
        rule = old_rule(old, base)
        best = float(np.mean(base))
        first = gains + rng.standard_normal(len(gains))
        mean = (first + gains + rng.standard_normal(len(gains))) / 2
        keep = rule.decide(first, best, 0, "first run")[0] & rule.decide(mean, best, 0, "mean")[0]
        kept += keep
        if keep[2]:
            carried.append(mean[2] - gains[2])
    return list(kept / draws), float(np.mean(carried)) if carried else float("nan")


# --- the new rule: screen, CONFIRM_RUNS confirmations, the t-test of the mean, K re-measure runs of a keep -----------
class Pool:
    """Each simulated night's groups of unselected runs: means, sums of squares, degrees of freedom."""

    def __init__(self, nights: int, size: int):
        self.means, self.ss, self.dfs = (np.zeros((nights, size)) for _ in range(3))
        self.used = 0

    def add(self, rows: np.ndarray, runs: np.ndarray) -> None:
        """Add one group for the nights in `rows` (a mask); `runs` their scores, one row a night."""
        if runs.shape[1] < 2:
            return
        column = self.used
        self.used += 1
        mean = runs.mean(axis=1)
        self.means[rows, column] = mean[rows]
        self.ss[rows, column] = ((runs - mean[:, None]) ** 2).sum(axis=1)[rows]
        self.dfs[rows, column] = runs.shape[1] - 1

    def sigma(self, bar: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        var, df = decision.pool(self.means[:, : self.used], self.ss[:, : self.used], self.dfs[:, : self.used], bar)
        return np.sqrt(var), df


def new_judge(pool: Pool, bar, m, truth, rng, alpha: float):
    """One candidate per night (true score `truth`): (kept, runs spent before a re-measure, deciding mean, the
    confirmation runs, passed the screen)."""
    nights = len(bar)
    sigma, df = pool.sigma(bar)
    first = truth + rng.standard_normal(nights)
    screen = first - bar > decision.needed_gain(sigma, 1, m, df, 1 - decision.SCREEN_PASS)
    more = truth[:, None] + rng.standard_normal((nights, decision.CONFIRM_RUNS))
    mean = (first + more.sum(axis=1)) / (1 + decision.CONFIRM_RUNS)
    final = mean - bar > decision.needed_gain(sigma, 1 + decision.CONFIRM_RUNS, m, df, 1 - alpha)
    return screen & final, 1 + decision.CONFIRM_RUNS * screen, mean, more, screen


def new_nights(K: int, nights: int, experiments: int, rng, alpha: float):
    pool = Pool(nights, 2 * experiments + 2)
    base = rng.standard_normal((nights, K))
    pool.add(np.ones(nights, bool), base)
    bar, m, truth = base.mean(axis=1), np.full(nights, K), np.zeros(nights)
    keeps, runs, carried = np.zeros(nights), np.zeros(nights), []
    probes = {}
    for e in range(experiments):
        if e in (0, PROBE_AFTER):
            probes[e] = [new_judge(pool, bar, m, truth + g, rng, alpha)[0].mean() for g in GAINS]
        kept, spent, _, more, screen = new_judge(pool, bar, m, truth, rng, alpha)
        pool.add(screen, more)
        remeasure = truth[:, None] + rng.standard_normal((nights, K))
        pool.add(kept, remeasure)
        bar = np.where(kept, remeasure.mean(axis=1), bar)
        m = np.where(kept, K, m)
        carried += list(remeasure.mean(axis=1)[kept])
        keeps += kept
        runs += spent + K * kept
    return keeps, runs, carried, probes


def new_bias(K: int, draws: int, rng, alpha: float, gain: float = 2.0) -> float:
    """The carried score of kept `gain`-sigma edits at a night's first experiment, minus their true score."""
    pool = Pool(draws, 2)
    base = rng.standard_normal((draws, K))
    pool.add(np.ones(draws, bool), base)
    kept, *_ = new_judge(pool, base.mean(axis=1), np.full(draws, K), np.full(draws, gain), rng, alpha)
    remeasure = gain + rng.standard_normal((draws, K))
    return float(remeasure.mean(axis=1)[kept].mean() - gain) if kept.any() else float("nan")


def report(nights: int = 4000, experiments: int = 100, draws: int = 100_000, seed: int = 0, ks=(1, 2, 3, 4, 5)) -> str:
    rng = np.random.default_rng(seed)
    old = old_rule_module()
    alpha = decision.DEFAULT_FALSE_KEEP_RATE
    head = (
        "| K | rule | false keeps / 100 no-effect | nights with >= 1 false keep | runs / no-effect exp. | "
        "first exp.: P(keep) at 0 / 1σ / 2σ / 3σ | after 50: P(keep) at 0 / 1σ / 2σ / 3σ | "
        "carried bias, no-effect keeps | carried bias, 2σ keeps |"
    )
    lines = [head, "|" + "---|" * 9]
    old_draws = max(2000, draws // 10)
    for K in ks:
        results = [old_night(old, K, experiments, rng) for _ in range(nights)]
        keeps = np.array([r[0] for r in results])
        runs = sum(r[1] for r in results)
        carried = [c for r in results for c in r[2]]
        power, bias2 = old_probe(old, K, old_draws, rng)
        lines.append(
            f"| {K} | old (a14688a): z 2, 1 + 1 runs | {keeps.mean() * 100 / experiments:.2f} | "
            f"{(keeps > 0).mean():.0%} | {runs / nights / experiments:.2f} | "
            f"{' / '.join(f'{p:.1%}' for p in power)} | (same) | {_fmt(carried)} | {bias2:+.2f} |"
        )
        keeps, runs, carried, probes = new_nights(K, nights, experiments, rng, alpha)
        lines.append(
            f"| {K} | new: t-test at {alpha:g} | {keeps.mean() * 100 / experiments:.2f} | {(keeps > 0).mean():.0%} | "
            f"{runs.sum() / nights / experiments:.2f} | {' / '.join(f'{p:.1%}' for p in probes[0])} | "
            f"{' / '.join(f'{p:.1%}' for p in probes[PROBE_AFTER])} | {_fmt(carried)} | "
            f"{new_bias(K, draws, rng, alpha):+.2f} |"
        )
    lines.append("")
    lines.append(
        f"{nights} simulated nights of {experiments} no-effect experiments per row; power from {nights} nights (new) "
        f"and {old_draws} draws (old); bias in sigma. Old rule: its power does not change during a night."
    )
    return "\n".join(lines)


def _fmt(values: list[float]) -> str:
    return f"{np.mean(values):+.2f}" if values else "no keep"
