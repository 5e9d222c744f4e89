"""Why a training crashed, in one line: the exception train.py raised, found in its log.

`accelerate launch` turns any failure into exit status 1 and prints its own traceback (a CalledProcessError, or
torchrun's ChildFailedError) after the child's, so the last traceback of the log is the launcher's. The cause is
the last traceback whose frames are not the launcher's.
"""

from __future__ import annotations

import re
from pathlib import Path

LOG_BYTES = 200_000  # how much of the end of the log is searched
MAX_REASON_CHARS = 300
TRACEBACK = "Traceback (most recent call last):"
LAUNCHER_FRAMES = ("accelerate/commands/", "torch/distributed/run.py", "torch/distributed/elastic/")
_PREFIX = re.compile(r"^\[(?:rank|default)?\d+\]:\s?")  # torchrun's per-rank line prefix
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_KILLED = re.compile(r"died with <Signals\.(\w+)")


def _tracebacks(lines: list[str]) -> list[tuple[list[str], str]]:
    """(frame lines, exception line) of every traceback in `lines`, in order."""
    found = []
    for i, line in enumerate(lines):
        if line.strip() != TRACEBACK:
            continue
        frames = []
        for following in lines[i + 1 :]:
            if following[:1] in (" ", "\t"):
                frames.append(following)
            elif following.strip():
                found.append((frames, following.strip()))
                break
    return found


def exception_line(log: str) -> str | None:
    """The exception line ("KeyError: 'text'") of the last traceback in `log` raised by train.py, not a launcher."""
    lines = [_PREFIX.sub("", _ANSI.sub("", line)) for line in log.replace("\r", "\n").splitlines()]
    for frames, exception in reversed(_tracebacks(lines)):
        if not any(marker in frame for frame in frames for marker in LAUNCHER_FRAMES):
            return exception[:MAX_REASON_CHARS]
    return None


def crash_reason(log_path: Path, returncode: int | None) -> str:
    """One line for the terminal and the ledger: the exception, else how the process ended."""
    log = ""
    if Path(log_path).is_file():
        with open(log_path, "rb") as f:
            f.seek(max(0, f.seek(0, 2) - LOG_BYTES))
            log = f.read().decode(errors="replace")
    exception = exception_line(log)
    if exception:
        return exception
    killed = _KILLED.search(log)
    if killed or (returncode is not None and returncode < 0):
        name = killed.group(1) if killed else f"signal {-returncode}"
        hint = " (out of memory?)" if name == "SIGKILL" else ""
        return f"train.py was killed by {name}{hint}"
    return f"train.py exited with status {returncode}"
