"""The keep rule measured for real (scripts/bench_keep_rule.py real): an A/B then an A/A on one CPU run.

A throwaway git project holds a copy of the intent recipe. The replay agent proposes, in order:
- 0001: the shipped example patch (learning rate 3e-4, no warmup): a known improvement, the A/B; it must be kept;
- 0002...: edits that only shift the seed the Trainer gets (`seed=seed + 101 * k`): no effect in expectation, the
  A/A, judged against the trained best; each keep among them is a false keep.
The table lists every experiment with its runs and the decision's numbers.

    flock /tmp/heavy.lock python scripts/bench_keep_rule.py real --budget 30 --aa 20 \\
        --model ~/.cache/hf-autoresearch-offline/all-MiniLM-L6-v2 --data ../shared/data/banking77
"""

from __future__ import annotations

import difflib
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "recipes" / "intent-categorization"
SEED_LINE = "        seed=seed,\n"


def seed_patch(train_py: str, k: int) -> str:
    """A patch whose only change shifts the Trainer's seed by 101 * k."""
    if SEED_LINE not in train_py:
        raise SystemExit(f"{RECIPE / 'train.py'} no longer has the line {SEED_LINE.strip()!r}; update this script")
    after = train_py.replace(SEED_LINE, f"        seed=seed + {101 * k},\n")
    diff = "".join(difflib.unified_diff(train_py.splitlines(True), after.splitlines(True), "a/train.py", "b/train.py"))
    subject = f"A/A: Trainer seed + {101 * k} (no effect in expectation)"
    return f"Subject: [PATCH] {subject}\n\n---\ndiff --git a/train.py b/train.py\n{diff}"


def make_project(folder: Path, aa: int) -> tuple[Path, Path]:
    """(the recipe in a fresh git repository, the patches folder)."""
    project = folder / "project"
    recipe = project / "recipes" / RECIPE.name
    shutil.copytree(RECIPE, recipe, ignore=shutil.ignore_patterns("__pycache__"))
    for command in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "recipe"]):
        subprocess.run(["git", "-c", "user.name=bench", "-c", "user.email=bench@x", *command], cwd=project, check=True)
    patches = folder / "patches"
    patches.mkdir()
    shutil.copy(RECIPE / "examples" / "0001-no-warmup-higher-lr.patch", patches / "0001-ab.patch")
    train_py = (RECIPE / "train.py").read_text()
    for k in range(1, aa + 1):
        (patches / f"{k + 1:04d}-aa.patch").write_text(seed_patch(train_py, k))
    return recipe, patches


def table(run_folder: Path) -> str:
    from hf_autoresearch.ledger import Ledger

    rows = [
        "| exp | edit | status | runs | first run | mean of deciding runs | bar | needed gain | sigma (source, df) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    keeps = false_keeps = aa = 0
    for r in Ledger(run_folder).records():
        d = r.decision
        first = next((t["selection"] for t in r.trials if t.get("kind") == "first run"), None)
        fmt = lambda v: "" if v is None else f"{v:.4f}"  # noqa: E731
        sigma = f"{d['sigma']:.4f} ({d['sigma_source']}, {d['df']})" if "sigma" in d else ""
        mean = d.get("decision_mean", d.get("score"))
        rows.append(
            f"| {r.experiment} | {r.description[:48]} | {r.status} | {len(r.trials)} | {fmt(first)} | {fmt(mean)} | "
            f"{fmt(d.get('best'))} | {fmt(d.get('threshold'))} | {sigma} |"
        )
        if r.number > 1 and r.status in ("keep", "discard"):
            aa += 1
            false_keeps += r.status == "keep"
        keeps += r.status == "keep" and r.number > 0
    runs = sum(len(r.trials) for r in Ledger(run_folder).records() if r.number > 1)
    rows.append("")
    rows.append(f"A/A: {false_keeps} false keeps in {aa} no-effect experiments, {runs / max(aa, 1):.2f} runs each")
    return "\n".join(rows)


def main(args) -> int:
    folder = Path(args.workdir or tempfile.mkdtemp(prefix="keep-rule-real-"))
    folder.mkdir(parents=True, exist_ok=True)
    recipe, patches = make_project(folder, args.aa)
    load = Path("/proc/loadavg").read_text().split()[:3]
    print(f"project {recipe}; load before: {' '.join(load)}", flush=True)
    command = [
        str(Path(sys.executable).parent / "hf-autoresearch"), "run", str(recipe), "--tag", "keep-rule",
        "--agent", "replay",
        "--patches", str(patches), "--budget", str(args.budget), "--max-experiments", str(args.aa + 1),
        "--run-dir", str(folder / "runs"), "--seed", "0",
        *(["--model", args.model] if args.model else []), *(["--data", args.data] if args.data else []),
        *(["--baseline-repeats", str(args.baseline_repeats)] if args.baseline_repeats else []),
    ]  # fmt: skip
    done = subprocess.run(command, cwd=recipe.parents[1])
    load = Path("/proc/loadavg").read_text().split()[:3]
    print(f"load after: {' '.join(load)}")
    print(table(folder / "runs" / "keep-rule"))
    return done.returncode
