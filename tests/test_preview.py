"""The best model's preview for the agent (driver/preview.py): made once per best, a failure remembered too."""

from __future__ import annotations

import json
from types import SimpleNamespace

from hf_autoresearch.driver import preview
from hf_autoresearch.evaluation import EvaluationError
from hf_autoresearch.ledger import ExperimentRecord


class CountingEvaluator:
    """Stands in for the evaluation process: counts the previews asked, answers with `answer` or raises it."""

    calls = 0
    answer: list | Exception = []

    def __init__(self, setup, folder, timeout):
        assert timeout == preview.PREVIEW_TIMEOUT

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def preview(self, model_dir, rows):
        CountingEvaluator.calls += 1
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


def _run(tmp_path):
    (tmp_path / "splits" / "train").mkdir(parents=True)
    rows = [{"text": f"row {i}", "label": "a"} for i in range(8)]
    (tmp_path / "splits" / "train" / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    for number in (3, 4):
        (tmp_path / "models" / str(number)).mkdir(parents=True)
    return SimpleNamespace(
        folder=tmp_path / "run",
        splits=tmp_path / "splits",
        model_dir=lambda number: tmp_path / "models" / str(number),
        eval_setup=lambda: None,
    )


def test_a_failed_preview_is_tried_again_only_when_the_best_changes(tmp_path, monkeypatch):
    monkeypatch.setattr(preview, "Evaluator", CountingEvaluator)
    monkeypatch.setattr(CountingEvaluator, "calls", 0)
    monkeypatch.setattr(CountingEvaluator, "answer", EvaluationError("the evaluation process died"))
    run, lines = _run(tmp_path), []
    best = ExperimentRecord(3, "keep", "x")
    assert preview.preview_for(run, best, lines.append) == []
    assert preview.preview_for(run, best, lines.append) == []  # remembered: no second evaluation
    assert CountingEvaluator.calls == 1 and len(lines) == 1 and "died" in lines[0]
    assert "died" in json.loads(preview.preview_path(run.folder, 3).read_text())["error"]
    # a new best: tried again, and an empty answer is remembered as well
    monkeypatch.setattr(CountingEvaluator, "answer", [])
    assert preview.preview_for(run, ExperimentRecord(4, "keep", "y"), lines.append) == []
    assert preview.preview_for(run, ExperimentRecord(4, "keep", "y"), lines.append) == []
    assert CountingEvaluator.calls == 2


def test_a_preview_is_made_once_from_the_first_training_rows(tmp_path, monkeypatch):
    monkeypatch.setattr(preview, "Evaluator", CountingEvaluator)
    monkeypatch.setattr(CountingEvaluator, "calls", 0)
    rows = [{"input": "row 0", "prediction": "a", "reference": "a"}]
    monkeypatch.setattr(CountingEvaluator, "answer", rows)
    run = _run(tmp_path)
    assert preview.fixed_rows(run.splits) == [{"text": f"row {i}", "label": "a"} for i in range(5)]
    best = ExperimentRecord(3, "keep", "x")
    assert preview.preview_for(run, best) == rows and preview.preview_for(run, best) == rows
    assert CountingEvaluator.calls == 1 and preview.read_preview(run.folder, 4) is None
