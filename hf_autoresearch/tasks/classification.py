"""Text classification: one label per text (intents, product categories, spam/fraud, ...).

train.py receives rows {"text": ..., "label": <label name>} and labels.json (the label names, in id order); the
source's columns are named by the recipe's data.text_column / data.label_column. With data.group_column (e.g. a
product id, when one product is several rows) the splits are made by whole groups, stratified by label, so no group
is in two splits; the rows then also carry {"group": ...}. The frozen predictor returns the
predicted label ids, the reference ids and every class's probability, so ranking metrics (average precision,
ROC-AUC) can be computed as well as accuracy.
"""

from __future__ import annotations

import json
from pathlib import Path

from hf_autoresearch.tasks.base import Predictions, Predictor, Splits, Task

TEXT, LABEL, GROUP = "text", "label", "group"
EVAL_BATCH_SIZE = 64
EVAL_MAX_LENGTH = 256


class ClassificationTask(Task):
    name = "classification"
    columns = (TEXT, LABEL)
    default_metric = ("classification", "accuracy")
    auto_class = "AutoModelForSequenceClassification"
    pipeline_tag = "text-classification"
    scores_untrained = False  # a new classification head must be trained first
    template = Path(__file__).parent / "templates" / "classification_train.py"

    def make_splits(self, source: str, data) -> Splits:
        from hf_autoresearch.data import DataError, carve, carve_groups, load_source

        loaded = load_source(source, data.encoding, data.where)
        names = loaded["train"].features.get(data.label_column)
        group = data.group_column
        train_rows = _rows(loaded["train"], data.text_column, data.label_column, f"{source} (train)", group=group)
        if "test" in loaded:
            holdout = _rows(loaded["test"], data.text_column, data.label_column, f"{source} (test)", names, group)
            if group:  # a group the test split holds is not trained on
                held = {r[GROUP] for r in holdout}
                train_rows = [r for r in train_rows if r[GROUP] not in held]
        elif group:  # one split: a seeded holdout of whole groups, stratified by label
            train_rows, holdout = carve_groups(train_rows, data.holdout_fraction, data.split_seed + 1, _group, LABEL)
        else:  # one split (a Hub data set, a single file): a seeded, stratified holdout carved from it
            train_rows, holdout = carve(train_rows, data.holdout_fraction, data.split_seed + 1, LABEL)
        if len(train_rows) < 2 or not holdout:
            raise DataError(f"{source}: train needs at least 2 rows and test at least 1")
        labels = _label_names(names, train_rows)
        unknown = [(i, r[LABEL]) for i, r in enumerate(holdout) if r[LABEL] not in set(labels)]
        if unknown:
            row, label = unknown[0]
            raise DataError(
                f"{source} (test), row {row + 1}: label {label!r} never occurs in train ({len(unknown)} test rows "
                "have labels train lacks); a model cannot learn them: drop those rows or add training examples"
            )
        if group:
            train, selection = carve_groups(train_rows, data.selection_fraction, data.split_seed, _group, LABEL)
        else:
            train, selection = carve(train_rows, data.selection_fraction, data.split_seed, LABEL)
        return Splits(train=train, selection=selection, holdout=holdout, labels=labels)

    def describe(self, splits: Splits) -> str:
        counts: dict[str, int] = {}
        for row in splits.train:
            counts[row[LABEL]] = counts.get(row[LABEL], 0) + 1
        shares = sorted(counts.items(), key=lambda kv: -kv[1])
        head = ", ".join(f"{name} {n / len(splits.train):.1%}" for name, n in shares[:6])
        more = f", … ({len(shares) - 6} more)" if len(shares) > 6 else ""
        return f"{super().describe(splits)}; {len(splits.labels)} labels: {head}{more}"

    def load_predictor(self, model_dir: Path, splits_dir: Path, device: str) -> Predictor:
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        labels = json.loads((Path(splits_dir) / "train" / "labels.json").read_text())
        label2id = {name: i for i, name in enumerate(labels)}
        tokenizer = AutoTokenizer.from_pretrained(model_dir, trust_remote_code=False)
        model = AutoModelForSequenceClassification.from_pretrained(model_dir, trust_remote_code=False)
        model.to(device).eval()
        # the model's output ids -> our label ids; a head saved without our label names cannot be scored
        id2label = {int(k): str(v) for k, v in model.config.id2label.items()}
        missing = sorted(set(labels) - set(id2label.values()))
        if missing:
            raise ValueError(
                f"the saved classifier's id2label ({_preview(id2label.values())}) lacks {len(missing)} of the "
                f"{len(labels)} labels (e.g. {missing[0]!r}); train.py must build the model with "
                "id2label/label2id from labels.json so its outputs can be read"
            )
        to_ours = [label2id.get(id2label.get(i, ""), -1) for i in range(model.config.num_labels)]

        def predict(rows: list[dict]) -> Predictions:
            texts = [str(r[TEXT]) for r in rows]
            order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # similar lengths pad little
            predicted, scores = [-1] * len(texts), [[0.0] * len(labels) for _ in texts]
            with torch.inference_mode():
                for start in range(0, len(order), EVAL_BATCH_SIZE):
                    ix = order[start : start + EVAL_BATCH_SIZE]
                    batch = tokenizer(
                        [texts[i] for i in ix],
                        truncation=True,
                        max_length=EVAL_MAX_LENGTH,
                        padding=True,
                        return_tensors="pt",
                    )
                    probs = model(**batch.to(device)).logits.float().softmax(-1).cpu().tolist()
                    for i, row_probs in zip(ix, probs, strict=True):
                        for model_id, p in enumerate(row_probs):
                            if to_ours[model_id] >= 0:
                                scores[i][to_ours[model_id]] = p
                        predicted[i] = max(range(len(labels)), key=scores[i].__getitem__)
            references = [label2id[str(r[LABEL])] for r in rows]
            return Predictions(predicted, references, scores=scores, inputs=texts)

        return predict


def _preview(values, n: int = 3) -> str:
    values = list(values)
    return ", ".join(repr(v) for v in values[:n]) + (", …" if len(values) > n else "")


def _group(row: dict) -> str:
    return row[GROUP]


def _rows(ds, text_column: str, label_column: str, where: str, names=None, group: str = "") -> list[dict]:
    """Rows {"text", "label"} with string labels; integer labels are mapped through `names` (train's ClassLabel).
    With `group` (a column), each row also carries {"group": that column's value as text}."""
    import datasets

    from hf_autoresearch.data import DataError

    # a source that already uses the task's names works whatever the recipe calls them (a local copy of Hub data)
    text_column = text_column if text_column in ds.column_names or TEXT not in ds.column_names else TEXT
    label_column = label_column if label_column in ds.column_names or LABEL not in ds.column_names else LABEL
    for column in (text_column, label_column, *([group] if group else [])):
        if column not in ds.column_names:
            raise DataError(
                f"{where}: no column {column!r} (columns: {', '.join(ds.column_names)}); set "
                "data.text_column / data.label_column / data.group_column in recipe.toml"
            )
    feature = ds.features[label_column]
    if not isinstance(feature, datasets.ClassLabel) and isinstance(names, datasets.ClassLabel):
        feature = names  # e.g. a test.jsonl that stored the ids of the train split's ClassLabel
    rows = []
    for i, raw in enumerate(
        ds.select_columns(list(dict.fromkeys([text_column, label_column, group or label_column]))).to_list()
    ):
        text, label = raw[text_column], raw[label_column]
        if text is None or not str(text).strip():
            raise DataError(f"{where}, row {i + 1}: empty {text_column!r}; drop the row or fill it in")
        if label is None or str(label) == "":
            raise DataError(f"{where}, row {i + 1}: empty {label_column!r}; every row needs a label")
        label = feature.int2str(label) if isinstance(feature, datasets.ClassLabel) else str(label)
        rows.append({TEXT: str(text), LABEL: label, **({GROUP: str(raw[group])} if group else {})})
    return rows


def _label_names(feature, rows: list[dict]) -> list[str]:
    import datasets

    if isinstance(feature, datasets.ClassLabel):
        return list(feature.names)
    return sorted({row[LABEL] for row in rows})
