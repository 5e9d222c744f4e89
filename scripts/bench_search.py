"""Benchmark: the optuna agent (TPE) against plain random search over the same `# search:` space.

Both run the intent-categorization recipe (MiniLM on BANKING77 by default) with the same training budget, the same
number of experiments and the same training seed; only the sampler and its seed differ. One baseline run and no
confirmation runs, so every training is one search step. Prints, per sampler and seed, the best selection accuracy
among the first N experiments (baseline included), then the mean over seeds.

    python scripts/bench_search.py --budget 60 --experiments 10 --seeds 0 1 2 \\
        --data ../shared/data/banking77 --model ~/.cache/hf-autoresearch-offline/all-MiniLM-L6-v2

Each run is a fresh throwaway git repository holding a copy of the recipe, under --work (a temp folder by default).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "recipes" / "intent-categorization"
OFFLINE_MINILM = Path.home() / ".cache" / "hf-autoresearch-offline" / "all-MiniLM-L6-v2"


def make_project(folder: Path) -> Path:
    """A git repository holding a copy of the recipe, committed, as a user's checkout would."""
    recipe = folder / "recipes" / RECIPE.name
    shutil.copytree(RECIPE, recipe, ignore=shutil.ignore_patterns("examples", "__pycache__", "data", "output"))
    ident = ["-c", "user.name=bench", "-c", "user.email=bench@localhost"]
    subprocess.run(["git", "init", "-q", "-b", "main", str(folder)], check=True)
    subprocess.run(["git", *ident, "add", "-A"], cwd=folder, check=True)
    subprocess.run(["git", *ident, "commit", "-q", "-m", "recipe"], cwd=folder, check=True)
    return recipe


def one_run(args, sampler: str, seed: int, work: Path) -> dict:
    from hf_autoresearch.agents.optuna_agent import OptunaAgent
    from hf_autoresearch.loop import Run

    tag = f"{sampler}-seed{seed}"
    recipe = make_project(work / tag)
    lines: list[str] = []
    run = Run.start(
        recipe,
        work / tag / ".autoresearch",
        tag,
        agent="optuna",
        model=str(args.model),
        data=str(args.data),
        budget=args.budget,
        grace=args.grace,
        seed=0,  # the training seed is the same for every run: only the search differs
        log=lines.append,
        baseline_repeats=1,  # one baseline and no confirmation runs: every training is one search step
        confirm=False,
    )
    started = time.monotonic()
    run.loop(OptunaAgent(seed=seed, sampler=sampler), max_experiments=args.experiments)
    records = run.ledger.records()
    scored = [r for r in records if r.selection is not None]
    best = max(scored, key=lambda r: r.selection)  # the best configuration found, kept or not
    return {
        "sampler": sampler,
        "seed": seed,
        "baseline": records[0].selection,
        "best": best.selection,
        "best_experiment": best.experiment,
        "kept_holdout": run.ledger.best().holdout,
        "statuses": [r.status for r in records[1:]],
        "best_values": best.proposal.get("written", {}),
        "minutes": (time.monotonic() - started) / 60,
    }


def print_table(rows: list[dict], n: int) -> None:
    print(f"\nbest selection accuracy after {n} experiments (baseline = exp-0000)")
    print(f"{'sampler':<8} {'seed':>4} {'baseline':>9} {'best':>8} {'gain':>8} {'best exp':>9}  statuses")
    for r in rows:
        gain = r["best"] - r["baseline"]
        statuses = " ".join(r["statuses"])
        print(
            f"{r['sampler']:<8} {r['seed']:>4} {r['baseline']:>9.4f} {r['best']:>8.4f} {gain:>+8.4f} "
            f"{r['best_experiment']:>9}  {statuses}"
        )
    for sampler in sorted({r["sampler"] for r in rows}):
        best = [r["best"] for r in rows if r["sampler"] == sampler]
        spread = statistics.stdev(best) if len(best) > 1 else 0.0
        print(f"{sampler:<8} mean best {statistics.mean(best):.4f} ± {spread:.4f} over {len(best)} seeds")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--budget", type=float, default=60, help="training seconds per experiment")
    parser.add_argument("--grace", type=float, default=90, help="seconds past the budget before a kill")
    parser.add_argument("--experiments", type=int, default=10, help="experiments after the baseline, per run")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="sampler seeds")
    parser.add_argument("--samplers", nargs="+", default=["tpe", "random"], choices=["tpe", "random"])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "banking77")
    parser.add_argument("--model", type=Path, default=OFFLINE_MINILM)
    parser.add_argument("--work", type=Path, help="where the runs go (default: a temp folder, removed after)")
    parser.add_argument("--json", type=Path, help="also write the rows to this file")
    args = parser.parse_args()

    work = args.work or Path(tempfile.mkdtemp(prefix="bench-search-"))
    work.mkdir(parents=True, exist_ok=True)
    rows = []
    try:
        for seed in args.seeds:
            for sampler in args.samplers:
                row = one_run(args, sampler, seed, work)
                print(f"{sampler} seed {seed}: best {row['best']:.4f} ({row['minutes']:.1f} min)", flush=True)
                rows.append(row)
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    print_table(rows, args.experiments)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
