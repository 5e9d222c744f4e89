"""The frozen evaluation: a warm process scores each saved model in turn, loading each one fresh."""

import json

import pytest
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from hf_autoresearch.data import write_jsonl
from hf_autoresearch.evaluation import EvalSetup, EvaluationError, Evaluator
from hf_autoresearch.metrics import load_metric, metric_path

LABELS = ["card_arrival", "exchange_rate"]


def save_classifier(tiny_bert, out, id2label):
    model = AutoModelForSequenceClassification.from_pretrained(
        tiny_bert, num_labels=len(id2label), id2label=id2label, label2id={n: i for i, n in id2label.items()}
    )
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(tiny_bert).save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def saved_classifier(tiny_bert, tmp_path_factory):
    return save_classifier(tiny_bert, tmp_path_factory.mktemp("clf"), dict(enumerate(LABELS)))


def setup(tmp_path) -> EvalSetup:
    (tmp_path / "train").mkdir(exist_ok=True)
    (tmp_path / "train" / "labels.json").write_text(json.dumps(LABELS))
    return EvalSetup(task="classification", splits_dir=str(tmp_path), metric_path=str(metric_path("classification")))


def loads(evaluator: Evaluator) -> list[str]:
    return [line for line in evaluator.log_path.read_text().splitlines() if line.startswith("[evaluation] loaded")]


def test_one_warm_process_scores_several_models_each_loaded_once(saved_classifier, tiny_bert, tmp_path):
    rows = [{"text": f"where is my card {i}", "label": LABELS[i % 2]} for i in range(30)]
    write_jsonl(rows[:10], tmp_path / "selection.jsonl")
    write_jsonl(rows, tmp_path / "holdout.jsonl")
    other = save_classifier(tiny_bert, tmp_path / "other", {1: LABELS[0], 0: LABELS[1]})  # ids swapped
    with Evaluator(setup(tmp_path), tmp_path / "eval") as evaluator:
        selection = evaluator.score(saved_classifier, tmp_path / "selection.jsonl", tmp_path / "samples.jsonl")
        holdout = evaluator.score(saved_classifier, tmp_path / "holdout.jsonl")
        pid = evaluator.proc.pid
        swapped = evaluator.score(other, tmp_path / "holdout.jsonl")
        assert evaluator.proc.pid == pid  # the same process: torch and the metric were imported once
        assert loads(evaluator) == [f"[evaluation] loaded {saved_classifier}", f"[evaluation] loaded {other}"]
    assert selection["num_rows"] == 10 and holdout["num_rows"] == 30
    for result in (selection, holdout, swapped):
        assert set(result["scores"]) == {"accuracy", "macro_f1"}
    # the swapped model's ids are read through its own id2label: its predictions map to our label names
    assert 0 <= swapped["scores"]["accuracy"] <= 1
    samples = [json.loads(line) for line in (tmp_path / "samples.jsonl").read_text().splitlines()]
    assert len(samples) == 10 and samples[0]["reference"] in LABELS and samples[0]["prediction"] in LABELS


def test_a_dead_process_is_restarted(saved_classifier, tmp_path):
    write_jsonl([{"text": "a", "label": LABELS[0]}], tmp_path / "selection.jsonl")
    with Evaluator(setup(tmp_path), tmp_path / "eval") as evaluator:
        evaluator.score(saved_classifier, tmp_path / "selection.jsonl")
        evaluator.proc.kill()
        evaluator.proc.wait()
        assert evaluator.score(saved_classifier, tmp_path / "selection.jsonl")["num_rows"] == 1
        assert len(loads(evaluator)) == 2


def test_missing_model_and_foreign_labels_are_clear_errors(tiny_bert, tmp_path):
    write_jsonl([{"text": "a", "label": LABELS[0]}], tmp_path / "selection.jsonl")
    foreign = save_classifier(tiny_bert, tmp_path / "foreign", {0: "LABEL_0", 1: "LABEL_1"})
    with Evaluator(setup(tmp_path), tmp_path / "eval") as evaluator:
        with pytest.raises(EvaluationError, match="no saved model"):
            evaluator.score(tmp_path / "empty", tmp_path / "selection.jsonl")
        # a head saved without our label names would score a silent 0: it is an error with the reason
        with pytest.raises(EvaluationError, match="id2label .* lacks 2 of the 2 labels"):
            evaluator.score(foreign, tmp_path / "selection.jsonl")


def test_metric_module_loads_offline():
    metric = load_metric(metric_path("classification"))
    assert metric.compute(predictions=[0, 1, 1, 2], references=[0, 1, 2, 2]) == {
        "accuracy": 0.75,
        "macro_f1": pytest.approx((1 + 2 / 3 + 2 / 3) / 3),
    }
