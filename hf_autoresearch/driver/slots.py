"""What each slot runs now, for `status` and the live progress: the loop writes <run>/slots.json as trials start and
end; readers show it while the process that wrote it is alive.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from hf_autoresearch.formatting import clock
from hf_autoresearch.ledger import atomic_write, experiment_id

SLOTS_FILE = "slots.json"


def write(folder: Path, slots: list[dict], budget: float) -> None:
    atomic_write(Path(folder) / SLOTS_FILE, json.dumps({"pid": os.getpid(), "budget": budget, "slots": slots}))


def clear(folder: Path) -> None:
    (Path(folder) / SLOTS_FILE).unlink(missing_ok=True)


def read(folder: Path) -> tuple[list[dict], float] | None:
    """(slots, budget) of a live run, else None (no file, or its writer is gone)."""
    try:
        data = json.loads((Path(folder) / SLOTS_FILE).read_text())
        os.kill(int(data["pid"]), 0)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return data["slots"], float(data.get("budget") or 0.0)


def describe(slot: dict, budget: float, now: float | None = None) -> str:
    """One line: `local-1  exp-0007 run 2 (confirmation)  training 0:41, 0:19 left`, or `local-1  idle`."""
    if "experiment" not in slot:
        return f"{slot['slot']}  idle"
    elapsed = (now or time.time()) - slot.get("started", 0.0)
    what = f"{experiment_id(slot['experiment'])} run {slot.get('run', 0) + 1} ({slot.get('kind', '')})"
    phase = slot.get("phase", "running")
    timing = f"{clock(elapsed)}, {clock(budget - elapsed)} left" if phase == "training" else clock(elapsed)
    return f"{slot['slot']}  {what}  {phase} {timing}"


def lines(folder: Path) -> list[str]:
    """The slots of a live run, one line each; [] when the run is not running."""
    found = read(folder)
    if found is None:
        return []
    slots, budget = found
    return [describe(s, budget) for s in slots]
