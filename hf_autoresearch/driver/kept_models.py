"""Kept models live in <run>/models/exp-NNNN. A keep's model is staged beside its final place before the ledger row
is written, and renamed into place after.

A driver killed between the two loses nothing: `recover` (run on resume) installs the staged model of a keep the
ledger has and drops that of an experiment it lacks.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from pathlib import Path

from hf_autoresearch.ledger import experiment_id


def model_dir(run_folder: Path, number: int) -> Path:
    """Where experiment `number`'s kept model lives."""
    return Path(run_folder) / "models" / experiment_id(number)


def _staged_dir(run_folder: Path, number: int) -> Path:
    return model_dir(run_folder, number).with_name(f".{experiment_id(number)}.staged")


def stage(run_folder: Path, number: int, model: Path) -> None:
    """Move a finished model folder next to its final place (on the same file system, so install is a rename)."""
    staged = _staged_dir(run_folder, number)
    shutil.rmtree(staged, ignore_errors=True)
    staged.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(model), staged)


def install(run_folder: Path, number: int) -> None:
    """Rename the staged model into models/exp-NNNN, replacing a stale folder of an interrupted attempt."""
    final = model_dir(run_folder, number)
    if final.exists():
        shutil.rmtree(final)
    _staged_dir(run_folder, number).rename(final)


def recover(run_folder: Path, kept_numbers: Iterable[int]) -> None:
    """After a crash: install staged models of keeps the ledger has; drop those of experiments it lacks."""
    models = Path(run_folder) / "models"
    if not models.is_dir():
        return
    kept = set(kept_numbers)
    for staged in models.glob(".exp-*.staged"):
        number = int(staged.name[5:9])
        if number in kept:
            install(run_folder, number)
        else:
            shutil.rmtree(staged, ignore_errors=True)
