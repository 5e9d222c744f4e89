"""How numbers read in every table, report, card and log line: one place, so they read the same everywhere."""

from __future__ import annotations

DASH = "–"  # a missing value


def score(value: float | None, digits: int = 4, missing: str = DASH) -> str:
    """A metric value to `digits` places; `missing` when there is none."""
    return missing if value is None else f"{value:.{digits}f}"


def plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def clock(seconds: float) -> str:
    """m:ss, or h:mm:ss from an hour on."""
    seconds = max(0, int(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"
    return f"{seconds // 60}:{seconds % 60:02d}"
