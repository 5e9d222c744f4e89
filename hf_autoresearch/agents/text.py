"""Small text helpers for what the agent reads: one line, clipped, the end of a note, a number or nothing."""

from __future__ import annotations

PREVIEW_CHARS = 300  # of each value in the best model's preview


def number(value, fmt: str) -> str:
    return fmt.format(value) if isinstance(value, int | float) and not isinstance(value, bool) else ""


def one_line(text: str) -> str:
    return " ".join(str(text).split())


def clip_chars(text: str, chars: int) -> str:
    return text if len(text) <= chars else text[: chars - 3] + "..."


def ending(text: str, chars: int) -> str:
    """The last `chars` characters of `text` on one line (a note's conclusion is at its end)."""
    text = one_line(text)
    return text if len(text) <= chars else "..." + text[-(chars - 3) :]


def short(value) -> str:
    text = one_line("" if value is None else value)
    return text if len(text) <= PREVIEW_CHARS else text[: PREVIEW_CHARS - 3] + "..."


def tail(text: str, lines: int) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


def clip(text: str, lines: int) -> str:
    kept = text.rstrip().splitlines()
    if len(kept) <= lines:
        return "\n".join(kept)
    return "\n".join(kept[:lines]) + f"\n... ({len(kept) - lines} more lines)"
