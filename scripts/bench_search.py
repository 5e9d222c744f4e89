"""Benchmark: the optuna agent (TPE) against plain random search over the same `# search:` space.

A fair comparison, run through the CLI only (`hf-autoresearch run --agent optuna`, results read back from the run's
ledger.jsonl), so it does not depend on the loop's internals:

- paired seeds: within a pair, TPE and random get the same training seed and the same sampler seed;
- one baseline run and no confirmation runs, so every training is one search step;
- the winner after N experiments (the best FIRST-run selection score among the baseline and experiments 1..N) is
  re-trained once with a fresh seed, the same for both samplers of a pair, and that run's selection and holdout
  scores are what counts: a lucky seed does not win;
- TPE's start-up trials are few (--startup-trials, default 3 with the baseline), so most trials use TPE;
- with --side-by-side, a pair's two searches (and then the re-trainings) run at once, each pinned to half the
  cores: both samplers train under the same conditions, and a 2-core machine gets nearly twice the experiments an
  hour, since start-up and imports are single-threaded;
- --only NAME... searches a smaller space: the other constants' `search:` declarations are removed from the copy,
  so they stay at the recipe's values.

Prints, for N in --checkpoints, the mean re-trained selection and holdout of each sampler over the seeds, the
mean paired difference TPE - random and its standard error; then whether TPE learns the space (the mean first-run
score of the experiments after its start-up, TPE against random) and the winner's curse (the last winner's
first-run minus re-trained score). `--tables-from FILE` re-prints the tables of a saved `--json`.

    python scripts/bench_search.py --seeds 0 1 2 3 4 --experiments 20 --budget 30 \\
        --data ../shared/data/banking77 --model ~/.cache/hf-autoresearch-offline/all-MiniLM-L6-v2

Each run is a fresh throwaway git repository holding a copy of the recipe, under --work (a temp folder by default).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from search_tables import learning_table, winner_table

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "recipes" / "intent-categorization"
OFFLINE_MINILM = Path.home() / ".cache" / "hf-autoresearch-offline" / "all-MiniLM-L6-v2"
SAMPLERS = ("tpe", "random")
FRESH_SEED = 10_000  # + the pair's seed: the re-training seed, never one the search trained with
CLI = "import sys; from hf_autoresearch.cli import main; sys.exit(main(sys.argv[1:]))"


def make_project(folder: Path, train_py: str | None = None) -> Path:
    """A git repository holding a copy of the recipe (train.py replaced by `train_py`), committed."""
    recipe = folder / "recipes" / RECIPE.name
    shutil.copytree(RECIPE, recipe, ignore=shutil.ignore_patterns("examples", "__pycache__", "data", "output"))
    if train_py is not None:
        (recipe / "train.py").write_text(train_py)
    ident = ["-c", "user.name=bench", "-c", "user.email=bench@localhost"]
    subprocess.run(["git", "init", "-q", "-b", "main", str(folder)], check=True)
    subprocess.run(["git", *ident, "add", "-A"], cwd=folder, check=True)
    subprocess.run(["git", *ident, "commit", "-q", "-m", "recipe"], cwd=folder, check=True)
    return recipe


def cli_run(args, folder: Path, seed: int, experiments: int, options: dict, train_py=None, cores=None) -> list:
    """One `hf-autoresearch run` in a fresh project (pinned to `cores` when given); its ledger records, baseline
    first. The harness sizes its thread pools to the cores it may use."""
    recipe = make_project(folder, train_py)
    run_dir = folder / ".autoresearch"
    command = [sys.executable, "-c", CLI, "run", str(recipe), "--tag", "bench"]
    command += [f"--optuna-{name.replace('_', '-')}={value}" for name, value in options.items()]
    command += ["--agent", "optuna", "--budget", str(args.budget), "--grace", str(args.grace)]
    command += ["--max-experiments", str(experiments), "--baseline-repeats", "1", "--no-confirm"]
    command += ["--seed", str(seed), "--model", str(args.model), "--data", str(args.data), "--run-dir", str(run_dir)]
    with (folder / "run.log").open("w") as log:
        pin = (lambda: os.sched_setaffinity(0, cores)) if cores else None
        done = subprocess.run(command, cwd=folder, stdout=log, stderr=subprocess.STDOUT, preexec_fn=pin)
    ledger = run_dir / "bench" / "ledger.jsonl"
    records = [json.loads(line) for line in ledger.read_text().splitlines()] if ledger.is_file() else []
    if done.returncode != 0 or not records:
        raise SystemExit(f"run in {folder} failed ({done.returncode}); see {folder / 'run.log'}")
    return records


def first_score(record: dict) -> float | None:
    """The selection score of the record's first training run (what the search saw)."""
    if record["status"] not in ("keep", "discard"):
        return None
    trials = record.get("trials") or [{}]
    return trials[0].get("selection", record.get("selection"))


def narrowed(source: str, only: list[str]) -> str:
    """`source` with the `search:` declarations of every constant not in `only` removed (the comment's other text
    stays): a smaller space, the values of the rest fixed at the recipe's."""
    from hf_autoresearch.agents.search_space import MARKER, find_spaces

    spaces = find_spaces(source)
    names = {space.name for space in spaces}
    if unknown := set(only) - names:
        raise SystemExit(f"--only: {', '.join(sorted(unknown))} carry no search space (the recipe's: {sorted(names)})")
    lines = source.splitlines(keepends=True)
    for space in spaces:
        if space.name not in only:
            line = lines[space.line - 1]
            code, comment = line[: space.end], line[space.end :]
            comment = MARKER.sub("", comment.rstrip("\n")).rstrip().rstrip(";").rstrip()
            lines[space.line - 1] = (code + (comment if comment.strip() != "#" else "")).rstrip() + "\n"
    return "".join(lines)


def winner(records: list[dict], n: int) -> dict:
    """The best configuration among the baseline and experiments 1..n, by first-run selection score."""
    scored = [r for r in records if r["number"] <= n and first_score(r) is not None]
    return max(scored, key=first_score)


def winner_train_py(record: dict) -> str:
    """The winner's train.py: the recipe's, with the constants the optuna agent wrote (none for the baseline)."""
    sys.path.insert(0, str(ROOT))
    from hf_autoresearch.agents.search_space import rewrite

    source = (RECIPE / "train.py").read_text()
    written = record.get("proposal", {}).get("written")
    if not written:
        return source
    import ast

    return rewrite(source, {name: ast.literal_eval(text) for name, text in written.items()})


def subset_data(source: Path, folder: Path, labels: int, train_rows: int, test_rows: int) -> Path:
    """A copy of a local train.csv / test.csv folder with fewer labels and rows (fixed random samples)."""
    folder.mkdir(parents=True, exist_ok=True)
    kept_labels = None
    for split, keep in (("train", train_rows), ("test", test_rows)):
        with (source / f"{split}.csv").open() as f:
            reader = csv.DictReader(f)
            rows, fields = list(reader), reader.fieldnames
        if labels and kept_labels is None:
            kept_labels = set(random.Random(0).sample(sorted({r["label"] for r in rows}), labels))
        if kept_labels is not None:
            rows = [r for r in rows if r["label"] in kept_labels]
        if keep and keep < len(rows):
            rows = random.Random(0).sample(rows, keep)
        with (folder / f"{split}.csv").open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=fields)
            writer.writeheader()
            writer.writerows(rows)
    return folder


def tiny_bert(data: Path, folder: Path) -> Path:
    """A 2-layer, 32-wide random BERT with a WordPiece tokenizer trained on the data's texts (as the tests build).

    Its steps take milliseconds, so even a short budget on a busy CPU trains hundreds of them and the values the
    search picks decide the score; with MiniLM a short budget on a loaded 2-core machine ends after one step.
    """
    from hf_autoresearch import testing

    with (data / "train.csv").open() as f:
        return testing.tiny_bert([row["text"] for row in csv.DictReader(f)], folder)


def lane_cores(side_by_side: bool) -> list[set[int] | None]:
    """The CPU cores of each lane: one lane with all of them, or two lanes with half each (side by side)."""
    if not side_by_side:
        return [None]
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < 2:
        raise SystemExit("--side-by-side needs at least 2 cores")
    half = len(cores) // 2
    return [set(cores[:half]), set(cores[half:])]


def pair_row(sampler, seed, records, winners, sources, retrained, checkpoints) -> dict:
    """One search's row: its statuses and first-run scores, and per N its winner and the winner's re-trained scores."""
    row = {"sampler": sampler, "seed": seed, "retrained_selection": {}, "retrained_holdout": {}, "winners": {}}
    row["statuses"] = [r["status"] for r in records[1:]]
    row["first_scores"] = [first_score(r) for r in records]
    for n in checkpoints:
        best = winners[(sampler, n)]
        row["retrained_selection"][str(n)], row["retrained_holdout"][str(n)] = retrained[(sources[(sampler, n)], seed)]
        row["winners"][str(n)] = {
            "experiment": best["number"],
            "first_selection": first_score(best),
            "written": best.get("proposal", {}).get("written", "recipe defaults"),
        }
    return row


def print_tables(rows: list[dict], checkpoints: list[int], startup: int) -> None:
    print(winner_table(rows, checkpoints), end="\n\n")
    print(learning_table(rows, startup, checkpoints[-1]), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--budget", type=float, default=30, help="training seconds per experiment")
    parser.add_argument("--grace", type=float, default=90, help="seconds past the budget before a kill")
    parser.add_argument("--experiments", type=int, default=20, help="experiments after the baseline, per run")
    parser.add_argument("--checkpoints", type=int, nargs="+", help="N to report (default: 5 10 20, up to N)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4], help="paired seeds")
    parser.add_argument("--startup-trials", type=int, default=3, help="TPE's random start-up trials")
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "banking77")
    parser.add_argument("--labels", type=int, default=0, help="keep only this many labels (0: all), for speed")
    parser.add_argument("--train-rows", type=int, default=0, help="sample this many training rows (0: all)")
    parser.add_argument("--test-rows", type=int, default=0, help="sample this many test (holdout) rows (0: all)")
    parser.add_argument("--model", type=Path, default=OFFLINE_MINILM)
    parser.add_argument("--tiny-model", action="store_true", help="a 2-layer random BERT instead of --model")
    parser.add_argument(
        "--only", nargs="+", metavar="NAME", help="search only these constants (a smaller space; the rest fixed)"
    )
    parser.add_argument(
        "--side-by-side",
        action="store_true",
        help="run a pair's TPE and random searches at once, each pinned to half the cores (same conditions for both)",
    )
    parser.add_argument("--work", type=Path, help="where the runs go (default: a temp folder, removed after)")
    parser.add_argument("--json", type=Path, help="also write the rows to this file")
    parser.add_argument("--tables-from", type=Path, metavar="JSON", help="only print the tables of a saved --json")
    args = parser.parse_args()
    checkpoints = sorted(set(args.checkpoints or [n for n in (5, 10, 20) if n < args.experiments]))
    checkpoints = [n for n in checkpoints if n <= args.experiments] or [args.experiments]
    if args.experiments not in checkpoints:
        checkpoints.append(args.experiments)
    if args.tables_from:
        print_tables(json.loads(args.tables_from.read_text()), checkpoints, args.startup_trials)
        return

    work = args.work or Path(tempfile.mkdtemp(prefix="bench-search-"))
    work.mkdir(parents=True, exist_ok=True)
    if args.labels or args.train_rows or args.test_rows:
        args.data = subset_data(args.data.expanduser(), work / "data", args.labels, args.train_rows, args.test_rows)
    if args.tiny_model:
        args.model = tiny_bert(args.data.expanduser(), work / "tiny-bert")
    lanes = lane_cores(args.side_by_side)
    search_py = narrowed((RECIPE / "train.py").read_text(), args.only) if args.only else None
    rows, retrained = [], {}
    started = time.monotonic()
    try:
        with ThreadPoolExecutor(len(lanes)) as pool:
            for seed in args.seeds:
                t0 = time.monotonic()
                # the pair's two searches at once, each on its own lane (or one after the other on one lane)
                searches = {
                    sampler: pool.submit(
                        cli_run,
                        args,
                        work / f"{sampler}-seed{seed}",
                        seed,
                        args.experiments,
                        {"sampler": sampler, "startup_trials": args.startup_trials},
                        search_py,
                        lanes[i % len(lanes)],
                    )
                    for i, sampler in enumerate(SAMPLERS)
                }
                records = {sampler: job.result() for sampler, job in searches.items()}
                winners = {(sampler, n): winner(records[sampler], n) for sampler in SAMPLERS for n in checkpoints}
                # each distinct winning configuration trains once more, with a fresh seed, on the lanes in turn
                sources = {key: winner_train_py(best) for key, best in winners.items()}
                todo = [src for src in dict.fromkeys(sources.values()) if (src, seed) not in retrained]
                jobs = {
                    src: pool.submit(
                        cli_run,
                        args,
                        work / f"retrain-seed{seed}-{i}",
                        FRESH_SEED + seed,
                        0,
                        {},
                        src,
                        lanes[i % len(lanes)],
                    )
                    for i, src in enumerate(todo)
                }
                for src, job in jobs.items():
                    again = job.result()[0]
                    retrained[(src, seed)] = (again["selection"], again["holdout"])
                minutes = (time.monotonic() - t0) / 60
                for sampler in SAMPLERS:
                    rows.append(pair_row(sampler, seed, records[sampler], winners, sources, retrained, checkpoints))
                    last = rows[-1]["retrained_selection"][str(checkpoints[-1])]
                    best_first = max(s for s in rows[-1]["first_scores"] if s is not None)
                    print(
                        f"{sampler:<6} seed {seed}: best first-run {best_first:.4f}, winner re-trained {last:.4f} "
                        f"({' '.join(rows[-1]['statuses'])})",
                        flush=True,
                    )
                print(f"seed {seed}: {minutes:.1f} min", flush=True)
                if args.json:
                    args.json.write_text(json.dumps(rows, indent=2))
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    subset = f" ({args.labels or 'all'} labels, {args.train_rows or 'all'} train, {args.test_rows or 'all'} test rows)"
    print(
        f"\n{len(rows)} runs in {(time.monotonic() - started) / 60:.1f} min; budget {args.budget:g} s, "
        f"{args.experiments} experiments, TPE start-up trials {args.startup_trials}, model {args.model}, "
        f"data {args.data}{subset}\n"
    )
    print_tables(rows, checkpoints, args.startup_trials)


if __name__ == "__main__":
    main()
