"""The tables bench_search.py prints, from its rows (one per search: a sampler and a seed; see `pair_row` there).

Kept apart from the benchmark so they can be re-printed from a saved `--json` (`bench_search.py --tables-from`) and
tested without running a search.
"""

from __future__ import annotations

import math
import statistics


def mean_se(values: list[float]) -> tuple[float, float]:
    mean = statistics.fmean(values)
    se = statistics.stdev(values) / math.sqrt(len(values)) if len(values) > 1 else float("nan")
    return mean, se


def _paired(rows: list[dict], value) -> tuple[list[float], list[float]]:
    """value(row) of TPE's and random's rows, in seed order: element i of both lists comes from the same seed."""
    by = {(r["sampler"], r["seed"]): value(r) for r in rows}
    seeds = sorted({r["seed"] for r in rows})
    return [by[("tpe", s)] for s in seeds], [by[("random", s)] for s in seeds]


def _spread(values: list[float]) -> str:
    sd = statistics.stdev(values) if len(values) > 1 else float("nan")
    return f"{statistics.fmean(values):+.4f} (sd {sd:.4f})"


def winner_table(rows: list[dict], checkpoints: list[int]) -> str:
    """Markdown: N -> mean re-trained selection and holdout per sampler, the paired difference and its SE."""
    seeds = sorted({r["seed"] for r in rows})
    lines = [
        f"winner after N experiments re-trained with a fresh seed; mean over {len(seeds)} paired seeds "
        f"({', '.join(map(str, seeds))}); diff = TPE - random, ± its standard error",
        "",
        "| N | TPE selection | random selection | diff selection | TPE holdout | random holdout | diff holdout |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for n in checkpoints:
        cells = [str(n)]
        for split in ("selection", "holdout"):
            tpe, rnd = _paired(rows, lambda r, key=f"retrained_{split}", n=str(n): r[key][n])
            diff, se = mean_se([a - b for a, b in zip(tpe, rnd, strict=True)])
            cells += [f"{statistics.fmean(tpe):.4f}", f"{statistics.fmean(rnd):.4f}", f"{diff:+.4f} ± {se:.4f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def learning_table(rows: list[dict], startup: int, last: int) -> str:
    """Markdown: does TPE learn the space, and how much do the winners owe to their seed?

    - the mean first-run selection score of the trials after TPE's start-up (experiments `startup`..`last`; the
      baseline is experiment 0 and the first start-up trial), per sampler and as a paired difference: a sampler
      that learns proposes better configurations on average;
    - the winner's curse: the N = `last` winner's first-run score minus its re-trained score (mean and standard
      deviation over the seeds); a sampler that tries many near-identical configurations picks a luckier seed.
    """

    def later(row: dict) -> float:
        return statistics.fmean(s for s in row["first_scores"][startup : last + 1] if s is not None)

    def curse(row: dict) -> float:
        return row["winners"][str(last)]["first_selection"] - row["retrained_selection"][str(last)]

    tpe, rnd = _paired(rows, later)
    diff, se = mean_se([a - b for a, b in zip(tpe, rnd, strict=True)])
    tpe_curse, rnd_curse = _paired(rows, curse)
    return "\n".join(
        [
            "| | TPE | random | diff |",
            "|---|---:|---:|---:|",
            f"| mean first-run score of experiments {startup}-{last} | {statistics.fmean(tpe):.4f} | "
            f"{statistics.fmean(rnd):.4f} | {diff:+.4f} ± {se:.4f} |",
            f"| N = {last} winner: first-run minus re-trained | {_spread(tpe_curse)} | {_spread(rnd_curse)} | |",
        ]
    )
