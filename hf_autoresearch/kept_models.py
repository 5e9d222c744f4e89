"""A kept experiment's model folder: staged beside models/exp-NNNN before the ledger row, renamed into place after.

A driver killed between the two loses nothing: `recover` (run on resume) installs the staged model of a keep the
ledger has and drops that of an experiment it lacks.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from hf_autoresearch.campaign import Campaign
from hf_autoresearch.ledger import experiment_id


def _staged_dir(campaign: Campaign, number: int) -> Path:
    return campaign.model_dir(number).with_name(f".{experiment_id(number)}.staged")


def stage(campaign: Campaign, number: int, model: Path) -> None:
    """Move a finished model folder next to its final place (on the same file system, so install is a rename)."""
    staged = _staged_dir(campaign, number)
    shutil.rmtree(staged, ignore_errors=True)
    staged.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(model), staged)


def install(campaign: Campaign, number: int) -> None:
    """Rename the staged model into models/exp-NNNN, replacing a stale folder of an interrupted attempt."""
    final = campaign.model_dir(number)
    if final.exists():
        shutil.rmtree(final)
    _staged_dir(campaign, number).rename(final)


def recover(campaign: Campaign) -> None:
    """After a crash: install staged models of keeps the ledger has; drop those of experiments it lacks."""
    models = campaign.folder / "models"
    if not models.is_dir():
        return
    kept = {r.number for r in campaign.ledger.records() if r.status == "keep"}
    for staged in models.glob(".exp-*.staged"):
        number = int(staged.name[5:9])
        if number in kept:
            install(campaign, number)
        else:
            shutil.rmtree(staged, ignore_errors=True)
