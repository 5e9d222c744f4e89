"""Grouped splits (data.group_column) on real PriceRunner rows, and the classical TF-IDF + logistic regression line."""

from __future__ import annotations

import pytest
from conftest import SHARED, read_csv, write_csv

from hf_autoresearch.classical import tfidf_logistic
from hf_autoresearch.contamination import find_contamination
from hf_autoresearch.evaluation import compute_metric
from hf_autoresearch.metrics import load_metric
from hf_autoresearch.recipe import DataConfig
from hf_autoresearch.tasks import prepare_splits

PRICERUNNER = SHARED / "data" / "product-categories" / "pricerunner" / "pricerunner_aggregate.csv"


@pytest.fixture(scope="module")
def pricerunner_slice(tmp_path_factory):
    """Every 4th product of PriceRunner (all its offers), as one csv file: ~8,800 rows, ~3,200 products."""
    if not PRICERUNNER.is_file():
        pytest.skip(f"real data not found at {PRICERUNNER}")
    rows = [r for r in read_csv(PRICERUNNER) if int(r["Cluster ID"]) % 4 == 0]
    file = tmp_path_factory.mktemp("pricerunner") / "offers.csv"
    write_csv(rows, file)
    return file


def config(group: str = "") -> DataConfig:
    return DataConfig(
        source="", text_column="Product Title", label_column="Category Label", group_column=group, holdout_fraction=0.2
    )


def test_a_group_column_keeps_each_product_in_one_split_and_a_row_split_does_not(pricerunner_slice):
    grouped = prepare_splits("classification", str(pricerunner_slice), config("Cluster ID"))
    groups = [{r["group"] for r in rows} for rows in (grouped.train, grouped.selection, grouped.holdout)]
    assert not (groups[0] & groups[1]) and not (groups[0] | groups[1]) & groups[2]
    assert len(grouped.labels) == 10 and {r["label"] for r in grouped.holdout} == set(grouped.labels)  # stratified
    total = len(grouped.train) + len(grouped.selection) + len(grouped.holdout)
    assert 0.15 < len(grouped.holdout) / total < 0.25

    plain = prepare_splits("classification", str(pricerunner_slice), config())
    assert "group" not in plain.train[0]
    # the same rows split by row: most holdout offers are of a product that train also holds
    by_title = {}
    for r in read_csv(pricerunner_slice):
        by_title.setdefault(r["Product Title"], r["Cluster ID"])
    train_products = {by_title[r["text"]] for r in plain.train}
    leaked = [r for r in plain.holdout if by_title[r["text"]] in train_products]
    assert len(leaked) / len(plain.holdout) > 0.5

    # the contamination check sees part of it (exact and near-identical titles), far less after the grouped split
    def flagged(splits):
        texts = {"holdout": [r["text"] for r in splits.holdout]}
        return find_contamination([r["text"] for r in splits.train], texts).counts()

    assert flagged(plain).get("exact_holdout", 0) > 3 * flagged(grouped).get("exact_holdout", 0)


def test_tfidf_logistic_regression_is_scored_by_the_frozen_metric(pricerunner_slice):
    splits = prepare_splits("classification", str(pricerunner_slice), config("Cluster ID"))
    predict = tfidf_logistic(splits.train, splits.labels)
    result = compute_metric(load_metric("classification"), predict(splits.holdout), {}, splits.labels)
    assert result["accuracy"] > 0.9 and result["macro_f1"] > 0.9  # PriceRunner titles are easy for n-grams
    out = predict(splits.holdout[:5])
    assert all(abs(sum(s) - 1) < 1e-6 for s in out.scores) and len(out.scores[0]) == 10
