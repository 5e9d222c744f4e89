"""`hf-autoresearch status`: a run's experiments as a table, with the best against the baseline."""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from hf_autoresearch.ledger import Ledger

STATUS_STYLE = {"keep": "bold green", "discard": "dim", "crash": "red", "timeout": "yellow", "invalid": "magenta"}


def _fmt(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


def print_status(folder: Path, console: Console | None = None) -> None:
    console = console or Console(width=None if Console().is_terminal else 160)
    folder = Path(folder)
    config = json.loads((folder / "run.json").read_text())
    records = Ledger(folder).records()
    table = Table(title=f"run {config['tag']}  ({config['recipe_rel']}, branch {config['branch']})")
    for column in ("experiment", "status", "selection", "holdout", "train s", "total s", "commit"):
        numeric = column in ("selection", "holdout", "train s", "total s")
        table.add_column(column, justify="right" if numeric else "left", no_wrap=True)
    table.add_column("description", overflow="fold", ratio=1)
    for r in records:
        description = r.description if not r.reason else f"{r.description} ({r.reason.splitlines()[0][:70]})"
        table.add_row(
            r.experiment,
            f"[{STATUS_STYLE[r.status]}]{r.status}[/]",
            _fmt(r.selection),
            _fmt(r.holdout),
            f"{r.train_seconds:.0f}",
            f"{r.total_seconds:.0f}",
            r.commit[:8],
            escape(description),
        )
    console.print(table)
    kept = [r for r in records if r.status == "keep"]
    if kept:
        base, best = kept[0], kept[-1]
        line = f"best {best.experiment}: selection {_fmt(best.selection)} (baseline {_fmt(base.selection)})"
        if best.holdout is not None and base.holdout is not None:
            line += f", holdout {_fmt(best.holdout)} (baseline {_fmt(base.holdout)})"
        counts = {s: sum(r.status == s for r in records) for s in STATUS_STYLE}
        console.print(line + "  ·  " + ", ".join(f"{n} {s}" for s, n in counts.items() if n))
        noise = base.decision.get("noise")
        if noise and len(noise.get("scores", [])) > 1:
            threshold = max(config.get("min_delta", 0.0), config.get("noise_z", 2.0) * noise["std"])
            console.print(
                f"noise floor: {len(noise['scores'])} baseline runs, mean {noise['mean']:.4f}, std "
                f"{noise['std']:.4f}; a keep must gain more than {threshold:.4f}"
            )
        for message in holdout_gap(base, best):
            console.print(message)
    if any(r.agent_usage for r in records):
        console.print(agent_cost_line(records))
    from hf_autoresearch.baseline import comparison_lines

    for line in comparison_lines(folder, records):
        console.print(line)
    from hf_autoresearch.slots import lines as slot_lines

    for line in slot_lines(folder):  # a run in progress: what each slot is doing
        console.print(f"running: {escape(line)}")


def agent_cost_line(records) -> str:
    """The agent's API usage summed over the run: dollars, then tokens by kind."""
    total = {}
    for r in records:
        for key, value in r.agent_usage.items():
            if isinstance(value, int):
                total[key] = total.get(key, 0) + value
    return (
        f"agent cost ${sum(r.agent_cost for r in records):.4f}: {total.get('requests', 0)} requests, "
        f"{total.get('input_tokens', 0)} input, {total.get('output_tokens', 0)} output, "
        f"{total.get('cache_read_input_tokens', 0)} cache-read, {total.get('cache_creation_input_tokens', 0)} "
        "cache-write tokens"
    )


def holdout_gap(base, best) -> list[str]:
    """How much of the selection gain the holdout confirms; a warning when it did not improve at all.

    Choosing among many candidates on one split overfits that split: the holdout, never used to decide, shows how
    much of the gain is real.
    """
    if best is base or best.holdout is None or base.holdout is None:
        return []
    sign = 1 if best.decision.get("direction", "maximize") == "maximize" else -1
    selection_gain = sign * (best.selection - base.selection)
    holdout_gain = sign * (best.holdout - base.holdout)
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
