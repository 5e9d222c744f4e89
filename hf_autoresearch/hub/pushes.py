"""`<run>/hub.jsonl`: which experiment is on the Hub, as which commit. One line per pushed experiment.

ledger.jsonl stays append-only, written once an experiment ends, while a push may finish (or fail and be redone)
later; this file maps each experiment and git commit to its Hub commit. Promotions to main are lines of their own.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

HUB_FILE = "hub.jsonl"
_lock = threading.Lock()


def entries(folder: Path) -> list[dict]:
    """Every line of hub.jsonl, pushes and promotions."""
    path = Path(folder) / HUB_FILE
    if not path.is_file():
        return []
    found = []
    for line in path.read_text().splitlines():
        try:
            found.append(json.loads(line))
        except json.JSONDecodeError:  # a line torn by a crash mid-write: the push is redone, idempotently
            continue
    return found


def pushed(folder: Path, repo_id: str | None = None) -> dict[int, dict]:
    """Experiments already on the Hub, by number (the branch pushes; promotions to main are separate lines)."""
    return {
        e["number"]: e
        for e in entries(folder)
        if (repo_id is None or e.get("repo_id") == repo_id) and not e.get("promoted")
    }


def promotions(folder: Path, repo_id: str) -> list[dict]:
    return [e for e in entries(folder) if e.get("repo_id") == repo_id and e.get("promoted")]


def record_push(folder: Path, entry: dict) -> bool:
    """Append `entry` unless its push (or promotion of that Hub commit) is recorded already; True if written."""
    with _lock:
        if entry["promoted"]:
            seen = any(e["hub_commit"] == entry["hub_commit"] for e in promotions(folder, entry["repo_id"]))
        else:
            seen = entry["number"] in pushed(folder, entry["repo_id"])
        if seen:
            return False
        path = Path(folder) / HUB_FILE
        with path.open("a+b") as f:
            f.seek(0, os.SEEK_END)
            if f.tell():  # a torn last line must not swallow this one
                f.seek(-1, os.SEEK_END)
                if f.read(1) != b"\n":
                    f.write(b"\n")
            f.write((json.dumps(entry) + "\n").encode())
            f.flush()
            os.fsync(f.fileno())
        return True
