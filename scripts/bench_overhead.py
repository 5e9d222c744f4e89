"""The harness's overhead per experiment: total seconds minus the seconds train.py spent in its training loop,
split into launch (accelerate + interpreter start-up, model loading and saving), evaluation, agent and bookkeeping.

    python scripts/bench_overhead.py --data ../shared/data/banking77 \
        --model ~/.cache/hf-autoresearch-offline/all-MiniLM-L6-v2 --budget 20 --experiments 3

It copies the intent-categorization recipe into a throwaway git repository and replays its example patches, so
nothing in this checkout changes. Each experiment is one training (no baseline repeats, no confirmation runs).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import tempfile
from pathlib import Path

from hf_autoresearch.agents.replay import ReplayAgent
from hf_autoresearch.loop import Run

RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "intent-categorization"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="PolyAI/banking77")
    parser.add_argument("--model", default="sentence-transformers/all-MiniLM-L6-v2")
    parser.add_argument("--budget", type=float, default=20)
    parser.add_argument("--experiments", type=int, default=3, help="experiments after the baseline")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-overhead-") as tmp:
        repo = Path(tmp) / "repo"
        shutil.copytree(RECIPE, repo / "recipes" / RECIPE.name)
        for cmd in (
            ["init", "-q"],
            ["add", "-A"],
            ["-c", "user.name=b", "-c", "user.email=b@b", "commit", "-qm", "r"],
        ):
            subprocess.run(["git", *cmd], cwd=repo, check=True)
        run = Run.start(
            repo / "recipes" / RECIPE.name,
            Path(tmp) / "runs",
            "bench",
            agent="replay",
            model=args.model,
            data=args.data,
            budget=args.budget,
            grace=120,
            log=lambda *_: None,
            # one training per experiment, so the numbers are the harness's cost around a single training run;
            # the noise floor and confirmations add whole trainings, each with the same overhead
            baseline_repeats=1,
            confirm=False,
        )
        run.loop(ReplayAgent(RECIPE / "examples"), max_experiments=args.experiments)
        records = run.ledger.records()

    columns = ("total", "train loop", "overhead", "launch", "eval", "agent", "bookkeeping")
    print(f"budget {args.budget:.0f} s, model {Path(args.model).name}, CPU (seconds per experiment)")
    print(f"{'experiment':<11}{'status':<9}" + "".join(f"{c:>12}" for c in columns))
    rows = []
    for r in records:
        t = r.timings
        loop_s = t.get("train_loop") or 0.0
        row = (
            r.total_seconds,
            loop_s,
            r.total_seconds - loop_s,
            t.get("process", 0.0) - loop_s,
            t.get("eval_selection", 0.0) + t.get("eval_holdout", 0.0),
            t.get("agent", 0.0),
            t.get("bookkeeping", 0.0),
        )
        rows.append(row)
        print(f"{r.experiment:<11}{r.status:<9}" + "".join(f"{v:>12.1f}" for v in row))
    means = [statistics.mean(col) for col in zip(*rows, strict=True)]
    print(f"{'mean':<20}" + "".join(f"{v:>12.1f}" for v in means))
    total, overhead = means[0], means[2]
    print(
        f"overhead is {overhead / total:.0%} of an experiment at this budget; with a 300 s training loop the "
        f"same overhead would be {overhead / (300 + overhead):.0%}"
    )


if __name__ == "__main__":
    main()
