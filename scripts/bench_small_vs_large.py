"""Does an autoresearched small model beat a larger one? A run of the small model, then the larger at 1x and 5x budget.

    python scripts/bench_small_vs_large.py recipes/intent-categorization --experiments 5 --budget 60 \\
        --data ../shared/data/banking77 --model ~/.cache/hf-autoresearch-offline/all-MiniLM-L6-v2 \\
        --larger ~/.cache/hf-autoresearch-offline/all-mpnet-base-v2

1. `hf-autoresearch run RECIPE --agent optuna --max-experiments N --budget B` on the small model (one baseline
   training, no confirmation runs unless --confirm), in a throwaway git repository holding a copy of the recipe;
2. `hf-autoresearch baseline RECIPE --model LARGER --budget B`, then again with `--budget FACTOR*B` (the run's
   `larger-baseline.json` is then set back to the same-budget one, so `status` and model cards compare like with
   like; both are kept as `larger-baseline-1x.json` and `larger-baseline-5x.json`);
3. with --larger-tuned, the larger model once more at 1x budget with the small run's best train.py (the search's
   tuning given to both models, so the gap is the model's and not the recipe defaults');
4. a table: parameters, selection and holdout scores, seconds in the training loop, and the holdout gain of the
   small model's best experiment over each row (positive: the small model wins).

The larger model is trained with the run's original train.py (exp-0000's), as `hf-autoresearch baseline` does.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_overhead import cli, load_average, make_project, read_ledger  # noqa: E402

from hf_autoresearch.reporting.larger_baseline import count_parameters  # noqa: E402
from hf_autoresearch.reporting.summary import relative_gain  # noqa: E402


@dataclass
class Row:
    name: str
    model: str
    params: int | None
    selection: float | None
    holdout: float | None
    train_seconds: float | None  # seconds in the training loop (summary.json), else the training process's
    status: str = "ok"


def small_rows(folder: Path) -> tuple[Row, Row]:
    """(the recipe as shipped: exp-0000, the run's best keep) from a run folder."""
    records = read_ledger(folder)
    keeps = [r for r in records if r["status"] == "keep"]
    config = json.loads((folder / "run.json").read_text())

    def row(name: str, r: dict) -> Row:
        seconds = (r.get("summary") or {}).get("training_seconds") or r.get("train_seconds")
        params = count_parameters(folder / "models" / f"exp-{r['number']:04d}")
        return Row(name, config["model"], params, r.get("selection"), r.get("holdout"), seconds)

    best = keeps[-1]
    return row("small, recipe as shipped (exp-0000)", keeps[0]), row(f"small, best (exp-{best['number']:04d})", best)


def larger_row(result: dict, name: str) -> Row:
    seconds = result.get("training_seconds") or result.get("train_seconds")
    return Row(
        name,
        result["model"],
        result.get("num_params"),
        result.get("selection"),
        result.get("holdout"),
        seconds,
        result["status"],
    )


def format_table(rows: list[Row], direction: str = "maximize") -> str:
    best = rows[1]
    fmt = lambda v, spec: "—" if v is None else format(v, spec)  # noqa: E731
    lines = [
        f"{'':<40}{'model':<26}{'params':>9}{'selection':>11}{'holdout':>9}{'train s':>9}  best's holdout gain",
    ]
    for row in rows:
        gain = relative_gain(best.holdout, row.holdout, direction) if row is not best else None
        params = "?" if not row.params else f"{row.params / 1e6:.1f}M"
        lines.append(
            f"{row.name:<40}{Path(row.model).name[:25]:<26}{params:>9}{fmt(row.selection, '.4f'):>11}"
            f"{fmt(row.holdout, '.4f'):>9}{fmt(row.train_seconds, '.0f'):>9}  "
            + (fmt(gain, "+.1%") if row is not best else "")
            + ("" if row.status == "ok" else f" ({row.status})")
        )
    return "\n".join(lines)


def bench(
    recipe: Path,
    work: Path,
    *,
    model: str,
    larger: str,
    data: str | None,
    experiments: int,
    budget: float,
    factor: float = 5,
    agent: str = "optuna",
    confirm: bool = False,
    grace: float | None = None,
    tuned: bool = False,
    log=print,
) -> list[Row]:
    """Run the whole comparison under `work`; returns the table's rows (small baseline, small best, larger...)."""
    recipe = Path(recipe).resolve()
    project = work / "project" / "recipes" / recipe.name
    if not project.is_dir():  # a --work folder of an earlier, interrupted bench is reused
        project = make_project(work / "project", recipe)
    runs, cli_log = work / "runs", work / "cli.log"
    data_args = ["--data", str(data)] if data else []
    grace_args = ["--grace", str(grace)] if grace is not None else []
    folder = runs / "small"
    done = len(read_ledger(folder)) if (folder / "ledger.jsonl").is_file() else 0
    if done > experiments:
        log(f"small model: reusing the run in {folder}")
    else:
        log(f"small model: {experiments} experiments at {budget:.0f} s ({load_average()})")
        patches = ["--patches", str(project / "examples")] if agent == "replay" else []
        if (folder / "run.json").is_file():  # an interrupted bench: continue its run
            start = ["run", "--resume", "--tag", "small", "--run-dir", str(runs), *grace_args]
        else:
            start = [
                "run", str(project), "--tag", "small", "--agent", agent, *patches, "--model", str(model), *data_args,
                "--budget", str(budget), *grace_args, "--baseline-repeats", "1",
                "--confirm" if confirm else "--no-confirm", "--seed", "0", "--run-dir", str(runs),
            ]  # fmt: skip
        seconds = cli(*start, "--max-experiments", str(experiments), log=cli_log)
        log(f"  done in {seconds:.0f} s ({load_average()})")
    rows = list(small_rows(folder))
    results = {}
    for times in (1, factor):
        saved = folder / f"larger-baseline-{times:g}x.json"
        if saved.is_file():
            results[times] = json.loads(saved.read_text())
            continue
        log(f"larger model at {times:g}x budget ({budget * times:.0f} s) ({load_average()})")
        seconds = cli(
            "baseline", str(project), "--tag", "small", "--model", str(larger), "--budget", str(budget * times),
            "--run-dir", str(runs), log=cli_log,
        )  # fmt: skip
        results[times] = json.loads((folder / "larger-baseline.json").read_text())
        saved.write_text(json.dumps(results[times], indent=2))
        log(f"  done in {seconds:.0f} s ({load_average()})")
    # the run's larger-baseline.json (what status and model cards read) keeps the like-for-like comparison
    (folder / "larger-baseline.json").write_text(json.dumps(results[1], indent=2))
    rows += [larger_row(results[t], f"larger, {t:g}x budget ({budget * t:.0f} s)") for t in (1, factor)]
    if tuned:
        rows.append(
            larger_tuned_row(
                work, recipe, folder, larger=larger, data_args=data_args, grace_args=grace_args, budget=budget, log=log
            )
        )
    return rows


def larger_tuned_row(
    work: Path, recipe: Path, small: Path, *, larger: str, data_args, grace_args, budget: float, log
) -> Row:
    """The larger model trained once, at 1x budget, with the small run's best train.py (same seed and splits): what
    the search found, given to the larger model too, so the gap is the model's and not the tuning's."""
    runs = work / "runs"
    folder = runs / "larger-tuned"
    if not (folder / "ledger.jsonl").is_file():
        best = [r for r in read_ledger(small) if r["status"] == "keep"][-1]
        source = subprocess.run(
            ["git", "show", f"{best['commit']}:recipes/{recipe.name}/train.py"],
            cwd=work / "project", check=True, capture_output=True, text=True,
        ).stdout  # fmt: skip
        project = make_project(work / "tuned-project", recipe)
        (project / "train.py").write_text(source)
        ident = ["-c", "user.name=bench", "-c", "user.email=bench@localhost"]
        message = f"train.py of the small run's exp-{best['number']:04d}"
        subprocess.run(
            ["git", *ident, "commit", "-q", "--allow-empty", "-am", message], cwd=work / "tuned-project", check=True
        )
        log(f"larger model with the small run's best train.py (exp-{best['number']:04d}) ({load_average()})")
        seconds = cli(
            "run", str(project), "--tag", "larger-tuned", "--agent", "optuna", "--model", str(larger), *data_args,
            "--budget", str(budget), *grace_args, "--baseline-repeats", "1", "--no-confirm", "--seed", "0",
            "--max-experiments", "0", "--run-dir", str(runs), log=work / "cli.log",
        )  # fmt: skip
        log(f"  done in {seconds:.0f} s ({load_average()})")
    record = read_ledger(folder)[0]
    seconds = (record.get("summary") or {}).get("training_seconds") or record.get("train_seconds")
    params = count_parameters(folder / "models" / "exp-0000")
    name = f"larger, 1x, best's train.py ({budget:.0f} s)"
    status = "ok" if record["status"] in ("keep", "discard") else record["status"]
    return Row(name, larger, params, record.get("selection"), record.get("holdout"), seconds, status)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("recipe", type=Path)
    parser.add_argument("--model", help="the small model (default: the recipe's)")
    parser.add_argument("--larger", help="the larger model (default: the recipe's [model] baseline)")
    parser.add_argument("--data", help="default: the recipe's")
    parser.add_argument("--experiments", type=int, default=5, help="experiments after the baseline")
    parser.add_argument("--budget", type=float, default=60, help="training seconds per experiment")
    parser.add_argument("--factor", type=float, default=5, help="the larger model's second budget, in budgets")
    parser.add_argument("--agent", choices=("optuna", "replay"), default="optuna")
    parser.add_argument("--confirm", action="store_true", help="confirmation runs for would-be keeps")
    parser.add_argument("--grace", type=float, help="seconds past the budget before a training is killed")
    parser.add_argument(
        "--larger-tuned",
        action="store_true",
        help="also train the larger model at 1x with the small run's best train.py (its tuning, not the recipe's)",
    )
    parser.add_argument("--work", type=Path, help="keep the runs here (default: a temp folder, removed)")
    args = parser.parse_args()

    from hf_autoresearch.recipe import load_recipe

    recipe = load_recipe(args.recipe)
    local = lambda value: str(Path(value).expanduser()) if value and Path(value).expanduser().exists() else value  # noqa: E731
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-small-vs-large-"))
    work.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    try:
        rows = bench(
            args.recipe,
            work,
            model=local(args.model) or recipe.model.name,
            larger=local(args.larger) or recipe.model.baseline,
            data=local(args.data),
            experiments=args.experiments,
            budget=args.budget,
            factor=args.factor,
            agent=args.agent,
            confirm=args.confirm,
            grace=args.grace,
            tuned=args.larger_tuned,
        )
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    print(
        f"\n{recipe.name}: {recipe.metric.name} ({recipe.metric.direction}), {args.agent} agent, "
        f"{args.experiments} experiments at {args.budget:.0f} s; {time.monotonic() - started:.0f} s in all"
    )
    print(format_table(rows, recipe.metric.direction))


if __name__ == "__main__":
    main()
