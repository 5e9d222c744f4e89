"""The frozen evaluation scores a saved classifier in its own process, on the split it is asked for."""

import json

import pytest
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from hf_autoresearch.data import write_jsonl
from hf_autoresearch.evaluation import EvalRequest, EvaluationError, EvaluationProcess
from hf_autoresearch.metrics import metric_path

LABELS = ["card_arrival", "exchange_rate"]


@pytest.fixture(scope="module")
def saved_classifier(tiny_bert, tmp_path_factory):
    out = tmp_path_factory.mktemp("clf")
    model = AutoModelForSequenceClassification.from_pretrained(
        tiny_bert, num_labels=2, id2label=dict(enumerate(LABELS)), label2id={n: i for i, n in enumerate(LABELS)}
    )
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(tiny_bert).save_pretrained(out)
    return out


def request(model_dir, tmp_path) -> EvalRequest:
    (tmp_path / "labels.json").write_text(json.dumps(LABELS))
    return EvalRequest(
        task="classification",
        model_dir=str(model_dir),
        labels_file=str(tmp_path / "labels.json"),
        metric_path=str(metric_path("classification")),
        text_column="text",
        label_column="label",
    )


def test_scores_each_split_with_one_model_load(saved_classifier, tmp_path):
    rows = [{"text": f"where is my card {i}", "label": LABELS[i % 2]} for i in range(30)]
    write_jsonl(rows[:10], tmp_path / "selection.jsonl")
    write_jsonl(rows, tmp_path / "holdout.jsonl")
    with EvaluationProcess(request(saved_classifier, tmp_path), tmp_path / "eval") as evaluation:
        selection = evaluation.score(tmp_path / "selection.jsonl")
        holdout = evaluation.score(tmp_path / "holdout.jsonl")
    assert selection["num_rows"] == 10 and holdout["num_rows"] == 30
    for result in (selection, holdout):
        assert set(result["scores"]) == {"accuracy", "macro_f1"}
        assert 0 <= result["scores"]["accuracy"] <= 1
    # an untrained head predicts one class for near-identical texts: accuracy is the share of that class
    assert holdout["scores"]["accuracy"] == pytest.approx(0.5, abs=0.2)


def test_missing_model_is_a_clear_error(tmp_path):
    write_jsonl([{"text": "a", "label": LABELS[0]}], tmp_path / "selection.jsonl")
    with EvaluationProcess(request(tmp_path / "empty", tmp_path), tmp_path / "eval") as evaluation:
        with pytest.raises(EvaluationError, match="no saved model"):
            evaluation.score(tmp_path / "selection.jsonl")


def test_metric_module_loads_offline():
    import evaluate

    metric = evaluate.load(str(metric_path("classification")))
    assert metric.compute(predictions=[0, 1, 1, 2], references=[0, 1, 2, 2]) == {
        "accuracy": 0.75,
        "macro_f1": pytest.approx((1 + 2 / 3 + 2 / 3) / 3),
    }
