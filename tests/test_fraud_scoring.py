"""The fraud-scoring recipe: the average-precision metric against scikit-learn, and a real CPU run."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from conftest import ROOT, SHARED, git
from sklearn.metrics import average_precision_score, roc_auc_score

from hf_autoresearch.cli import main
from hf_autoresearch.ledger import Ledger
from hf_autoresearch.metrics import load_metric, metric_path

LABELS = ["ham", "spam"]


def compute(references, spam_scores, **options):
    metric = load_metric(metric_path("average_precision"))
    scores = [[1 - s, s] for s in spam_scores]
    predictions = [int(s > 0.5) for s in spam_scores]
    return metric.compute(
        predictions=predictions,
        references=references,
        scores=scores,
        label_names=LABELS,
        positive_label=options.get("positive_label", "spam"),
    )


def test_values_match_scikit_learn_on_known_predictions():
    rng = np.random.default_rng(0)
    references = rng.integers(0, 2, 200).tolist()
    spam = np.clip(np.array(references) * 0.3 + rng.random(200) * 0.7, 0, 1).tolist()
    result = compute(references, spam)
    assert result["average_precision"] == pytest.approx(average_precision_score(references, spam))
    assert result["roc_auc"] == pytest.approx(roc_auc_score(references, spam))
    assert result["positive_rate"] == pytest.approx(np.mean(references))
    assert 0 < result["precision_at_90_recall"] <= 1 and 0 < result["best_f1"] <= 1


def test_perfect_scores_give_one_and_constant_scores_give_the_positive_rate():
    references = [0] * 87 + [1] * 13
    perfect = compute(references, [0.1] * 87 + [0.9] * 13)
    assert perfect["average_precision"] == 1.0 and perfect["roc_auc"] == 1.0 and perfect["best_f1"] == 1.0
    constant = compute(references, [0.5] * 100)
    assert constant["average_precision"] == pytest.approx(0.13) and constant["roc_auc"] == 0.5
    # the ham class ranked as positive: its AP is its own rate
    assert compute(references, [0.5] * 100, positive_label="ham")["average_precision"] == pytest.approx(0.87)
    with pytest.raises(ValueError, match="positive_label 'fraud' is not one of the labels"):
        compute(references, [0.5] * 100, positive_label="fraud")


@pytest.mark.slow
def test_a_real_cpu_run_of_the_recipe(offline_minilm, tmp_path):
    data = SHARED / "data" / "sms-spam"
    if not (data / "train.csv").is_file():
        pytest.skip(f"real data not found at {data}")
    repo = tmp_path / "project"
    shutil.copytree(ROOT / "recipes" / "fraud-scoring", repo / "recipes" / "fraud-scoring")
    git(tmp_path, "init", "-q", "-b", "main", str(repo))
    git(repo, "-c", "user.name=u", "-c", "user.email=u@x", "add", "-A")
    git(repo, "-c", "user.name=u", "-c", "user.email=u@x", "commit", "-q", "-m", "recipe")
    args = [
        "run",
        str(repo / "recipes" / "fraud-scoring"),
        "--tag",
        "spam",
        "--data",
        str(data),
        "--model",
        str(offline_minilm),
        "--budget",
        "25",
        "--grace",
        "90",
        "--max-experiments",
        "0",
        "--baseline-repeats",
        "1",
        "--run-dir",
        str(tmp_path / "runs"),
    ]
    assert main(args) == 0
    (base,) = Ledger(tmp_path / "runs" / "spam").records()
    assert base.status == "keep", base.reason
    holdout = base.scores["holdout"]
    assert holdout["positive_rate"] == pytest.approx(149 / 1114)  # the real test split's imbalance
    assert 0 <= holdout["average_precision"] <= 1 and base.holdout == holdout["average_precision"]
    assert set(holdout) >= {"roc_auc", "best_f1", "precision_at_90_recall", "accuracy"}
