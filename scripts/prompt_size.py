"""How big the claude agent's prompt gets as a run grows: synthetic ledgers of N experiments through the real builder.

No training and no API: a ledger of N experiments is made up (a baseline trained 3 times, then keeps, discards,
crashes, timeouts and invalid proposals in a fixed mix, each with a curve, other metrics, a diff, a log tail and
the agent's notes), then `system_prompt` and `task_prompt` of hf_autoresearch/agents/prompts.py build what the
intent-categorization recipe's experiment N+1 would be sent, with 3 other experiments in flight and a preview.

    python scripts/prompt_size.py [--experiments 10 100 300] [--show N]

Tokens are estimated at 4 characters a token (the tools' JSON schemas, ~1K tokens, come on top).
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hf_autoresearch.agents.base import ProposalContext  # noqa: E402
from hf_autoresearch.agents.prompts import system_prompt, task_prompt  # noqa: E402
from hf_autoresearch.agents.tools import TOOLS  # noqa: E402
from hf_autoresearch.ledger import ExperimentRecord  # noqa: E402
from hf_autoresearch.recipe import load_recipe  # noqa: E402

RECIPE = ROOT / "recipes" / "intent-categorization"
MIX = ["discard"] * 6 + ["keep"] + ["crash", "invalid", "timeout"]  # one keep in ten, like long real runs
IDEAS = ["learning rate", "warmup", "batch size", "label smoothing", "cosine schedule", "freeze embeddings"]
MACHINE = {
    "device": "cuda",
    "gpus": [{"name": "NVIDIA H100 80GB HBM3", "memory_gb": 79.1, "capability": "9.0"}],
    "bf16": True,
    "fp16": True,
    "torch": "2.13.0",
    "executor": "local",
    "workers": 4,
    "cpu_cores": 16,
    "threads_per_trial": 4,
    "ram_gb": 125.8,
}


def curve(rng: random.Random, steps: int) -> dict:
    points = [
        {"step": s, "epoch": round(s / 300, 3), "loss": round(4.3 * 0.97 ** (s / 10) + rng.random() * 0.1, 4)}
        | {"learning_rate": 1e-4 * (1 - s / 900), "grad_norm": round(2 + rng.random(), 3)}
        for s in range(10, steps + 1, 10)
    ]
    return {
        "planned_steps": 900,
        "completed_steps": steps,
        "planned_epochs": 3,
        "epochs": steps / 300,
        "final_loss": points[-1]["loss"],
        "learning_rate": points[-1]["learning_rate"],
        "samples_per_step": 32,
        "samples_per_second": 410.5 + rng.random(),
        "first_step_seconds": 7.9,
        "save_seconds": 0.6,
        "points": points,
    }


def synthetic_history(n: int, seed: int = 0) -> list[ExperimentRecord]:
    """A baseline (3 runs) and `n` experiments after it, in a fixed mix of outcomes."""
    rng = random.Random(seed)
    baseline = ExperimentRecord(0, "keep", "baseline", commit="c0", selection=0.80)
    baseline.trials = [{"selection": s, "seed": i, "kind": "baseline"} for i, s in enumerate((0.80, 0.81, 0.79))]
    baseline.decision = {"rule": "baseline", "noise": {"scores": [0.80, 0.81, 0.79], "seeds": [0, 1, 2], "std": 0.01}}
    baseline.scores = {"selection": {"accuracy": 0.80, "macro_f1": 0.78}}
    baseline.training, baseline.peak_rss_mb = curve(rng, 700), 2100.0
    records, best = [baseline], 0.80
    for number in range(1, n + 1):
        status = MIX[number % len(MIX)]
        idea = IDEAS[number % len(IDEAS)]
        r = ExperimentRecord(number, status, f"Try {idea} variant {number}: tune it against the current best")
        r.diff = "--- a/train.py\n+++ b/train.py\n" + "".join(f"-OLD_{i} = 1\n+NEW_{i} = 2\n" for i in range(6))
        r.proposal = {"notes": f"The last runs stop at 700 of 900 planned steps, so {idea} ... " * 12}
        if status in ("keep", "discard"):
            r.selection = best + (0.012 if status == "keep" else -rng.random() * 0.03)
            r.decision = {"gain": r.selection - best, "threshold": 0.02}
            r.scores = {"selection": {"accuracy": r.selection, "macro_f1": r.selection - 0.02}}
            r.trials = [{"selection": r.selection, "seed": 0}] + (
                [{"selection": r.selection, "seed": 1}] * (status == "keep")
            )
            r.training, r.peak_rss_mb = curve(rng, 700), 2100.0
            best = r.selection if status == "keep" else best
        elif status == "invalid":
            r.reason = "train.py does not compile: SyntaxError: invalid syntax (line 80)\n" + "  detail\n" * 5
        else:
            r.reason = "ValueError: Expected input batch_size (32) to match target batch_size (16)."
            r.log_tail = "Traceback (most recent call last):\n" + "  File train.py, line 90\n" * 30
        records.append(r)
    return records


def prompts(n: int) -> tuple[str, str]:
    folder = Path(tempfile.mkdtemp(prefix="prompt-size-"))
    try:
        shutil.copytree(RECIPE, folder / RECIPE.name, ignore=shutil.ignore_patterns("examples", "__pycache__"))
        history = synthetic_history(n)
        best = [r for r in history if r.status == "keep"][-1]
        context = ProposalContext(
            n + 1,
            folder,
            folder / RECIPE.name / "train.py",
            load_recipe(folder / RECIPE.name),
            history,
            best,
            budget=300,
            in_flight=[
                {"experiment": f"exp-{n + 1 + i:04d}", "description": "another idea", "diff": "-A = 1\n+A = 2"}
                for i in range(1, 4)
            ],
            preview=[{"input": "Where is my card?", "prediction": "card_arrival", "reference": "card_arrival"}] * 5,
            machine=MACHINE,
        )
        return system_prompt(context, 30), task_prompt(context)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiments", type=int, nargs="+", default=[10, 100, 300])
    parser.add_argument("--show", type=int, help="print the task prompt at this many experiments")
    args = parser.parse_args()
    tools = len(json.dumps(TOOLS))
    print("| experiments | system prompt chars | task prompt chars | total chars (tools included) | ~tokens |")
    print("|---|---|---|---|---|")
    for n in args.experiments:
        system, task = prompts(n)
        total = tools + len(system) + len(task)
        print(f"| {n} | {len(system):,} | {len(task):,} | {total:,} | {total // 4:,} |")
    if args.show:
        print("\n" + prompts(args.show)[1])


if __name__ == "__main__":
    main()
