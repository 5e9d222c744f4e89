"""The helper train.py imports: budget, seed, data, output dir, deadline callback (which also records the training
curve) and the summary block.

Under the harness every value comes from the AUTORESEARCH_* environment. Run by hand (`accelerate launch
train.py`), the same script falls back to the recipe's defaults so one experiment can be tried without the loop.
"""

from __future__ import annotations

import json
import os
import random
import time
from pathlib import Path

from hf_autoresearch.data import LABELS_FILE, LOCAL_FORMATS

_IMPORTED = time.time()


def time_budget() -> float:
    """Seconds of training this experiment may use (AUTORESEARCH_TIME_BUDGET, default 300)."""
    return float(os.environ.get("AUTORESEARCH_TIME_BUDGET", "300"))


def deadline() -> float:
    """The Unix time training must be done by. The harness sets AUTORESEARCH_DEADLINE when it launches the process,
    so imports and start-up count; run by hand, the budget counts from the moment this module was imported."""
    value = os.environ.get("AUTORESEARCH_DEADLINE")
    return float(value) if value else _IMPORTED + time_budget()


def time_left() -> float:
    """Seconds until the deadline (negative once it has passed)."""
    return deadline() - time.time()


def seed() -> int:
    return int(os.environ.get("AUTORESEARCH_SEED", "0"))


def seed_everything(value: int | None = None) -> int:
    """Seed python, numpy and torch (CPU and CUDA) from AUTORESEARCH_SEED; returns the seed used."""
    import numpy as np
    import torch

    value = seed() if value is None else value
    random.seed(value)
    np.random.seed(value)
    torch.manual_seed(value)
    return value


def model_name(default: str) -> str:
    return os.environ.get("AUTORESEARCH_MODEL", default)


def output_dir() -> Path:
    path = Path(os.environ.get("AUTORESEARCH_OUTPUT_DIR", "output"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def data_dir(recipe_dir: Path | None = None) -> Path:
    """The folder holding the training data. Standalone, the recipe's train split is prepared in ./data."""
    if "AUTORESEARCH_DATA_DIR" in os.environ:
        return Path(os.environ["AUTORESEARCH_DATA_DIR"])
    if recipe_dir is None:
        raise RuntimeError("AUTORESEARCH_DATA_DIR is not set; point it at a folder with train.jsonl (or train.csv)")
    return _prepare_standalone(Path(recipe_dir))


def _prepare_standalone(recipe_dir: Path) -> Path:
    """Carve the same train split the harness would, so a hand run never trains on selection or holdout rows."""
    from hf_autoresearch.data import write_splits
    from hf_autoresearch.recipe import load_recipe
    from hf_autoresearch.tasks import prepare_splits

    recipe = load_recipe(recipe_dir)
    folder = Path("data")
    if not (folder / "train").exists():
        write_splits(prepare_splits(recipe.task, recipe.data.source, recipe.data), folder)
    return folder / "train"


def load_train_rows(folder: Path) -> list[dict]:
    """The training rows in `folder` (train.jsonl, train.csv or train.parquet), as a list of dicts."""
    import datasets

    for file in sorted(Path(folder).glob("train.*")):
        if file.suffix in LOCAL_FORMATS:
            return datasets.load_dataset(LOCAL_FORMATS[file.suffix], data_files=str(file), split="train").to_list()
    raise FileNotFoundError(f"{folder}: no train.jsonl, train.csv or train.parquet")


def load_labels(folder: Path, rows: list[dict], label_column: str = "label") -> list[str]:
    """The label names: labels.json from the harness, else the sorted labels seen in the training rows."""
    file = Path(folder) / LABELS_FILE
    if file.is_file():
        return json.loads(file.read_text())
    return sorted({str(row[label_column]) for row in rows})


CURVE_FILE = "curve.json"  # written beside the model by the callback; the harness reads it, train.py need not
CURVE_POINTS = 200  # logged points kept in curve.json (evenly spaced, the last one always)


def deadline_callback(reserve_seconds: float = 10.0):
    """A transformers TrainerCallback that stops training when fewer than `reserve_seconds` of budget are left.

    It also records what a researcher reads after a run, into `output_dir()/curve.json` when training ends (on the
    main process only): the logged loss curve and learning rate, planned and completed steps and epochs, samples a
    second, and the seconds from launch to the first step. Recipes need no code for it.
    """
    from transformers import TrainerCallback

    class Deadline(TrainerCallback):
        def __init__(self):
            self.first_step_at: float | None = None
            self.last_step_at: float | None = None

        def on_step_end(self, args, state, control, **kwargs):
            now = time.time()
            if self.first_step_at is None:
                self.first_step_at = now
            self.last_step_at = now
            if time_left() < reserve_seconds:
                control.should_training_stop = True
            return control

        def on_train_end(self, args, state, control, **kwargs):
            if state.is_world_process_zero:
                curve = training_curve(args, state, self.first_step_at, self.last_step_at)
                (output_dir() / CURVE_FILE).write_text(json.dumps(curve, indent=1))
            return control

    return Deadline()


def launched_at() -> float:
    """When the harness launched train.py (the deadline minus the budget); run by hand, when this was imported."""
    value = os.environ.get("AUTORESEARCH_DEADLINE")
    return float(value) - time_budget() if value else _IMPORTED


def training_curve(args, state, first_step_at: float | None, last_step_at: float | None) -> dict:
    """The Trainer's log history and schedule as one JSON-able dict (see deadline_callback)."""
    points = [
        {k: entry[k] for k in ("step", "epoch", "loss", "learning_rate", "grad_norm") if k in entry}
        for entry in state.log_history
        if "loss" in entry
    ]
    if len(points) > CURVE_POINTS:  # evenly spaced, keeping the last
        stride = len(points) / CURVE_POINTS
        points = [points[int(i * stride)] for i in range(CURVE_POINTS - 1)] + [points[-1]]
    samples_per_step = args.per_device_train_batch_size * args.gradient_accumulation_steps * args.world_size
    steps = state.global_step
    seconds = (last_step_at - first_step_at) if first_step_at and last_step_at else 0.0
    learning_rates = [p["learning_rate"] for p in points if "learning_rate" in p]
    return {
        "planned_steps": state.max_steps,
        "completed_steps": steps,
        "planned_epochs": args.num_train_epochs,
        "epochs": state.epoch or 0.0,
        "final_loss": points[-1]["loss"] if points else None,
        "learning_rate": learning_rates[-1] if learning_rates else None,
        "samples_per_step": samples_per_step,
        # the first step is left out: it carries compilation and warm-up
        "samples_per_second": samples_per_step * (steps - 1) / seconds if steps > 1 and seconds > 0 else None,
        "first_step_seconds": first_step_at - launched_at() if first_step_at else None,
        "train_end_at": last_step_at,
        "points": points,
    }


def write_summary(summary: dict, out: Path | None = None) -> None:
    """Print the autoresearch-style summary block and write the same values to summary.json."""
    out = output_dir() if out is None else out
    print("---")
    for key, value in summary.items():
        print(f"{key + ':':<20} {value:.6g}" if isinstance(value, float) else f"{key + ':':<20} {value}")
    (Path(out) / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
