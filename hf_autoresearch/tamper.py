"""Tamper check: the evaluation and metric code are hashed when a run starts and checked before every evaluation.

An agent can only edit train.py through the harness, but a train.py runs arbitrary code as the user: if it (or
anything else) rewrites the code that scores it, the run must stop rather than trust the score.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from hf_autoresearch.errors import UserError

PACKAGE = Path(__file__).resolve().parent
# the harness code a score depends on: the evaluation process, the data it reads, and every task helper
EVALUATION_FILES = ("evaluation.py", "data.py", "tamper.py")
EVALUATION_DIRS = ("tasks",)


class TamperError(UserError):
    """The evaluation or metric code changed during a run."""


def _files(metric_dir: Path) -> list[Path]:
    files = [PACKAGE / name for name in EVALUATION_FILES if (PACKAGE / name).is_file()]
    for folder in (*(PACKAGE / d for d in EVALUATION_DIRS), Path(metric_dir)):
        if folder.is_dir():
            files += sorted(p for p in folder.rglob("*.py") if "__pycache__" not in p.parts)
    return files


def fingerprint(metric_dir: Path) -> dict[str, str]:
    """sha256 of every evaluation and metric source file, by path."""
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in _files(metric_dir)}


def verify(expected: dict[str, str], metric_dir: Path) -> None:
    """Raise TamperError naming every file that changed, appeared or vanished since `expected` was taken."""
    current = fingerprint(metric_dir)
    changed = sorted(p for p in expected.keys() | current.keys() if expected.get(p) != current.get(p))
    if changed:
        raise TamperError(
            "the evaluation code changed since the run started, so its scores cannot be trusted: "
            + ", ".join(changed)
            + ". Restore the files (e.g. `git checkout` them or reinstall hf-autoresearch) and --resume"
        )
