"""The claude agent's tools besides the text editor: finishing the proposal and reading earlier experiments.

The read tools are read-only and reach only the run's own ledger and logs, for experiments before this one: the
training log, the edit, and the curve (every logged loss and learning rate, the schedule, every metric, each run's
score, the full reason of a failure and the agent's own notes on it).
"""

from __future__ import annotations

from pathlib import Path

from hf_autoresearch.agents.base import ProposalContext
from hf_autoresearch.agents.editor import EDITOR_TOOL, ToolError, TrainPyEditor
from hf_autoresearch.agents.text import clip, one_line
from hf_autoresearch.ledger import experiment_id

FINISH_TOOL = {
    "name": "finish_experiment",
    "description": "End this proposal once train.py holds your edit. The harness then commits, trains and scores it.",
    "input_schema": {
        "type": "object",
        "properties": {
            "description": {
                "type": "string",
                "description": "one line: what this experiment changes and why, e.g. 'Cosine schedule, lr 2e-4'",
            }
        },
        "required": ["description"],
    },
}


def _read_tool(name: str, what: str, extra: dict | None = None) -> dict:
    properties = {"experiment": {"type": "integer", "description": "the experiment's number, e.g. 3 for exp-0003"}}
    return {
        "name": name,
        "description": f"Read {what} of an earlier experiment; read-only.",
        "input_schema": {"type": "object", "properties": {**properties, **(extra or {})}, "required": ["experiment"]},
    }


LOG_TOOL = _read_tool(
    "read_experiment_log",
    "the training log (stdout and stderr of train.py)",
    {"tail_lines": {"type": "integer", "description": "how many of the last lines to return (default 200)"}},
)
DIFF_TOOL = _read_tool("read_experiment_diff", "the edit (git diff of train.py)")
CURVE_TOOL = _read_tool(
    "read_experiment_curve",
    "the training curve (every logged step: loss, learning rate, grad norm), the schedule, throughput, every "
    "metric of the frozen evaluation, each run's score, the full failure reason and your own notes",
)
TOOLS = [EDITOR_TOOL, FINISH_TOOL, LOG_TOOL, DIFF_TOOL, CURVE_TOOL]
CURVE_FACTS = (
    "planned_steps",
    "completed_steps",
    "planned_epochs",
    "epochs",
    "final_loss",
    "learning_rate",
    "samples_per_step",
    "samples_per_second",
    "first_step_seconds",
    "save_seconds",
)


def run_tool(name: str, args: dict, editor: TrainPyEditor, context: ProposalContext) -> tuple[str, str | None]:
    """(result text, description or None); a ToolError becomes an `is_error` result."""
    if name == EDITOR_TOOL["name"]:
        return editor.run(args), None
    if name == LOG_TOOL["name"]:
        return read_log(context, args), None
    if name == DIFF_TOOL["name"]:
        return read_diff(context, args), None
    if name == CURVE_TOOL["name"]:
        return read_curve(context, args), None
    if name == FINISH_TOOL["name"]:
        return "", editor.finish(args.get("description"))
    raise ToolError(f"unknown tool {name!r}; use {', '.join(t['name'] for t in TOOLS)}")


def experiment_number(context: ProposalContext, args: dict) -> int:
    value = args.get("experiment") if isinstance(args, dict) else None
    if isinstance(value, str) and value.removeprefix("exp-").isdigit():
        value = int(value.removeprefix("exp-"))
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < context.number:
        raise ToolError(f"experiment must be the number of an earlier experiment, 0 to {context.number - 1}")
    return value


def read_log(context: ProposalContext, args: dict) -> str:
    number_ = experiment_number(context, args)
    lines = args.get("tail_lines", 200)
    if not isinstance(lines, int) or lines < 1:
        raise ToolError("tail_lines must be a positive integer")
    folder = Path(context.run_folder) if context.run_folder else None
    path = folder / "logs" / f"{experiment_id(number_)}.log" if folder else None
    if path is None or not path.is_file():
        record = next((r for r in context.history if r.number == number_), None)
        why = f" (it was {record.status}: {record.reason})" if record and record.reason else ""
        raise ToolError(f"{experiment_id(number_)} has no training log{why}")
    text = path.read_text(errors="replace").splitlines()
    shown = text[-min(lines, 1000) :]
    return f"{path.name}: last {len(shown)} of {len(text)} lines\n" + "\n".join(shown)


def read_diff(context: ProposalContext, args: dict) -> str:
    number_ = experiment_number(context, args)
    record = next((r for r in context.history if r.number == number_), None)
    if record is None:
        raise ToolError(f"{experiment_id(number_)} is not in the ledger (still training, or interrupted)")
    if not record.diff:
        raise ToolError(f"{record.experiment} ({record.status}) changed nothing that was recorded")
    return f"{record.experiment} ({record.status}): {one_line(record.description)}\n{clip(record.diff, 400)}"


def read_curve(context: ProposalContext, args: dict) -> str:
    number_ = experiment_number(context, args)
    record = next((r for r in context.history if r.number == number_), None)
    if record is None:
        raise ToolError(f"{experiment_id(number_)} is not in the ledger (still training, or interrupted)")
    training = record.training or {}
    lines = [f"{record.experiment} ({record.status}): {one_line(record.description)}"]
    if record.reason:
        lines.append(f"reason: {record.reason}")
    for split, scores in record.scores.items():
        lines.append(f"{split} scores (mean over runs): " + ", ".join(f"{k} {v:.4f}" for k, v in scores.items()))
    runs = [t for t in record.trials if isinstance(t, dict)]
    for i, trial in enumerate(runs):
        score = "" if trial.get("selection") is None else f"selection {trial['selection']:.4f}, "
        kind = f"{trial['kind']}, " if trial.get("kind") else ""
        lines.append(
            f"run {i} ({kind}seed {trial.get('seed')}): {score}status {trial.get('status')}, "
            f"final loss {trial.get('final_loss')}, {trial.get('completed_steps')} steps"
        )
    facts = [f"{k} {training[k]:.4g}" for k in CURVE_FACTS if isinstance(training.get(k), int | float)]
    if facts:
        lines.append("first run: " + ", ".join(facts))
    points = training.get("points") or []
    if points:
        lines.append("step | epoch | loss | learning_rate | grad_norm")
        lines += [
            " | ".join(_cell(p.get(k)) for k in ("step", "epoch", "loss", "learning_rate", "grad_norm"))
            for p in points
        ]
    else:
        lines.append("no training curve was recorded (train.py did not use experiment.deadline_callback, or failed)")
    notes = (record.proposal or {}).get("notes")
    if notes:
        lines.append(f"your notes when you proposed it:\n{notes}")
    return "\n".join(lines)


def _cell(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "" if value is None else str(value)
