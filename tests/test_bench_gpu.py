"""The small-vs-large table for query expansion, on a GPU: SmolLM2-135M autoresearched against SmolLM2-360M.

    python -m pytest tests/test_bench_gpu.py -m gpu -s      # prints the table and writes it to BENCH_QE_OUT

Runs scripts/bench_small_vs_large.py's `bench`: an optuna run of the small model (BENCH_QE_EXPERIMENTS experiments
at BENCH_QE_BUDGET seconds), then the larger model at the same budget and at 5x. Models are Hub ids unless
BENCH_QE_SMALL / BENCH_QE_LARGE name local folders; data is ../shared/data/qmd-query-expansion when present, else
the recipe's Hub source (BENCH_QE_DATA overrides). With the defaults it takes about 25 minutes on one GPU.
"""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import pytest
from conftest import QMD, ROOT

RECIPE = ROOT / "recipes" / "query-expansion"
SMALL = os.environ.get("BENCH_QE_SMALL", "HuggingFaceTB/SmolLM2-135M-Instruct")
LARGE = os.environ.get("BENCH_QE_LARGE", "HuggingFaceTB/SmolLM2-360M-Instruct")
EXPERIMENTS = int(os.environ.get("BENCH_QE_EXPERIMENTS", "3"))
BUDGET = float(os.environ.get("BENCH_QE_BUDGET", "120"))


def _bench_module():
    spec = importlib.util.spec_from_file_location("bench_small_vs_large", ROOT / "scripts" / "bench_small_vs_large.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _available(model: str) -> str:
    """A local folder for `model`, downloading a Hub id; skips the test when neither works (an offline GPU box)."""
    if Path(model).expanduser().is_dir():
        return str(Path(model).expanduser())
    try:
        from huggingface_hub import snapshot_download

        return snapshot_download(model)
    except Exception as err:
        pytest.skip(f"{model} is not a local folder and the Hub is unreachable ({type(err).__name__})")


@pytest.mark.gpu
@pytest.mark.slow
def test_query_expansion_small_vs_large(tmp_path):
    bench = _bench_module()
    small, large = _available(SMALL), _available(LARGE)
    data = os.environ.get("BENCH_QE_DATA") or (str(QMD) if QMD.is_dir() else None)

    rows = bench.bench(RECIPE, tmp_path, model=small, larger=large, data=data, experiments=EXPERIMENTS, budget=BUDGET)
    table = bench.format_table(rows)
    print(f"\nquery-expansion on GPU, {EXPERIMENTS} experiments at {BUDGET:.0f} s\n{table}")
    Path(os.environ.get("BENCH_QE_OUT", tmp_path / "table.txt")).write_text(table + "\n")

    shipped, best, larger_1x, larger_5x = rows
    assert best.selection >= shipped.selection  # the best is a keep: never below the baseline it had to beat
    assert best.selection > 0, "the small model never produced a well-formed expansion on the selection split"
    for row in (larger_1x, larger_5x):
        assert row.status == "ok", f"{row.name}: {row.status}"
        assert 0 <= row.selection <= 1 and 0 <= row.holdout <= 1
        assert row.params > best.params  # the comparison is against a genuinely larger model
    runs = json.loads((tmp_path / "runs" / "small" / "larger-baseline.json").read_text())
    assert runs["budget"] == BUDGET  # status and model cards compare at the same budget
