"""What the claude agent is told: a stable system prompt (cached) and a task prompt rebuilt every experiment.

The system prompt holds the rules, the keep rule, the machine the trials train on (accelerator, precision, CPU
threads, RAM, how many trials share it) and the recipe's program.md. The task prompt holds the run as a researcher
reads it after each training: the score to beat, a table of experiments with what the harness measured (per-run
scores of repeated trainings, the other metrics of the frozen evaluation, steps done of those planned, the loss
curve in a few points, the learning rate reached, samples a second, start-up and save seconds, peak memory), the
diffs of the latest experiments, the logs of recent failures, the full reasons of recent invalid proposals, the
agent's own notes on its latest proposals, the experiments other workers are training, a preview of the best model
on a few training rows, and the current best train.py. Its size stays bounded as a run grows: the table keeps the
latest keeps and the latest rows and sums up the others in one line (read_experiment_curve reaches any of them).
"""

from __future__ import annotations

import json
from pathlib import Path

from hf_autoresearch.agents.base import ProposalContext
from hf_autoresearch.agents.history import history_table
from hf_autoresearch.agents.text import clip, ending, one_line, short, tail
from hf_autoresearch.ledger import experiment_id

LOG_TAIL_LINES = 40  # of each recent failure
RECENT_FAILURES = 3
RECENT_DIFFS = 3  # latest experiments whose diff is shown inline; read_experiment_diff reaches the others
RECENT_INVALID = 3  # latest invalid proposals whose full reason is shown
RECENT_NOTES = 3  # latest proposals whose notes (the agent's own reasoning) are shown
NOTE_CHARS = 700  # of each of those notes (the end of it: the conclusion)
REASON_LINES = 30
DIFF_LINES = 60


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
        "z": float(run.get("noise_z") or metric.noise_z),  # a run made before the t-test rule
        "noise_std": float(noise.get("std", 0.0)),
        "confirm": bool(run.get("confirm", True)),
        "direction": metric.direction,
        "baseline_runs": len(noise.get("scores", [])) or 1,
    }
    rule["threshold"] = max(rule["min_delta"], rule["z"] * rule["noise_std"])
    return rule


def rule_text(rule: dict) -> str:
    """The keep rule in words, with the numbers that hold for the next candidate on the current best."""
    if "false_keep_rate" not in rule:  # a run made before the t-test rule (docs/keep-rule.md)
        return _old_rule_text(rule)
    better = "higher" if rule.get("direction", "maximize") == "maximize" else "lower"
    n = 3 if rule.get("confirm", True) else 1
    text = (
        f"A candidate is kept only if a one-sided t-test says it is {better} than the best, at a false-keep rate of "
        f"{rule['false_keep_rate']:g} (an edit with no effect is kept at most that often). The best's score is the "
        f"mean of runs that decided nothing (a keep is retrained with fresh seeds before it becomes the bar). "
    )
    if n > 1:
        text += (
            "A candidate's first run must clear a screen; then it trains twice more with fresh seeds, and the mean of "
            "its 3 runs "
        )
    else:
        text += "A candidate's one run "
    text += (
        f"must beat the best by more than {rule.get('threshold', 0):.4f} now (the t quantile times the seed noise "
        f"sigma {rule.get('noise_std', 0):.4f}, pooled from repeated runs near the best with {rule.get('df', 0)} "
        f"degrees of freedom, times sqrt(1/n + 1/m))"
    )
    if rule.get("min_delta"):
        text += f", and by at least min_delta {rule['min_delta']:g}"
    return text + ". A lucky seed is not a win."


def _old_rule_text(rule: dict) -> str:
    better = "higher" if rule.get("direction", "maximize") == "maximize" else "lower"
    runs = rule.get("baseline_runs")
    times = "once" if runs == 1 else f"{runs} times"
    sigma = f"the std of the baseline trained {times} with other seeds" if runs else "the seed noise std"
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
  read_experiment_log shows an earlier experiment's training log, read_experiment_diff its edit,
  read_experiment_curve its full loss curve, schedule, every metric, per-run scores and your notes on it.
- You have at most {max_turns} tool turns. When train.py holds your edit, call finish_experiment.

The keep rule: {rule_text(keep_rule(context))}

The machine each trial trains on (measured when this session of the run started):
{machine_text(context.machine)}
Timings: program.md carries no machine-specific numbers; the history table's steps, samples a second and start-up
seconds are measured on this machine, by the harness.

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
        "History (baseline first). Columns: selection is the deciding score (the mean over runs, each run's score "
        'in brackets when it was trained more than once); "vs best" the difference to the current best; "gain '
        '(thr.)" what the keep rule saw then; "other metrics" the rest of the frozen evaluation; "steps" completed '
        'of planned (how far into the learning-rate schedule it got); "loss curve" the logged training loss from '
        'first to last; "lr" the learning rate reached; "start s" launch to the first step; "save s" last step to '
        "the saved model. Measured by the harness:\n\n" + history_table(context),
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
    invalid = [r for r in context.history if r.status == "invalid"][-RECENT_INVALID:]
    if invalid:
        sections.append(
            "Recent invalid proposals (never trained), with their full reasons:\n"
            + "".join(f"\n{r.experiment}: {clip(r.reason, REASON_LINES)}\n" for r in invalid)
        )
    noted = [r for r in context.history if (r.proposal or {}).get("notes")][-RECENT_NOTES:]
    if noted:
        sections.append(
            "Your own notes when you proposed the latest experiments (the end of each; read_experiment_curve has "
            "them in full):\n"
            + "".join(f"\n{r.experiment} ({r.status}): {ending(r.proposal['notes'], NOTE_CHARS)}\n" for r in noted)
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


def machine_text(facts: dict) -> str:
    """The machine facts (executors/machine.py) as a few lines of the system prompt."""
    if not facts:
        return "- not known"
    gpus = facts.get("gpus") or []
    if gpus:
        names = ", ".join(f"{g['name']} ({g['memory_gb']:g} GB, compute capability {g['capability']})" for g in gpus)
        device = f"CUDA, {len(gpus)} GPU{'s' if len(gpus) > 1 else ''} visible to each trial: {names}"
    else:
        device = {"mps": "Apple MPS", "cpu": "CPU only (no GPU)"}.get(facts.get("device"), str(facts.get("device")))
    precision = f"bf16 {'yes' if facts.get('bf16') else 'no'}, fp16 {'yes' if facts.get('fp16') else 'no'}"
    workers = facts.get("workers", 1)
    threads = facts.get("threads_per_trial")
    share = f"{threads} threads for each trial" if threads else "all of them for the trial" if workers == 1 else ""
    cpus = f"{facts.get('cpu_cores')} CPU cores" + (f", {share}" if share else "")
    shared = "one trial at a time" if workers == 1 else f"{workers} trials at once share it (one a slot)"
    lines = [
        f"- accelerator: {device}; {precision}",
        f"- CPU: {cpus}; RAM {facts.get('ram_gb')} GB",
        f"- executor: {facts.get('executor')}, {shared}; torch {facts.get('torch', '?')}",
    ]
    if facts.get("note"):
        lines.append(f"- note: {facts['note']}")
    return "\n".join(lines)


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
