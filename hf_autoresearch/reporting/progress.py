"""Live progress of a run in the terminal: one line under the log saying where the run stands.

It is a loop callback (on_phase, on_record). Off a terminal (a pipe, a log file, CI) it draws nothing, so logs
stay plain text.
"""

from __future__ import annotations

import time
from contextlib import contextmanager

from rich.console import Console
from rich.live import Live
from rich.text import Text

from hf_autoresearch.formatting import clock
from hf_autoresearch.ledger import ExperimentRecord, experiment_id

PHASE_STYLE = {"agent": "magenta", "training": "cyan", "evaluation": "yellow"}


class LiveProgress:
    def __init__(self, console: Console | None = None, enabled: bool | None = None):
        self.console = console or Console()
        self.enabled = self.console.is_terminal if enabled is None else enabled
        self.number: int | None = None
        self.phase = ""
        self.phase_started = time.monotonic()
        self.run_started = time.monotonic()
        self.budget = 0.0
        self.metric = ""
        self.best: ExperimentRecord | None = None
        self.counts = {"done": 0, "keep": 0}
        self._live: Live | None = None
        self.slots = None  # the executor's slots(), when attached to a loop

    @contextmanager
    def attach(self, run):
        """Draw while the block runs (the loop); the line disappears when it ends."""
        self.budget = run.config.budget
        self.metric = run.recipe.metric.name
        records = run.ledger.records()
        self.best = run.ledger.best()
        self.counts = {"done": len(records), "keep": sum(r.status == "keep" for r in records)}
        run.callbacks.append(self)
        self.slots = getattr(getattr(run, "executor", None), "slots", None)  # several slots: a line for each
        if self.enabled:
            self._live = Live(console=self.console, get_renderable=self.render, refresh_per_second=2, transient=True)
            self._live.start()
        try:
            yield self
        finally:
            run.callbacks.remove(self)
            if self._live is not None:
                self._live.stop()
                self._live = None

    def on_phase(self, run, number: int, phase: str) -> None:
        self.number, self.phase, self.phase_started = number, phase, time.monotonic()
        self.budget = run.config.budget  # a resumed run may have changed it

    def on_record(self, run, record: ExperimentRecord) -> None:
        self.counts["done"] += 1
        if record.status == "keep":
            self.counts["keep"] += 1
            self.best = record
        self.phase = ""

    def render(self) -> Text:
        text = Text()
        if self.number is None:
            text.append("starting", style="dim")
        else:
            text.append(experiment_id(self.number), style="bold")
            text.append("  ")
            elapsed = time.monotonic() - self.phase_started
            text.append(self.phase or "recording", style=PHASE_STYLE.get(self.phase, "dim"))
            if self.phase == "training":
                text.append(f" {clock(elapsed)}, {clock(self.budget - elapsed)} of the budget left")
            elif self.phase:
                text.append(f" {clock(elapsed)}")
        if self.best is not None and self.best.selection is not None:
            text.append("  ·  best ", style="dim")
            text.append(f"{self.metric} {self.best.selection:.4f}", style="bold green")
            text.append(f" ({self.best.experiment})", style="dim")
        elapsed = clock(time.monotonic() - self.run_started)
        text.append(f"  ·  {self.counts['done']} done, {self.counts['keep']} kept, {elapsed} elapsed", style="dim")
        current = self.slots() if self.slots is not None else []
        if len(current) > 1:
            from hf_autoresearch.driver.slots import describe

            for slot in current:
                text.append("\n  " + describe(slot, self.budget), style="dim")
        return text
