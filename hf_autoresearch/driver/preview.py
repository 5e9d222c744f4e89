"""What the agent sees of the current best model: its predictions on a few fixed *training* rows.

Never selection or holdout rows: the preview shows the model's output format and typical mistakes without telling
the agent anything about the rows that decide. It is computed once per keep, in a short-lived evaluation process
(so no model or GPU context is held while experiments train), and kept in <run>/preview/exp-NNNN.json. A preview
that failed or came out empty is kept too (`{"error": ...}` or `[]`), so it is tried again only when the best
changes, not on every proposal (each try may take up to PREVIEW_TIMEOUT seconds).
"""

from __future__ import annotations

import json
from pathlib import Path

from hf_autoresearch.data import TRAIN_FILE
from hf_autoresearch.evaluation import EvaluationError, Evaluator
from hf_autoresearch.ledger import ExperimentRecord, experiment_id

PREVIEW_ROWS = 5
PREVIEW_TIMEOUT = 600  # seconds for one preview's evaluation process


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


def preview_for(run, record: ExperimentRecord, log=print) -> list[dict]:
    """The preview of the best experiment `record`: made once (made_preview), then read back, failure included."""
    known = read_preview(run.folder, record.number)
    return make_preview(run, record, log) if known is None else known


def make_preview(run, record: ExperimentRecord, log=print) -> list[dict]:
    """Predict the fixed rows with the kept model of `record`; [] (and a note) if that fails, remembered either way."""
    path = preview_path(run.folder, record.number)
    model_dir = run.model_dir(record.number)
    rows: list[dict] = []
    saved: list[dict] | dict = rows
    if not model_dir.is_dir():
        saved = {"error": f"no kept model at {model_dir}"}
    else:
        try:
            with Evaluator(
                run.eval_setup(), path.parent / f".{record.experiment}-eval", timeout=PREVIEW_TIMEOUT
            ) as evaluator:
                rows = saved = evaluator.preview(model_dir, fixed_rows(run.splits))
        except (EvaluationError, OSError) as err:
            log(f"  no preview for the agent: {str(err).splitlines()[0]} (tried again when the best changes)")
            saved = {"error": str(err)[-2000:]}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(saved, ensure_ascii=False, indent=1))
    return rows


def read_preview(folder: Path, number: int) -> list[dict] | None:
    """The saved preview of experiment `number`: its rows ([] when it failed or was empty), None if never made."""
    try:
        saved = json.loads(preview_path(folder, number).read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return saved if isinstance(saved, list) else []
