"""What the agent sees of the current best model: its predictions on a few fixed *training* rows.

Never selection or holdout rows: the preview shows the model's output format and typical mistakes without telling
the agent anything about the rows that decide. It is computed once per keep, in a short-lived evaluation process
(so no model or GPU context is held while experiments train), and kept in <run>/preview/exp-NNNN.json.
"""

from __future__ import annotations

import json
from pathlib import Path

from hf_autoresearch.data import TRAIN_FILE
from hf_autoresearch.evaluation import EvaluationError, Evaluator
from hf_autoresearch.ledger import ExperimentRecord, experiment_id

PREVIEW_ROWS = 5


def preview_path(folder: Path, number: int) -> Path:
    return Path(folder) / "preview" / f"{experiment_id(number)}.json"


def fixed_rows(splits: Path, n: int = PREVIEW_ROWS) -> list[dict]:
    """The first `n` training rows: the same rows for every experiment of the run."""
    rows = []
    with (Path(splits) / "train" / TRAIN_FILE).open() as f:
        for line in f:
            if line.strip():
                rows.append(json.loads(line))
            if len(rows) == n:
                break
    return rows


def make_preview(run, record: ExperimentRecord, log=print) -> list[dict]:
    """Predict the fixed rows with the kept model of `record`; [] (and a note) if that fails."""
    path = preview_path(run.folder, record.number)
    model_dir = run.model_dir(record.number)
    if not model_dir.is_dir():
        return []
    try:
        with Evaluator(run.eval_setup(), path.parent / f".{record.experiment}-eval", timeout=600) as evaluator:
            rows = evaluator.preview(model_dir, fixed_rows(run.splits))
    except (EvaluationError, OSError) as err:
        log(f"  no preview for the agent: {str(err).splitlines()[0]}")
        return []
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(rows, ensure_ascii=False, indent=1))
    return rows


def read_preview(folder: Path, number: int) -> list[dict]:
    try:
        return json.loads(preview_path(folder, number).read_text())
    except (OSError, json.JSONDecodeError):
        return []
