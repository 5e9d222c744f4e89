"""Experiments per hour at 1, 2 and 4 workers, for the local and the Ray executor, and the scaling efficiency
(throughput at N / (N x throughput at 1)).

The recipe's train.py holds a fixed training time: it sleeps until the budget's deadline, then saves a tiny model, so
compute does not interfere and what is measured is the harness: launching, evaluating, recording, proposing. Each
configuration runs a baseline (N repeats: one on each slot, which warms it up) and `rounds x N` experiments (the
replay agent, one patch each; nothing is kept, so no confirmation or re-apply runs), through the CLI in a fresh
process; throughput counts the experiments over the time from the first one's start to the last one's end.

    python scripts/bench_parallel.py --budget 60                  # the issue's setting
    python scripts/bench_parallel.py --budget 20 --executors local --workers 1 2
"""

from __future__ import annotations

import argparse
import csv
import difflib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "banking77"
LABELS = ("card_arrival", "exchange_rate", "lost_or_stolen_card", "top_up_failed", "pin_blocked")

TRAIN_PY = '''"""Trains nothing: holds the budget (sleeps to the deadline), then saves the base model with a head."""

import json
import os
import shutil
import time
from pathlib import Path

VARIANT = 0  # what each benchmark patch changes

data, out = Path(os.environ["AUTORESEARCH_DATA_DIR"]), Path(os.environ["AUTORESEARCH_OUTPUT_DIR"])
time.sleep(max(0.0, float(os.environ["AUTORESEARCH_DEADLINE"]) - time.time() - 1.0))
labels = json.loads((data / "labels.json").read_text())
shutil.copytree(os.environ["AUTORESEARCH_MODEL"], out, dirs_exist_ok=True)
config = json.loads((out / "config.json").read_text())
config.update(
    architectures=["BertForSequenceClassification"],
    id2label={str(i): name for i, name in enumerate(labels)},
    label2id={name: i for i, name in enumerate(labels)},
)
(out / "config.json").write_text(json.dumps(config))
(out / "summary.json").write_text(json.dumps({"variant": VARIANT}))
print("---\\nvariant:", VARIANT)
'''


def read_csv(path: Path) -> list[dict]:
    with path.open() as f:
        return list(csv.DictReader(f))


def write_data(source: Path, folder: Path, per_label: int = 20) -> Path:
    """A small BANKING77 subset: the evaluation stays cheap."""
    for split in ("train", "test"):
        rows = read_csv(source / f"{split}.csv")
        kept = [r for label in LABELS for r in [x for x in rows if x["label"] == label][:per_label]]
        folder.mkdir(parents=True, exist_ok=True)
        with (folder / f"{split}.csv").open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(kept[0]))
            writer.writeheader()
            writer.writerows(kept)
    return folder


def write_tiny_model(folder: Path, data: Path) -> Path:
    """A 2-layer, 32-wide random BERT with a WordPiece tokenizer trained on the data's text."""
    from hf_autoresearch import testing

    return testing.tiny_bert([r["text"] for r in read_csv(data / "train.csv")], folder)


def make_project(root: Path, experiments: int) -> tuple[Path, Path]:
    """A git repository with the recipe (its train.py the sleeper), and one patch an experiment."""
    repo = root / "project"
    recipe = repo / "recipes" / "intent-categorization"
    shutil.copytree(ROOT / "recipes" / "intent-categorization", recipe, ignore=shutil.ignore_patterns("examples"))
    (recipe / "train.py").write_text(TRAIN_PY)
    git = ["git", "-c", "user.name=bench", "-c", "user.email=bench@localhost"]
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    subprocess.run([*git, "add", "-A"], cwd=repo, check=True)
    subprocess.run([*git, "commit", "-qm", "bench recipe"], cwd=repo, check=True)
    patches = root / "patches"
    patches.mkdir()
    before = TRAIN_PY.splitlines(True)
    for i in range(1, experiments + 1):
        after = TRAIN_PY.replace("VARIANT = 0 ", f"VARIANT = {i} ").splitlines(True)
        diff = "".join(difflib.unified_diff(before, after, "a/train.py", "b/train.py"))
        text = f"Subject: [PATCH] variant {i}\n\n---\ndiff --git a/train.py b/train.py\n{diff}"
        (patches / f"{i:04d}.patch").write_text(text)
    return recipe, patches


def measure(args, executor: str, workers: int, root: Path, data: Path, model: Path) -> dict:
    experiments = args.rounds * workers
    folder = root / f"{executor}-{workers}"
    folder.mkdir()
    recipe, patches = make_project(folder, experiments)
    command = [sys.executable, "-m", "hf_autoresearch.cli", "run", str(recipe), "--tag", "bench"]
    command += ["--patches", str(patches), "--executor", executor, "--workers", str(workers)]
    # the baseline trains once on every slot: each slot's evaluation process (and Ray worker) is warm before the
    # measured experiments, as it is for all but the first minutes of a real run
    command += ["--budget", str(args.budget), "--grace", str(args.grace), "--baseline-repeats", str(workers)]
    command += ["--no-confirm"]
    command += ["--min-delta", "1.0", "--max-experiments", str(experiments)]  # nothing kept: one run each
    command += ["--data", str(data), "--model", str(model), "--run-dir", str(folder / "runs")]
    started = time.monotonic()
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{executor} x{workers} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    lines = (folder / "runs" / "bench" / "ledger.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    trials = [t for r in records if r["number"] > 0 for t in r["trials"]]
    window = max(t["finished_at"] for t in trials) - min(t["started_at"] for t in trials)
    statuses = sorted({r["status"] for r in records if r["number"] > 0})
    return {
        "executor": executor,
        "workers": workers,
        "experiments": len(records) - 1,
        "statuses": ",".join(statuses),
        "window_s": window,
        "per_hour": (len(records) - 1) / window * 3600,
        "wall_s": time.monotonic() - started,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--budget", type=float, default=60, help="seconds each experiment holds (default: 60)")
    parser.add_argument("--grace", type=float, default=60)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--executors", nargs="+", default=["local", "ray"], choices=["local", "ray"])
    parser.add_argument("--rounds", type=int, default=2, help="experiments per worker (default: 2)")
    parser.add_argument("--data", type=Path, default=DATA, help="BANKING77 as train.csv/test.csv")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-parallel-"))
    try:
        data = write_data(args.data, root / "data")
        model = write_tiny_model(root / "tiny-bert", data)
        rows = []
        for executor in args.executors:
            for workers in args.workers:
                row = measure(args, executor, workers, root, data, model)
                rows.append(row)
                one = next((r for r in rows if r["executor"] == executor and r["workers"] == 1), None)
                row["efficiency"] = row["per_hour"] / (workers * one["per_hour"]) if one else float("nan")
                print(
                    f"{executor:>5} x{workers}: {row['experiments']} experiments ({row['statuses']}) in "
                    f"{row['window_s']:.0f} s: {row['per_hour']:.0f} an hour, efficiency {row['efficiency']:.2f} "
                    f"(run took {row['wall_s']:.0f} s)",
                    flush=True,
                )
    finally:
        shutil.rmtree(root, ignore_errors=True)
    ideal = 3600 / args.budget
    print(f"\nbudget {args.budget:.0f} s (at most {ideal:.0f} experiments an hour a worker), {os.cpu_count()} CPUs")
    print("| executor | workers | experiments | experiments/hour | scaling efficiency |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['executor']} | {r['workers']} | {r['experiments']} | {r['per_hour']:.1f} | {r['efficiency']:.2f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
