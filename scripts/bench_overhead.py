"""The harness's overhead per experiment, and what `accelerate launch` costs before the first training step.

    python scripts/bench_overhead.py --budget 30 --experiments 4 --launch-probe --evaluator-probe \\
        --data ../shared/data/banking77 --model ~/.cache/hf-autoresearch-offline/all-MiniLM-L6-v2

Part 1 runs `hf-autoresearch run` on a copy of the intent-categorization recipe in a throwaway git repository (one
baseline training, no confirmation runs, the recipe's example patches or the optuna agent) and reads each
experiment's `timings` from the ledger. Overhead is an experiment's total seconds minus the seconds train.py spent
in its training loop (summary.json), split into: launch (accelerate and Python start-up, imports, model load and
save: the training process's seconds minus its loop), selection and holdout evaluation (the warm evaluator), the
agent, and bookkeeping (git, ledger, moving the kept model).

Part 2 (--launch-probe) runs the recipe's train.py by itself, wrapped so that it prints a timestamp at its first
line, when its imports are done, when training begins, after the first step, when training ends and after saving;
under `python` and under `accelerate launch`, each with OMP_NUM_THREADS unset, 1 and the core count. --evaluator-probe
(part 3) scores the run's baseline model on the selection split in a fresh evaluation process (start-up, imports and
metric load included) and in the warm one, with the wall and CPU seconds of each.

The machine's load average (`uptime`) is printed before and after each part: on a shared machine, read the
numbers with it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "recipes" / "intent-categorization"
OFFLINE = Path.home() / ".cache" / "hf-autoresearch-offline"


# --- shared with bench_small_vs_large.py ----------------------------------------------------------------------
def load_average() -> str:
    """The 1, 5 and 15 minute load averages and the core count, as `uptime` would say them."""
    one, five, fifteen = os.getloadavg()
    return f"load {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} cores"


def make_project(folder: Path, recipe: Path = RECIPE) -> Path:
    """A git repository holding a copy of `recipe`, committed, as a user's checkout would; returns the recipe."""
    copy = folder / "recipes" / recipe.name
    shutil.copytree(recipe, copy, ignore=shutil.ignore_patterns("__pycache__", "data", "output", "trainer"))
    ident = ["-c", "user.name=bench", "-c", "user.email=bench@localhost"]
    subprocess.run(["git", "init", "-q", "-b", "main", str(folder)], check=True)
    subprocess.run(["git", *ident, "add", "-A"], cwd=folder, check=True)
    subprocess.run(["git", *ident, "commit", "-q", "-m", "recipe"], cwd=folder, check=True)
    return copy


def cli(*args: str, log: Path | None = None) -> float:
    """Run `hf-autoresearch ARGS` in a subprocess (this checkout's package); returns its wall seconds."""
    started = time.monotonic()
    command = [sys.executable, "-m", "hf_autoresearch.cli", *args]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    with open(log or os.devnull, "a") as out:
        out.write(f"$ hf-autoresearch {' '.join(args)}\n")
        out.flush()
        done = subprocess.run(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    if done.returncode:
        raise SystemExit(f"hf-autoresearch {args[0]} failed (status {done.returncode}); see {log}")
    return time.monotonic() - started


def read_ledger(folder: Path) -> list[dict]:
    with (folder / "ledger.jsonl").open() as f:
        return [json.loads(line) for line in f if line.strip()]


# --- part 1: the overhead of each experiment ------------------------------------------------------------------
COLUMNS = ("total", "loop", "overhead", "launch", "eval sel", "eval hold", "agent", "bookkeep", "ovh/budget")


def overhead_row(record: dict, budget: float) -> list[float]:
    t = record.get("timings", {})
    loop = t.get("train_loop") or 0.0
    total = record["total_seconds"]
    overhead = total - loop
    return [
        total,
        loop,
        overhead,
        (t.get("process") or 0.0) - loop,
        t.get("eval_selection") or 0.0,
        t.get("eval_holdout") or 0.0,
        t.get("agent") or 0.0,
        t.get("bookkeeping") or 0.0,
        overhead / budget,
    ]


def print_overhead(records: list[dict], budget: float) -> None:
    print(f"\n{'experiment':<11}{'status':<9}" + "".join(f"{c:>11}" for c in COLUMNS))
    rows: dict[str, list[list[float]]] = {}
    for r in records:
        row = overhead_row(r, budget)
        rows.setdefault("keep" if r["status"] == "keep" else r["status"], []).append(row)
        cells = "".join(_cell(c, v) for c, v in zip(COLUMNS, row, strict=True))
        print(f"exp-{r['number']:04d}  {r['status']:<9}" + cells)
    for status, group in rows.items():
        means = [statistics.fmean(col) for col in zip(*group, strict=True)]
        label = f"mean {status} ({len(group)})"
        print(f"{label:<20}" + "".join(_cell(c, v) for c, v in zip(COLUMNS, means, strict=True)))
    print(
        "launch = training process - training loop (start-up, imports, model load and save); the first evaluation "
        "includes starting the warm evaluator"
    )


def _cell(column: str, value: float) -> str:
    return f"{value:>11.1%}" if column == "ovh/budget" else f"{value:>11.1f}"


def measure_overhead(args, work: Path) -> Path:
    recipe = make_project(work / "project")
    agent = ["--agent", args.agent]
    if args.agent == "replay":
        agent += ["--patches", str(RECIPE / "examples")]
    print(f"part 1: hf-autoresearch run, budget {args.budget:.0f} s, {args.experiments} experiments, {args.agent}")
    print(f"  before: {load_average()}")
    seconds = cli(
        "run", str(recipe), "--tag", "bench", *agent,
        "--budget", str(args.budget), "--grace", "120", "--max-experiments", str(args.experiments),
        "--baseline-repeats", "1", "--no-confirm", "--seed", "0",
        "--data", str(args.data), "--model", str(args.model), "--run-dir", str(work / "runs"),
        log=work / "cli.log",
    )  # fmt: skip
    print(f"  after:  {load_average()} ({seconds:.0f} s in all)")
    folder = work / "runs" / "bench"
    print_overhead(read_ledger(folder), args.budget)
    return folder


# --- part 2: accelerate launch against the first training step ------------------------------------------------
PROBE = '''"""Runs ./train.py, printing a timestamp at each milestone of a training run (bench_overhead.py)."""
import time

print(f"[probe] first_line {time.time()}", flush=True)
import runpy  # noqa: E402

from hf_autoresearch import experiment  # noqa: E402


def mark(name):
    print(f"[probe] {name} {time.time()}", flush=True)


seed_everything, deadline_callback, write_summary = (
    experiment.seed_everything, experiment.deadline_callback, experiment.write_summary
)


def probed_seed(*args, **kwargs):  # main() starts: train.py's imports are done
    import torch

    mark("imports_done")
    print(f"[probe] threads {torch.get_num_threads()}", flush=True)
    return seed_everything(*args, **kwargs)


def probed_deadline(*args, **kwargs):
    base = type(deadline_callback(*args, **kwargs))

    class Probe(base):
        steps = 0

        def on_train_begin(self, args, state, control, **kw):
            mark("train_begin")

        def on_step_end(self, args, state, control, **kw):
            self.steps += 1
            if self.steps in (1, 2):
                mark(f"step_{self.steps}")
            return super().on_step_end(args, state, control, **kw)

        def on_train_end(self, args, state, control, **kw):
            mark("train_end")

    return Probe()


def probed_summary(*args, **kwargs):  # called once the model is saved
    mark("saved")
    return write_summary(*args, **kwargs)


experiment.seed_everything, experiment.deadline_callback = probed_seed, probed_deadline
experiment.write_summary = probed_summary
runpy.run_path("train.py", run_name="__main__")
'''
MILESTONES = ("first_line", "imports_done", "train_begin", "step_1", "step_2", "train_end", "saved", "exit", "cpu")


def _children_cpu() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def probe_once(args, splits: Path, work: Path, launcher: str, threads: int | None) -> dict:
    from hf_autoresearch.executors.runner import CPU_LAUNCH_ARGS

    folder = work / f"probe-{launcher}-{threads or 'unset'}"
    shutil.rmtree(folder, ignore_errors=True)
    (folder / "output").mkdir(parents=True)
    shutil.copy2(RECIPE / "train.py", folder / "train.py")
    (folder / "probe.py").write_text(PROBE)
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    env.update(
        AUTORESEARCH_DATA_DIR=str(splits / "train"),
        AUTORESEARCH_OUTPUT_DIR=str(folder / "output"),
        AUTORESEARCH_TIME_BUDGET=str(args.probe_budget),
        AUTORESEARCH_SEED="0",
        AUTORESEARCH_MODEL=str(args.model),
        PYTHONUNBUFFERED="1",
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    )
    if threads:
        env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    python = [sys.executable]
    command = [*python, "probe.py"] if launcher == "python" else [*python, "-m", "accelerate.commands.launch"]
    if launcher == "accelerate":
        command += [*CPU_LAUNCH_ARGS, "probe.py"]
    started, cpu = time.time(), _children_cpu()
    done = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, start_new_session=True)
    ended, cpu = time.time(), _children_cpu() - cpu
    if done.returncode:
        raise SystemExit(f"probe {launcher} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    marks = {"exit": ended - started, "cpu": cpu}
    for line in done.stdout.splitlines():
        if line.startswith("[probe] "):
            _, name, value = line.split()
            marks[name] = float(value) if name == "threads" else float(value) - started
    return marks


def launch_probe(args, splits: Path, work: Path) -> None:
    cores = len(os.sched_getaffinity(0))
    # unset: accelerate launch sets OMP_NUM_THREADS to the physical cores, torch alone uses them too; 1 thread is
    # what a slot's share can come to on a busy or oversubscribed machine
    configs = [(launcher, threads) for launcher in ("python", "accelerate") for threads in (None, 1, cores)]
    print(f"\npart 2: seconds from launch to each milestone of train.py (budget {args.probe_budget:.0f} s)")
    print(f"  before: {load_average()}")
    results = {c: [probe_once(args, splits, work, *c) for _ in range(args.probe_repeats)] for c in configs}
    print(f"  after:  {load_average()}")
    print(f"{'launcher':<12}{'OMP':>6}{'threads':>8}" + "".join(f"{m:>13}" for m in MILESTONES))
    for (launcher, threads), runs in results.items():
        cells = "".join(f"{statistics.fmean(r.get(m, float('nan')) for r in runs):>13.2f}" for m in MILESTONES)
        print(f"{launcher:<12}{threads or 'unset':>6}{runs[0].get('threads', 0):>8.0f}" + cells)
    print(f"(mean of {args.probe_repeats} run(s) each; step_1 - train_begin: the first step; cpu: CPU seconds used)")


# --- part 3: the warm evaluator against a fresh evaluation process per model ------------------------------------
def evaluator_probe(run: Path, work: Path, repeats: int = 2) -> None:
    """Score the run's baseline model on selection: in a fresh process each time (what the harness did before the
    warm evaluator) and in one warm process; wall and CPU seconds of the evaluation process."""
    import psutil

    from hf_autoresearch.evaluation import EvalSetup, Evaluator
    from hf_autoresearch.recipe import load_recipe

    config = json.loads((run / "run.json").read_text())
    recipe = load_recipe(run / "worktree" / config["recipe_rel"])
    setup = EvalSetup(
        task=config["task"],
        splits_dir=str(run / "splits"),
        metric_path=str(ROOT / "hf_autoresearch" / "metrics" / recipe.metric.module),
        metric_options=dict(recipe.metric.options),
    )
    model, rows = run / "models" / "exp-0000", run / "splits" / "selection.jsonl"
    print(f"\npart 3: scoring {model.name} on selection ({sum(1 for _ in rows.open())} rows), seconds")
    print(f"  before: {load_average()}")
    results = {"fresh process": [], "warm process": []}
    for i in range(repeats):
        with Evaluator(setup, work / f"eval-fresh-{i}") as fresh:
            started = time.monotonic()
            fresh._start()  # imports torch, transformers and the metric
            answer = fresh.score(model, rows)
            after = psutil.Process(fresh.proc.pid).cpu_times()
            results["fresh process"].append((time.monotonic() - started, after.user + after.system, answer["scores"]))
    with Evaluator(setup, work / "eval-warm") as warm:
        warm._start()
        warm.release()  # what a trial does before training
        for _ in range(repeats):
            before = psutil.Process(warm.proc.pid).cpu_times()
            started = time.monotonic()
            answer = warm.score(model, rows)
            after = psutil.Process(warm.proc.pid).cpu_times()
            cpu = after.user + after.system - before.user - before.system
            results["warm process"].append((time.monotonic() - started, cpu, answer["scores"]))
            warm.release()
    print(f"  after:  {load_average()}")
    for name, runs in results.items():
        wall, cpu = statistics.fmean(r[0] for r in runs), statistics.fmean(r[1] for r in runs)
        accuracy = runs[0][2]["accuracy"]
        print(f"{name:<15} wall {wall:>7.1f}  cpu {cpu:>7.1f}  (mean of {len(runs)}; accuracy {accuracy:.4f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="PolyAI/banking77")
    parser.add_argument("--model", default=str(OFFLINE / "all-MiniLM-L6-v2"))
    parser.add_argument("--budget", type=float, default=30)
    parser.add_argument("--experiments", type=int, default=4, help="experiments after the baseline")
    parser.add_argument("--agent", choices=("replay", "optuna"), default="optuna")
    parser.add_argument("--launch-probe", action="store_true", help="also time accelerate launch (part 2)")
    parser.add_argument("--probe-only", action="store_true", help="skip part 1 (needs --run)")
    parser.add_argument("--evaluator-probe", action="store_true", help="also time the warm evaluator (part 3)")
    parser.add_argument("--run", type=Path, help="a finished run folder for --probe-only (default: part 1's)")
    parser.add_argument("--probe-budget", type=float, default=20)
    parser.add_argument("--probe-repeats", type=int, default=1)
    parser.add_argument("--work", type=Path, help="keep everything here (default: a temp folder, removed)")
    args = parser.parse_args()
    args.data = Path(args.data).expanduser() if Path(args.data).expanduser().exists() else args.data
    args.model = Path(args.model).expanduser() if Path(args.model).expanduser().exists() else args.model

    work = args.work or Path(tempfile.mkdtemp(prefix="bench-overhead-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        run = args.run
        if not args.probe_only:
            run = measure_overhead(args, work)
        elif run is None:
            parser.error("--probe-only needs --run RUN_FOLDER (a finished run of the intent recipe)")
        if args.launch_probe:
            launch_probe(args, run / "splits", work)
        if args.evaluator_probe:
            evaluator_probe(run, work)
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
