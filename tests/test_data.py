import json

import datasets
import pytest
from conftest import read_csv

from hf_autoresearch.data import DataError, carve, load_source, write_splits
from hf_autoresearch.recipe import DataConfig
from hf_autoresearch.tasks import get_task


def classification_splits(source, text="text", label="label", fraction=0.1, seed=0):
    data = DataConfig(
        source=str(source), text_column=text, label_column=label, selection_fraction=fraction, split_seed=seed
    )
    return get_task("classification").make_splits(str(source), data)


def test_banking77_splits_are_disjoint_and_stratified(banking77, tmp_path):
    splits = classification_splits(banking77)
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
    splits = classification_splits(tmp_path, fraction=0.2)
    assert splits.labels == ["no", "yes"]  # ClassLabel names kept (parquet keeps the feature)
    assert {r["label"] for r in splits.train} == {"no", "yes"}
    assert {r["label"] for r in splits.holdout} == {"no", "yes"}


def test_source_columns_are_renamed_to_the_task_columns(tmp_path):
    """A data set with its own column names reaches train.py as {"text", "label"}."""
    rows = "".join(f"msg {i},{'x' if i % 2 else 'y'},extra\n" for i in range(20))
    (tmp_path / "train.csv").write_text("utterance,intent,other\n" + rows)
    (tmp_path / "test.csv").write_text("utterance,intent,other\nq,x,1\n")
    splits = classification_splits(tmp_path, text="utterance", label="intent")
    assert set(splits.train[0]) == {"text", "label"} and splits.holdout == [{"text": "q", "label": "x"}]


def test_data_errors_are_clear(tmp_path):
    (tmp_path / "train.csv").write_text("text,label\na,b\nc,b\n")
    assert list(load_source(str(tmp_path))) == ["train"]  # no test.*: the task carves a holdout from train
    assert list(load_source(str(tmp_path / "train.csv"))) == ["train"]  # one file is a source too
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no train.csv"):
        load_source(str(tmp_path / "empty"))
    (tmp_path / "test.csv").write_text("text,label\na,b\n")
    # a source that already has the task's column is read as it is, whatever the recipe calls the column
    assert classification_splits(tmp_path, text="utterance").holdout == [{"text": "a", "label": "b"}]
    (tmp_path / "train.csv").write_text("body,label\na,b\nc,b\n")
    with pytest.raises(DataError, match="no column 'utterance' \\(columns: body, label\\)"):
        classification_splits(tmp_path, text="utterance")
    with pytest.raises(DataError, match="no such data folder"):
        load_source("./missing-folder")


@pytest.mark.parametrize(
    ("train", "test", "message"),
    [
        (b"text,label\na,x\nb,y\n", b"text,label\nc,z\n", r"row 1: label 'z' never occurs in train"),
        (b"text,label\na,x\n,y\n", b"text,label\nc,x\n", r"\(train\), row 2: empty 'text'"),
        (b"text,label\na,x\nb,\n", b"text,label\nc,x\n", r"\(train\), row 2: empty 'label'"),
        (b"text,label\na,x\n\xff\xfe bad,y\n", b"text,label\nc,x\n", r"train.csv: cannot be read as csv .*UTF-8"),
    ],
)
def test_bad_rows_name_the_file_row_and_fix(tmp_path, train, test, message):
    (tmp_path / "train.csv").write_bytes(train)
    (tmp_path / "test.csv").write_bytes(test)
    with pytest.raises(DataError, match=message):
        classification_splits(tmp_path)
