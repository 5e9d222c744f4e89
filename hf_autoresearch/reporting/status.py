"""`hf-autoresearch status`: a run's experiments as a table, then its summary (summary.RunSummary) as lines."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from hf_autoresearch.formatting import score
from hf_autoresearch.ledger import ExperimentRecord
from hf_autoresearch.reporting.summary import SPLITS, RunSummary, format_params, signed_gain

STATUS_STYLE = {"keep": "bold green", "discard": "dim", "crash": "red", "timeout": "yellow", "invalid": "magenta"}


def print_status(folder: Path, console: Console | None = None) -> None:
    console = console or Console(width=None if Console().is_terminal else 160)
    summary = RunSummary.load(folder)
    config = summary.config
    table = Table(title=f"run {summary.tag}  ({config.recipe_rel}, branch {config.branch})")
    for column in ("experiment", "status", "selection", "holdout", "train s", "total s", "commit"):
        numeric = column in ("selection", "holdout", "train s", "total s")
        table.add_column(column, justify="right" if numeric else "left", no_wrap=True)
    table.add_column("description", overflow="fold", ratio=1)
    for r in summary.records:
        description = r.description if not r.reason else f"{r.description} ({r.reason.splitlines()[0][:70]})"
        table.add_row(
            r.experiment,
            f"[{STATUS_STYLE[r.status]}]{r.status}[/]",
            score(r.selection, missing=""),
            score(r.holdout, missing=""),
            f"{r.train_seconds:.0f}",
            f"{r.total_seconds:.0f}",
            r.commit[:8],
            escape(description),
        )
    console.print(table)
    for line in summary_lines(summary):
        console.print(line)
    from hf_autoresearch.driver.slots import lines as slot_lines

    for line in slot_lines(folder):  # a run in progress: what each slot is doing
        console.print(f"running: {escape(line)}")


def summary_lines(summary: RunSummary) -> list[str]:
    """What `status` prints under the table (rich markup)."""
    lines = []
    base, best = summary.baseline, summary.best
    if best is not None:
        line = f"best {best.experiment}: selection {score(best.selection)} (baseline {score(base.selection)})"
        if best.holdout is not None and base.holdout is not None:
            line += (
                f", holdout {score(best.holdout)} ({summary.holdout_label(best)}; baseline {score(base.holdout)}, "
                f"{summary.holdout_label(base)})"
            )
        counts = ", ".join(f"{n} {s}" for s, n in summary.counts.items() if n)
        rate = summary.experiments_per_hour
        line += f"  ·  {len(summary.experiments)} experiments after the baseline" + (f": {counts}" if counts else "")
        if rate is not None:
            line += f"; {rate:.1f} experiments an hour"
        lines.append(line)
        if summary.noise is not None:
            noise = summary.noise
            lines.append(
                f"noise floor: {len(noise.scores)} baseline runs, mean {noise.mean:.4f}, std {noise.std:.4f}; "
                + summary.rule_line()
            )
        lines += holdout_gap(base, best, summary.direction)
    if summary.agent_cost is not None:
        lines.append(agent_cost_line(summary))
        lines += cache_lines(summary)
    from hf_autoresearch.classical import status_lines

    return lines + comparison_lines(summary) + status_lines(summary.folder, summary.best)


def agent_cost_line(summary: RunSummary) -> str:
    """The agent's API usage summed over the run: dollars, dollars an experiment, cache hit rate, tokens by kind."""
    from hf_autoresearch.agents.pricing import usage_line

    return usage_line(summary.records)


def cache_lines(summary: RunSummary) -> list[str]:
    """A line when the claude agent's prompt caching did not work (a prefix below the model's minimum)."""
    from hf_autoresearch.agents.pricing import cache_line

    line = cache_line(summary.records)
    return [line] if line else []


def holdout_gap(base: ExperimentRecord, best: ExperimentRecord, direction: str | None = None) -> list[str]:
    """How much of the selection gain the holdout confirms; a warning when it did not improve at all.

    Choosing among many candidates on one split overfits that split: the holdout, never used to decide, shows how
    much of the gain is real.
    """
    if best is base or best.holdout is None or base.holdout is None:
        return []
    direction = direction or best.decision.get("direction", "maximize")
    selection_gain = signed_gain(best.selection, base.selection, direction)
    holdout_gain = signed_gain(best.holdout, base.holdout, direction)
    lines = [
        f"selection gain {selection_gain:+.4f}, holdout gain {holdout_gain:+.4f}: gap "
        f"{selection_gain - holdout_gain:+.4f} (the part of the gain that may be overfitting to the selection split)"
    ]
    if selection_gain > 0 and holdout_gain <= 0:
        lines.append(
            "[bold yellow]warning:[/] the selection score improved but the holdout did not; the kept changes "
            "may be fitting the selection split rather than the task"
        )
    return lines


def comparison_lines(summary: RunSummary) -> list[str]:
    """The larger baseline, and the run's best against it (with both parameter counts); [] when none was run."""
    larger = summary.larger
    if larger is None:
        return []
    how = f"trained {larger.train_seconds:.0f} s" if larger.trained else "not trained"
    head = f"larger baseline {Path(larger.model).name} ({format_params(larger.num_params)} params, {how}): "
    if not larger.ok:
        return [head + f"{larger.status} ({larger.reason.splitlines()[0] if larger.reason else ''})"]
    lines = [head + f"selection {score(larger.selection)}, holdout {score(larger.holdout)}"]
    best = summary.best
    if best is not None:
        parts = []
        for split in SPLITS:
            mine, theirs = getattr(best, split), getattr(larger, split)
            if mine is None or theirs is None:
                parts.append(f"{split} {score(mine)}")
                continue
            gain = summary.vs_larger(split)
            rel = "n/a" if gain is None else f"{gain:+.1%}"
            parts.append(f"{split} {score(mine)} ({mine - theirs:+.4f}, {rel} vs larger)")
        seconds = best.summary.get("training_seconds") or best.train_seconds
        lines.append(
            f"best {best.experiment} ({format_params(summary.params)} params, trained {seconds:.0f} s): "
            + ", ".join(parts)
        )
    return lines
