"""`hf-autoresearch status`: a run's experiments as a table, with the best against the baseline."""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console
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
    for column in ("experiment", "status", "selection", "holdout", "train s", "total s", "commit", "description"):
        table.add_column(
            column, justify="right" if column in ("selection", "holdout", "train s", "total s") else "left"
        )
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
            description,
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
