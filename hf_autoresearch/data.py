"""Data sources and split files, for every task: load a Hub id or a local folder, carve, write and read splits.

What a split holds is the task's business (hf_autoresearch/tasks); this module only moves rows. Only the train
split is ever handed to train.py: `write_splits` puts it in a folder of its own beside the evaluation splits.
"""

from __future__ import annotations

import json
from pathlib import Path

import datasets
import numpy as np

from hf_autoresearch.errors import UserError
from hf_autoresearch.tasks.base import Splits

LOCAL_FORMATS = {".csv": "csv", ".jsonl": "json", ".json": "json", ".parquet": "parquet"}
TRAIN_FILE = "train.jsonl"
LABELS_FILE = "labels.json"


class DataError(UserError, ValueError):
    """Data that cannot be loaded or split, with what to do about it."""


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


def load_local_file(file: Path) -> datasets.Dataset:
    """One csv / jsonl / parquet file as a Dataset, or a DataError naming the file (and the line, for bad text)."""
    if file.suffix != ".parquet":
        _check_utf8(file)
    quiet = not datasets.are_progress_bars_disabled()
    if quiet:  # a local file loads in a moment: a progress bar is noise, above all before an error
        datasets.disable_progress_bars()
    try:
        return datasets.load_dataset(LOCAL_FORMATS[file.suffix], data_files=str(file), split="train")
    except Exception as err:  # pyarrow and pandas raise many types (UnicodeDecodeError, ArrowInvalid...)
        cause = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise DataError(
            f"{file}: cannot be read as {LOCAL_FORMATS[file.suffix]} ({type(err).__name__}: {cause}); save it as "
            "UTF-8 with a header row (csv) or one JSON object a line (jsonl)"
        ) from err
    finally:
        if quiet:
            datasets.enable_progress_bars()


def _check_utf8(file: Path) -> None:
    """Name the first line that is not UTF-8 (the loaders only say that generating the dataset failed)."""
    data = file.read_bytes()
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        column = err.start - (data.rfind(b"\n", 0, err.start) + 1) + 1
        raise DataError(
            f"{file}: cannot be read as {LOCAL_FORMATS[file.suffix]} (line {line} is not UTF-8: byte "
            f"0x{data[err.start]:02x} at column {column}); save the file as UTF-8 (e.g. `iconv -f latin1 -t utf-8`)"
        ) from err


def load_source(source: str) -> dict[str, datasets.Dataset]:
    """The `train` and `test` splits of `source`: a local folder with train.* / test.*, or a Hub dataset id (whose
    test split may be missing: the task then carves a holdout from train)."""
    folder = Path(source).expanduser()
    if folder.is_dir():
        out = {}
        for split in ("train", "test"):
            out[split] = load_local_file(_local_file(folder, split))
        return out
    if source.startswith((".", "/", "~")) or folder.suffix:
        raise DataError(f"{source}: no such data folder; pass --data a folder with train.* and test.* or a Hub id")
    loaded = load_hub(source, "a local folder with train.* and test.*")
    if "train" not in loaded:
        raise DataError(f"{source}: has splits {sorted(loaded)}, needs 'train' (and 'test', else one is carved)")
    return {split: loaded[split] for split in ("train", "test") if split in loaded}


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
