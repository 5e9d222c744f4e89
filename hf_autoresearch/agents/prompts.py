"""What the claude agent is told: a stable system prompt (cached) and a task prompt rebuilt every experiment.

The task prompt holds the run as the model needs it to choose the next edit, like the results table and diffs
autoresearch's agent keeps in its own context: the keep rule and the score to beat now, a table of every
experiment with its training facts (seconds, steps, epochs, train loss, peak memory from summary.json), the diffs
of the latest experiments, the logs of recent failures, the experiments other workers are training right now,
a preview of the best model's predictions on a few training rows, and the current best train.py.
"""

from __future__ import annotations

import json
from pathlib import Path

from hf_autoresearch.agents.base import ProposalContext
from hf_autoresearch.ledger import experiment_id

LOG_TAIL_LINES = 40  # of each recent failure
RECENT_FAILURES = 3
RECENT_DIFFS = 3  # latest experiments whose diff is shown inline; read_experiment_diff reaches the others
DIFF_LINES = 60
TABLE_ROWS = 60  # the kept experiments plus the latest ones, when a run grows long
PREVIEW_CHARS = 300


# --- the rule ------------------------------------------------------------------------------------------
def keep_rule(context: ProposalContext) -> dict:
    """The keep rule: the loop's `context.rule`, else rebuilt from run.json and the baseline's noise floor."""
    if context.rule:
        return dict(context.rule)
    run = run_config(context)
    metric = context.recipe.metric
    baseline = next((r for r in context.history if r.decision.get("rule") == "baseline"), None)
    noise = (baseline.decision.get("noise") or {}) if baseline else {}
    rule = {
        "min_delta": float(run.get("min_delta", metric.min_delta)),
        "z": float(run.get("noise_z", metric.noise_z)),
        "noise_std": float(noise.get("std", 0.0)),
        "confirm": bool(run.get("confirm", True)),
        "direction": metric.direction,
        "baseline_runs": len(noise.get("scores", [])) or 1,
    }
    rule["threshold"] = max(rule["min_delta"], rule["z"] * rule["noise_std"])
    return rule


def rule_text(rule: dict) -> str:
    better = "higher" if rule.get("direction", "maximize") == "maximize" else "lower"
    runs = rule.get("baseline_runs")
    sigma = f"the std of the baseline trained {runs} times with other seeds" if runs else "the seed noise std"
    text = (
        f"A candidate is kept only if its score is {better} than the best by more than the threshold "
        f"max(min_delta, z * sigma) = max({rule.get('min_delta', 0):g}, {rule.get('z', 0):g} * "
        f"{rule.get('noise_std', 0):.4f}) = {rule.get('threshold', 0):.4f}, where sigma is {sigma}."
    )
    if rule.get("confirm", True):
        text += (
            " A candidate that clears it is trained once more with a fresh seed and kept only if the mean of both "
            "runs still clears it: a lucky seed is not a win."
        )
    return text


# --- the system prompt (stable, cached) ------------------------------------------------------------------
def system_prompt(context: ProposalContext, max_turns: int) -> str:
    recipe = context.recipe
    run = run_config(context)
    budget = context.budget or run.get("budget") or recipe.budget.seconds
    grace = run.get("grace", recipe.budget.grace_seconds)
    program = (recipe.path / "program.md").read_text() if (recipe.path / "program.md").is_file() else ""
    return f"""You are an ML research engineer in an autonomous keep/discard loop (hf-autoresearch). You improve one
training script, `train.py`, one experiment at a time. In this experiment you make ONE focused edit of train.py
and then call finish_experiment with a one-line description. The harness then commits the edit, runs train.py
under a fixed wall-clock budget, scores the saved model with a frozen evaluation on a selection split you never
see, and keeps the commit only if it beats the best so far by the rule below; otherwise the edit is discarded.

Rules:
- Edit only train.py (path `train.py`) with str_replace_based_edit_tool: view, str_replace and insert. Any other
  path, and `create`, is refused. Keep each tool call short: an answer cut off by the output limit is not run.
- No new dependencies: only the packages train.py already uses (torch, transformers, datasets, accelerate, peft,
  numpy, the hf_autoresearch.experiment helper) and the Python standard library. No downloads.
- The budget: train.py gets {budget:g} s of wall-clock time counted from its start; it must stop and save by itself
  (keep experiment.deadline_callback(...) or check experiment.time_left()). Past {budget:g} + {grace:g} s it is
  killed and scores nothing.
- Keep the seed (experiment.seed_everything()), the data location (experiment.data_dir()) and the output location
  (experiment.output_dir()); the model must stay loadable with from_pretrained, tokenizer saved beside it.
- One idea per experiment, so its result can be attributed. Read the history: do not repeat a discarded idea
  unchanged; build on what was kept; fix what crashed; do not propose what another worker is training now.
  read_experiment_log shows an earlier experiment's training log, read_experiment_diff its edit.
- You have at most {max_turns} tool turns. When train.py holds your edit, call finish_experiment.

The keep rule: {rule_text(keep_rule(context))}

The recipe:
- name: {recipe.name} ({recipe.task}): {recipe.description}
- model: {run.get("model", recipe.model.name)}
- metric: {recipe.metric.name} on the selection split, {recipe.metric.direction}
- budget: {budget:g} s of training per experiment
- data: {split_sizes(context)}

program.md, the recipe's instructions:

{program}"""


# --- the task prompt (every experiment) -----------------------------------------------------------------
def task_prompt(context: ProposalContext) -> str:
    best = context.best
    metric = context.recipe.metric.name
    rule = keep_rule(context)
    sign = 1 if rule.get("direction", "maximize") == "maximize" else -1
    target = best.selection + sign * rule.get("threshold", 0.0)
    above = "above" if sign > 0 else "below"
    sections = [
        f"This is {experiment_id(context.number)}. The best so far: {best.experiment}, selection {metric} "
        f"{best.selection:.4f}. To be kept, this experiment must score {above} {target:.4f} (best "
        f"{'+' if sign > 0 else '-'} threshold {rule.get('threshold', 0.0):.4f}).",
        'History (baseline first; "vs best" is the difference to the current best; "gain (thr.)" what the '
        "keep rule saw then; training facts come from train.py's summary.json):\n\n" + history_table(context),
    ]
    diffs = [r for r in context.history if r.diff and r.number > 0][-RECENT_DIFFS:]
    if diffs:
        sections.append(
            "The edits of the latest experiments:\n"
            + "".join(f"\n{r.experiment} ({r.status}):\n```diff\n{clip(r.diff, DIFF_LINES)}\n```\n" for r in diffs)
        )
    failures = [r for r in context.history if r.status in ("crash", "timeout")][-RECENT_FAILURES:]
    if failures:
        sections.append(
            "Recent failures:\n"
            + "".join(
                f"\n{r.experiment} ({r.status}), last lines of its log:\n```\n{tail(r.log_tail, LOG_TAIL_LINES)}"
                "\n```\n"
                for r in failures
            )
        )
    if context.in_flight:
        sections.append(
            "Being trained right now by other workers (their results are not known yet; do NOT propose these "
            "ideas again):\n"
            + "".join(
                f"\n{e.get('experiment', '?')}: {one_line(e.get('description', ''))}\n```diff\n"
                f"{clip(e.get('diff', ''), DIFF_LINES)}\n```\n"
                for e in context.in_flight
            )
        )
    if context.preview:
        sections.append(
            f"What the current best model ({best.experiment}) predicts for {len(context.preview)} fixed TRAINING "
            "rows (never selection or holdout rows; shown so format errors are visible):\n"
            + "".join(
                f"\n- input: {short(p.get('input'))}\n  prediction: {short(p.get('prediction'))}\n"
                f"  reference: {short(p.get('reference'))}"
                for p in context.preview
            )
        )
    sections.append(
        f"The current best train.py (the file you edit, path `train.py`):\n\n```python\n"
        f"{context.train_py.read_text()}```\n\nMake one focused edit, then call finish_experiment."
    )
    return "\n\n".join(sections)


def history_table(context: ProposalContext) -> str:
    best = context.best
    header = "| experiment | status | selection | vs best | gain (thr.) | train s | steps | epochs | train loss | "
    header += "peak MB | description |"
    rows = [header, "|" + "---|" * 11]
    records = context.history
    if len(records) > TABLE_ROWS:
        latest = {r.number for r in records[-(TABLE_ROWS // 2) :]}
        records = [r for r in records if r.status == "keep" or r.number in latest]
        rows.append(f"| ... | {len(context.history) - len(records)} older discarded or failed rows omitted |")
    for r in records:
        score = "" if r.selection is None else f"{r.selection:.4f}"
        delta = "" if r.selection is None or best.selection is None else f"{r.selection - best.selection:+.4f}"
        gain = r.decision.get("gain")
        decided = "" if gain is None else f"{gain:+.4f} ({r.decision.get('threshold', 0.0):.4f})"
        s = r.summary or {}
        peak = s.get("peak_vram_mb") or 0.0
        memory = f"{peak:.0f} GPU" if peak else (f"{r.peak_rss_mb:.0f} RSS" if r.peak_rss_mb else "")
        why = f" ({r.reason.splitlines()[0][:160]})" if r.reason else ""
        cells = [
            r.experiment,
            r.status,
            score,
            delta,
            decided,
            number(s.get("training_seconds", r.train_seconds or None), "{:.0f}"),
            number(s.get("num_steps"), "{:.0f}"),
            number(s.get("epochs"), "{:.2f}"),
            number(s.get("train_loss"), "{:.4f}"),
            memory,
            one_line(r.description) + why,
        ]
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


# --- helpers -----------------------------------------------------------------------------------------------
def run_config(context: ProposalContext) -> dict:
    try:
        return json.loads((Path(context.run_folder) / "run.json").read_text()) if context.run_folder else {}
    except (OSError, json.JSONDecodeError):
        return {}


def split_sizes(context: ProposalContext) -> str:
    if not context.run_folder:
        return "see program.md"
    splits = Path(context.run_folder) / "splits"

    def rows(path: Path) -> int:
        return sum(1 for line in path.open() if line.strip()) if path.is_file() else 0

    labels = splits / "train" / "labels.json"
    n_labels = len(json.loads(labels.read_text())) if labels.is_file() else 0
    return (
        f"{rows(splits / 'train' / 'train.jsonl')} training rows"
        + (f", {n_labels} labels" if n_labels else "")
        + f"; selection {rows(splits / 'selection.jsonl')} rows, holdout {rows(splits / 'holdout.jsonl')} rows"
        " (neither is visible to train.py)"
    )


def number(value, fmt: str) -> str:
    return fmt.format(value) if isinstance(value, int | float) and not isinstance(value, bool) else ""


def one_line(text: str) -> str:
    return " ".join(str(text).split())


def short(value) -> str:
    text = one_line("" if value is None else value)
    return text if len(text) <= PREVIEW_CHARS else text[: PREVIEW_CHARS - 3] + "..."


def tail(text: str, lines: int) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


def clip(text: str, lines: int) -> str:
    kept = text.rstrip().splitlines()
    if len(kept) <= lines:
        return "\n".join(kept)
    return "\n".join(kept[:lines]) + f"\n... ({len(kept) - lines} more lines)"
