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
            f"{folder}: no {split}.csv, {split}.jsonl or {split}.parquet; a local data folder needs train.* (and "
            "test.* for a holdout of its own; without one, a holdout is carved from train)"
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


def load_local_file(file: Path, encoding: str = "utf-8") -> datasets.Dataset:
    """One csv / jsonl / parquet file as a Dataset, or a DataError naming the file (and the line, for bad text).

    A csv file in another encoding (Home Depot's latin-1) is read with `encoding` (the recipe's data.encoding).
    """
    encoding = _check_encoding(encoding, file)
    if file.suffix != ".parquet":
        _check_decodes(file, encoding)
    quiet = not datasets.are_progress_bars_disabled()
    if quiet:  # a local file loads in a moment: a progress bar is noise, above all before an error
        datasets.disable_progress_bars()
    options = {"encoding": encoding} if file.suffix == ".csv" and encoding != "utf-8" else {}
    try:
        if file.suffix == ".jsonl" and encoding != "utf-8":
            return _load_json_lines(file, encoding)
        return _load(file, options)
    except Exception as err:  # pyarrow and pandas raise many types (UnicodeDecodeError, ArrowInvalid...)
        cause = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise DataError(
            f"{file}: cannot be read as {LOCAL_FORMATS[file.suffix]} ({type(err).__name__}: {cause}); save it as "
            "UTF-8 with a header row (csv) or one JSON object a line (jsonl)"
        ) from err
    finally:
        if quiet:
            datasets.enable_progress_bars()


def _load(file: Path, options: dict) -> datasets.Dataset:
    return datasets.load_dataset(LOCAL_FORMATS[file.suffix], data_files=str(file), split="train", **options)


def _load_json_lines(file: Path, encoding: str) -> datasets.Dataset:
    """JSON lines in another encoding: the json loader reads UTF-8 only."""
    text = file.read_text(encoding=encoding)
    return datasets.Dataset.from_list([json.loads(line) for line in text.splitlines() if line.strip()])


def _check_encoding(encoding: str, file: Path) -> str:
    import codecs

    try:
        return "utf-8" if codecs.lookup(encoding).name == "utf-8" else codecs.lookup(encoding).name
    except LookupError as err:
        raise DataError(
            f"{file}: unknown encoding {encoding!r} (data.encoding); use a Python codec name such as "
            '"utf-8", "latin-1" or "cp1252"'
        ) from err


def _check_decodes(file: Path, encoding: str = "utf-8") -> None:
    """Name the first line that does not decode (the loaders only say that generating the dataset failed)."""
    data = file.read_bytes()
    try:
        data.decode(encoding)
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        column = err.start - (data.rfind(b"\n", 0, err.start) + 1) + 1
        name = "UTF-8" if encoding == "utf-8" else encoding
        raise DataError(
            f"{file}: cannot be read as {LOCAL_FORMATS[file.suffix]} (line {line} is not {name}: byte "
            f"0x{data[err.start]:02x} at column {column}); save the file as UTF-8 (e.g. `iconv -f latin1 -t utf-8`) "
            'or name its encoding in recipe.toml, e.g. data.encoding = "latin-1"'
        ) from err


def load_source(source: str, encoding: str = "utf-8", where: dict | None = None) -> dict[str, datasets.Dataset]:
    """The `train` and (when there is one) `test` splits of `source`: a local folder with train.* and optionally
    test.*, one local file (its rows are the train split), or a Hub dataset id. Without a test split the task
    carves a holdout from train. With `where` ({column: value}), only the rows whose columns equal those values."""
    loaded = _load_source(source, encoding)
    return {split: keep_where(ds, where, f"{source} ({split})") for split, ds in loaded.items()} if where else loaded


def keep_where(ds: datasets.Dataset, where: dict, name: str) -> datasets.Dataset:
    """The rows of `ds` whose columns equal `where`'s values (compared as text: 1 matches "1" and 1)."""
    missing = [c for c in where if c not in ds.column_names]
    if missing:
        raise DataError(
            f"{name}: data.where names column {missing[0]!r}, which the source lacks (columns: "
            f"{', '.join(ds.column_names)})"
        )
    wanted = {c: str(v) for c, v in where.items()}
    kept = ds.filter(lambda row: all(str(row[c]) == v for c, v in wanted.items()))
    if not len(kept):
        raise DataError(f"{name}: no row matches data.where = {where}")
    return kept


def _load_source(source: str, encoding: str) -> dict[str, datasets.Dataset]:
    folder = Path(source).expanduser()
    if folder.is_dir():
        out = {"train": load_local_file(_local_file(folder, "train"), encoding)}
        if any(p.suffix in LOCAL_FORMATS for p in folder.glob("test.*")):
            out["test"] = load_local_file(_local_file(folder, "test"), encoding)
        return out
    if folder.is_file() and folder.suffix in LOCAL_FORMATS:
        return {"train": load_local_file(folder, encoding)}
    if source.startswith((".", "/", "~")) or folder.suffix:
        raise DataError(
            f"{source}: no such data folder or file; pass --data a folder with train.* (and test.*), one csv / "
            "jsonl / parquet file, or a Hub id"
        )
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


def carve_groups(
    rows: list[dict], fraction: float, seed: int, group_key, label_column: str | None = None
) -> tuple[list[dict], list[dict]]:
    """Split `rows` into (rest, carved) by whole groups: every row of a group lands on the same side.

    `group_key(row)` names a row's group (a query, a product). About `fraction` of the groups are carved, chosen
    with `seed`; with `label_column`, stratified by each group's most common label (each label's groups carved
    apart), so rare labels reach the carved side too.
    """
    groups: dict[str, list[int]] = {}
    for i, row in enumerate(rows):
        groups.setdefault(group_key(row), []).append(i)
    if len(groups) < 2:
        raise DataError(f"{len(groups)} distinct group(s): too few to split by group")
    strata: dict[str, list[str]] = {}
    for key, ix in groups.items():
        labels = [str(rows[i][label_column]) for i in ix] if label_column else [""]
        strata.setdefault(max(sorted(set(labels)), key=labels.count), []).append(key)
    rng = np.random.default_rng(seed)
    carved: set[str] = set()
    stratify = label_column is not None and min(len(keys) for keys in strata.values()) >= 2
    for keys in [strata[s] for s in sorted(strata)] if stratify else [sorted(groups)]:
        keys = sorted(keys)
        k = min(len(keys) - (0 if stratify else 1), max(1, round(len(keys) * fraction)))
        carved.update(rng.choice(keys, size=k, replace=False).tolist())
    rest = [r for r in rows if group_key(r) not in carved]
    return rest, [r for r in rows if group_key(r) in carved]


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
