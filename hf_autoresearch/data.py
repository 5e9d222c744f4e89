"""Load a data set from a Hub id or a local folder, and make the train / selection / holdout splits.

The selection split is carved from train with a fixed seed (stratified by label when every label has two rows);
the source's test split is the holdout. Only the train split is ever handed to train.py.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import datasets
import numpy as np

from hf_autoresearch.errors import UserError

LOCAL_FORMATS = {".csv": "csv", ".jsonl": "json", ".json": "json", ".parquet": "parquet"}
TRAIN_FILE = "train.jsonl"
LABELS_FILE = "labels.json"


class DataError(UserError, ValueError):
    """Data that cannot be loaded or split, with what to do about it."""


@dataclass
class Splits:
    train: list[dict]
    selection: list[dict]
    holdout: list[dict]
    labels: list[str]


def _local_file(folder: Path, split: str) -> Path:
    found = sorted(p for p in folder.glob(f"{split}.*") if p.suffix in LOCAL_FORMATS)
    if not found:
        raise DataError(
            f"{folder}: no {split}.csv, {split}.jsonl or {split}.parquet; a local data folder needs both "
            "train.* and test.*"
        )
    return found[0]


def load_hub(source: str, offline_hint: str) -> datasets.DatasetDict:
    """A Hub data set, or a DataError that says what to pass --data offline."""
    try:
        return datasets.load_dataset(source)
    except Exception as err:  # the Hub client raises many types; all mean the same to the user
        raise DataError(
            f"could not load {source!r} from the Hub ({type(err).__name__}: {err}); offline, pass --data "
            f"{offline_hint}"
        ) from err


def load_source(source: str) -> dict[str, datasets.Dataset]:
    """The `train` and `test` splits of `source`: a local folder with train.* / test.*, or a Hub dataset id."""
    folder = Path(source).expanduser()
    if folder.is_dir():
        out = {}
        for split in ("train", "test"):
            file = _local_file(folder, split)
            out[split] = datasets.load_dataset(LOCAL_FORMATS[file.suffix], data_files=str(file), split="train")
        return out
    if source.startswith((".", "/", "~")) or folder.suffix:
        raise DataError(f"{source}: no such data folder; pass --data a folder with train.* and test.* or a Hub id")
    loaded = load_hub(source, "a local folder with train.* and test.*")
    missing = {"train", "test"} - set(loaded)
    if missing:
        raise DataError(f"{source}: has splits {sorted(loaded)}, needs 'train' and 'test'")
    return {"train": loaded["train"], "test": loaded["test"]}


def _rows(ds: datasets.Dataset, text_column: str, label_column: str, source: str, names=None) -> list[dict]:
    """Rows with string labels; integer labels are mapped through `names` (the train split's ClassLabel)."""
    for column in (text_column, label_column):
        if column not in ds.column_names:
            raise DataError(
                f"{source}: no column {column!r} (columns: {', '.join(ds.column_names)}); set "
                "data.text_column / data.label_column in recipe.toml"
            )
    feature = ds.features[label_column]
    if not isinstance(feature, datasets.ClassLabel) and isinstance(names, datasets.ClassLabel):
        feature = names  # e.g. a test.jsonl that stored the ids of the train split's ClassLabel
    rows = ds.to_list()
    if isinstance(feature, datasets.ClassLabel):
        for row in rows:
            row[label_column] = feature.int2str(row[label_column])
    else:
        for row in rows:
            row[label_column] = str(row[label_column])
    return rows


def label_names(source_train: datasets.Dataset, rows: list[dict], label_column: str) -> list[str]:
    feature = source_train.features.get(label_column)
    if isinstance(feature, datasets.ClassLabel):
        return list(feature.names)
    return sorted({row[label_column] for row in rows})


def carve(rows: list[dict], fraction: float, seed: int, label_column: str) -> tuple[list[dict], list[dict]]:
    """Split `rows` into (train, selection), stratified by label when each label has at least two rows."""
    rng = np.random.default_rng(seed)
    by_label: dict[str, list[int]] = {}
    for i, row in enumerate(rows):
        by_label.setdefault(row[label_column], []).append(i)
    selected: list[int] = []
    if min(len(ix) for ix in by_label.values()) >= 2:
        for label in sorted(by_label):
            ix = by_label[label]
            k = max(1, round(len(ix) * fraction))
            selected.extend(rng.choice(ix, size=k, replace=False).tolist())
    else:
        selected = rng.choice(len(rows), size=max(1, round(len(rows) * fraction)), replace=False).tolist()
    chosen = set(selected)
    return [r for i, r in enumerate(rows) if i not in chosen], [rows[i] for i in sorted(chosen)]


def make_splits(source: str, text_column: str, label_column: str, selection_fraction: float, seed: int) -> Splits:
    loaded = load_source(source)
    train_rows = _rows(loaded["train"], text_column, label_column, source)
    holdout = _rows(loaded["test"], text_column, label_column, source, loaded["train"].features.get(label_column))
    if len(train_rows) < 2 or not holdout:
        raise DataError(f"{source}: train needs at least 2 rows and test at least 1")
    labels = label_names(loaded["train"], train_rows + holdout, label_column)
    train, selection = carve(train_rows, selection_fraction, seed, label_column)
    return Splits(train=train, selection=selection, holdout=holdout, labels=labels)


def write_jsonl(rows: list[dict], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def read_jsonl(path: Path) -> list[dict]:
    with Path(path).open() as f:
        return [json.loads(line) for line in f if line.strip()]


def write_splits(splits: Splits, folder: Path) -> None:
    """Write the three splits under `folder`: train/ (what train.py may see) beside selection and holdout."""
    write_jsonl(splits.train, folder / "train" / TRAIN_FILE)
    (folder / "train" / LABELS_FILE).write_text(json.dumps(splits.labels, ensure_ascii=False))
    write_jsonl(splits.selection, folder / "selection.jsonl")
    write_jsonl(splits.holdout, folder / "holdout.jsonl")


def cap_eval_rows(splits: Splits, max_rows: int, seed: int) -> Splits:
    """At most `max_rows` selection and holdout rows (a seeded sample, in source order; 0 keeps all).

    The rows left out are dropped, not given to train, so the train split does not depend on the cap.
    """
    if max_rows <= 0:
        return splits
    rng = np.random.default_rng(seed)

    def sample(rows: list[dict]) -> list[dict]:
        if len(rows) <= max_rows:
            return rows
        return [rows[i] for i in sorted(rng.choice(len(rows), size=max_rows, replace=False).tolist())]

    return Splits(
        train=splits.train, selection=sample(splits.selection), holdout=sample(splits.holdout), labels=splits.labels
    )


def prepare_splits(task: str, source: str, config) -> Splits:
    """The splits of `source` for a recipe task, with the recipe's [data] settings (a recipe.DataConfig)."""
    if task == "query-expansion":
        from hf_autoresearch.tasks import query_expansion

        splits = query_expansion.make_splits(
            source,
            config.text_column,
            config.label_column,
            config.selection_fraction,
            config.holdout_fraction,
            config.split_seed,
        )
    else:
        splits = make_splits(
            source, config.text_column, config.label_column, config.selection_fraction, config.split_seed
        )
    return cap_eval_rows(splits, config.max_eval_rows, config.split_seed)
