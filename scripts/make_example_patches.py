"""Regenerate recipes/intent-categorization/examples/*.patch from the recipe's current train.py.

The replay agent's example patches are unified diffs of train.py; after train.py changes, run
`python scripts/make_example_patches.py` so they apply cleanly again (same subjects, same edits).
"""

from __future__ import annotations

import difflib
import sys
from pathlib import Path

RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "intent-categorization"

# (file name, subject, body, [(old, new), ...]); each `old` must occur exactly once in train.py
PATCHES = [
    (
        "0001-no-warmup-higher-lr.patch",
        "Drop warmup and raise the learning rate to 3e-4",
        "A short budget never finishes a warmup planned over 3 epochs; train at a useful rate from step one.",
        [("LEARNING_RATE = 5e-5 ", "LEARNING_RATE = 3e-4 "), ("WARMUP = 0.1 ", "WARMUP = 0.0 ")],
    ),
    (
        "0002-smaller-batches.patch",
        "Halve the batch size to 16 for twice the optimizer steps",
        "On CPU a step costs roughly in proportion to the batch, so smaller batches mean more updates per second.",
        [("BATCH_SIZE = 32 ", "BATCH_SIZE = 16 ")],
    ),
    (
        "0003-stronger-weight-decay.patch",
        "Raise weight decay to 0.1",
        "More regularisation; with a few hundred steps it should matter little, so expect a discard.",
        [("WEIGHT_DECAY = 0.01 ", "WEIGHT_DECAY = 0.1 ")],
    ),
]


def make_patch(before: str, subject: str, body: str, replacements: list[tuple[str, str]]) -> str:
    after = before
    for old, new in replacements:
        if after.count(old) != 1:
            sys.exit(f"error: {old!r} occurs {after.count(old)} times in train.py; update PATCHES in {__file__}")
        after = after.replace(old, new)
    diff = "".join(difflib.unified_diff(before.splitlines(True), after.splitlines(True), "a/train.py", "b/train.py"))
    return f"Subject: [PATCH] {subject}\n\n{body}\n---\ndiff --git a/train.py b/train.py\n{diff}"


def main() -> None:
    before = (RECIPE / "train.py").read_text()
    for name, subject, body, replacements in PATCHES:
        path = RECIPE / "examples" / name
        path.write_text(make_patch(before, subject, body, replacements))
        print(f"wrote {path.relative_to(RECIPE.parents[1])}")


if __name__ == "__main__":
    main()
