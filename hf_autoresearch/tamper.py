"""Tamper check: the harness and metric code are hashed when a run starts and checked before every evaluation.

An agent can only edit train.py through the harness, but a train.py runs arbitrary code as the user: if it (or
anything else) rewrites the code that scores it, the run must stop rather than trust the score. What is hashed is
what is executed: every .py file of the hf_autoresearch package (the evaluation process imports the package's
__init__, its errors, data and tasks; a file that appears in it could be imported too), the metric folder (which
`metrics.load_metric` imports from that very file), and any extra file or folder a run names (a custom task).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

from hf_autoresearch.errors import UserError

PACKAGE = Path(__file__).resolve().parent


class TamperError(UserError):
    """The evaluation or metric code changed during a run."""


def _python_files(path: Path) -> list[Path]:
    path = Path(path).resolve()
    if path.is_file():
        return [path]
    if path.is_dir():
        return sorted(p for p in path.rglob("*.py") if "__pycache__" not in p.parts)
    return []


def fingerprint(metric_dir: Path, extra: Iterable[Path] = ()) -> dict[str, str]:
    """sha256 of every .py file of the package, of the metric folder and of `extra` (files or folders), by path."""
    files = {p for source in (PACKAGE, metric_dir, *extra) for p in _python_files(source)}
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(files)}


def verify(expected: dict[str, str], metric_dir: Path, extra: Iterable[Path] = ()) -> None:
    """Raise TamperError naming every file that changed, appeared or vanished since `expected` was taken."""
    current = fingerprint(metric_dir, extra)
    changed = sorted(p for p in expected.keys() | current.keys() if expected.get(p) != current.get(p))
    if changed:
        raise TamperError(
            "the harness or evaluation code changed since the run started, so its scores cannot be trusted: "
            + ", ".join(changed)
            + ". Restore the files (e.g. `git checkout` them or reinstall hf-autoresearch) and --resume"
        )
