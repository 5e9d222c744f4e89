"""The tables of scripts/bench_search.py, from hand-made rows whose numbers are worked out here."""

from __future__ import annotations

import sys

import pytest
from conftest import ROOT

sys.path.insert(0, str(ROOT / "scripts"))
from search_tables import learning_table, mean_se, winner_table  # noqa: E402


def row(sampler: str, seed: int, retrained: float, first_scores: list[float], winner_first: float) -> dict:
    return {
        "sampler": sampler,
        "seed": seed,
        "retrained_selection": {"2": retrained},
        "retrained_holdout": {"2": retrained - 0.1},
        "first_scores": first_scores,
        "winners": {"2": {"experiment": 1, "first_selection": winner_first}},
    }


ROWS = [  # listed out of seed order on purpose: pairs are matched by seed, not by position
    row("random", 1, 0.40, [0.1, 0.2, 0.2], 0.45),
    row("tpe", 0, 0.50, [0.1, 0.3, 0.5], 0.60),
    row("random", 0, 0.45, [0.1, 0.4, 0.0], 0.50),
    row("tpe", 1, 0.55, [0.1, 0.5, 0.7], 0.65),
]


def test_mean_se_is_the_mean_and_the_standard_error():
    mean, se = mean_se([1.0, 2.0, 3.0])
    assert mean == 2.0 and se == pytest.approx(1.0 / 3**0.5)


def test_the_winner_table_pairs_by_seed():
    text = winner_table(ROWS, [2])
    # selection: TPE 0.525, random 0.425; paired differences 0.05 (seed 0) and 0.15 (seed 1): mean 0.10, SE 0.05
    assert "| 2 | 0.5250 | 0.4250 | +0.1000 ± 0.0500 | 0.4250 | 0.3250 | +0.1000 ± 0.0500 |" in text
    assert "2 paired seeds (0, 1)" in text


def test_the_learning_table_averages_the_trials_after_start_up_and_the_winners_curse():
    text = learning_table(ROWS, startup=1, last=2)
    # experiments 1-2: TPE 0.4 and 0.6, random 0.2 and 0.2 -> mean 0.5 vs 0.2; paired 0.2 and 0.4: +0.3 ± 0.1
    assert "| mean first-run score of experiments 1-2 | 0.5000 | 0.2000 | +0.3000 ± 0.1000 |" in text
    # first-run minus re-trained: TPE 0.10 and 0.10, random 0.05 and 0.05
    assert "| N = 2 winner: first-run minus re-trained | +0.1000 (sd 0.0000) | +0.0500 (sd 0.0000) | |" in text
