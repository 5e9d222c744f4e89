import json

import datasets
import pytest
from conftest import read_csv

from hf_autoresearch.data import DataError, carve, load_source, make_splits, write_splits


def test_banking77_splits_are_disjoint_and_stratified(banking77, tmp_path):
    splits = make_splits(str(banking77), "text", "label", 0.1, seed=0)
    assert len(splits.train) + len(splits.selection) == 10003
    assert len(splits.holdout) == 3080
    assert len(splits.labels) == 77
    # every label is represented in the selection split (stratified carve)
    assert {r["label"] for r in splits.selection} == set(splits.labels)
    write_splits(splits, tmp_path)
    train = (tmp_path / "train" / "train.jsonl").read_text()
    selection = [json.loads(line) for line in (tmp_path / "selection.jsonl").read_text().splitlines()]
    # no selection row is in the training file, and the training folder holds nothing but train rows
    train_rows = [json.loads(line) for line in train.splitlines()]
    train_keys = {(r["text"], r["label"]) for r in train_rows}
    assert not any((r["text"], r["label"]) in train_keys for r in selection)
    assert sorted(p.name for p in (tmp_path / "train").iterdir()) == ["labels.json", "train.jsonl"]
    holdout_texts = {r["text"] for r in read_csv(banking77 / "test.csv")}
    assert not holdout_texts & {r["text"] for r in train_rows}


def test_carve_is_deterministic_for_a_seed():
    rows = [{"text": f"t{i}", "label": str(i % 3)} for i in range(60)]
    a = carve(rows, 0.2, 1, "label")
    b = carve(rows, 0.2, 1, "label")
    c = carve(rows, 0.2, 2, "label")
    assert a == b and a[1] != c[1]
    assert len(a[1]) == 12 and len(a[0]) == 48


def test_local_formats_and_classlabel(tmp_path):
    features = datasets.Features({"text": datasets.Value("string"), "label": datasets.ClassLabel(names=["no", "yes"])})
    ds = datasets.Dataset.from_dict(
        {"text": [f"row {i}" for i in range(20)], "label": [i % 2 for i in range(20)]}, features=features
    )
    ds.to_parquet(str(tmp_path / "train.parquet"))
    ds.select(range(4)).to_json(str(tmp_path / "test.jsonl"))
    splits = make_splits(str(tmp_path), "text", "label", 0.2, 0)
    assert splits.labels == ["no", "yes"]  # ClassLabel names kept (parquet keeps the feature)
    assert {r["label"] for r in splits.train} == {"no", "yes"}
    assert {r["label"] for r in splits.holdout} == {"no", "yes"}


def test_data_errors_are_clear(tmp_path):
    with pytest.raises(DataError, match="no test.csv"):
        (tmp_path / "train.csv").write_text("text,label\na,b\n")
        load_source(str(tmp_path))
    (tmp_path / "test.csv").write_text("text,label\na,b\n")
    with pytest.raises(DataError, match="no column 'utterance'"):
        make_splits(str(tmp_path), "utterance", "label", 0.1, 0)
    with pytest.raises(DataError, match="no such data folder"):
        load_source("./missing-folder")
