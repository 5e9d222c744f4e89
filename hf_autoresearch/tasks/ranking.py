"""Search ranking: rerank each query's judged documents (a cross-encoder scores every (query, document) pair).

Source rows are graded judgments (query, document, grade). The document is built from one or more columns
(`data.document_columns`, e.g. title and description: joined with " | ", HTML tags and entities removed). A grade
is turned into an integer gain: through `data.gains` when the recipe maps labels to gains (ESCI's Exact /
Substitute / Complement / Irrelevant), else the grade itself, which must then be a whole number.

Splits are **by query**, never by row: the query is normalised (case, punctuation, accents, whitespace: the
contamination check's `normalize`) and all its judgments land in one split. The source's own test split is the
holdout when it has one (training judgments of a query it holds are dropped); otherwise a `holdout_fraction` of the
queries is carved. The selection split is a `selection_fraction` of the remaining queries. `data.max_queries` caps
every split's queries (a seeded sample), so a CPU run on a large source (ESCI) stays practical.

train.py receives rows {"query_id", "query", "document", "gain"} (query_id is the normalised query: group by it
for a listwise loss). The frozen predictor scores every judged pair with the saved model (one output: its logit;
two outputs: the second minus the first) and returns the scores, the gains and the query ids; the `ranking` metric
ranks each query's judged documents by score.
"""

from __future__ import annotations

import html
import re
from pathlib import Path

from hf_autoresearch.tasks.base import Predictions, Predictor, Splits, Task

QUERY_ID, QUERY, DOCUMENT, GAIN = "query_id", "query", "document", "gain"
EVAL_BATCH_SIZE = 64
EVAL_MAX_LENGTH = 96  # tokens of "[CLS] query [SEP] document [SEP]" the frozen evaluation reads (2 CPU cores)
DOCUMENT_SEPARATOR = " | "
_TAG = re.compile(r"<[^>]{0,200}>")


def clean_text(value) -> str:
    """Text of one document field: HTML tags and entities removed, whitespace collapsed; None is ''."""
    if value is None:
        return ""
    return " ".join(html.unescape(_TAG.sub(" ", str(value))).split())


def query_key(query: str) -> str:
    """The normalised query: two judgments with the same key belong to the same query (and split)."""
    from hf_autoresearch.contamination import normalize

    return normalize(query)


class RankingTask(Task):
    name = "ranking"
    columns = (QUERY, GAIN)
    default_metric = ("ranking", "ndcg@10")
    auto_class = "AutoModelForSequenceClassification"
    pipeline_tag = "text-ranking"
    scores_untrained = True  # any one-output encoder orders documents; an untrained head is a (weak) reference
    template = Path(__file__).parent / "templates" / "ranking_train.py"

    def make_splits(self, source: str, data) -> Splits:
        import numpy as np

        from hf_autoresearch.data import DataError, carve_groups, load_source

        loaded = load_source(source, data.encoding, data.where)
        pool = _rows(loaded["train"], data, f"{source} (train)")
        if "test" in loaded:
            holdout = _rows(loaded["test"], data, f"{source} (test)")
            held = {r[QUERY_ID] for r in holdout}
            pool = [r for r in pool if r[QUERY_ID] not in held]
        else:
            pool, holdout = carve_groups(pool, data.holdout_fraction, data.split_seed + 1, _group)
        train, selection = carve_groups(pool, data.selection_fraction, data.split_seed, _group)
        if data.max_queries > 0:
            rng = np.random.default_rng(data.split_seed)
            train, selection, holdout = (
                _cap_queries(rows, data.max_queries, rng) for rows in (train, selection, holdout)
            )
        if not train or not selection or not holdout:
            raise DataError(f"{source}: too few queries to make train, selection and holdout splits")
        return Splits(train=train, selection=selection, holdout=holdout)

    def input_text(self, row: dict) -> str:
        return str(row[QUERY])  # the contamination check compares queries: a query in train and evaluation leaks

    def describe(self, splits: Splits) -> str:
        parts = []
        for name, rows in (("train", splits.train), ("selection", splits.selection), ("holdout", splits.holdout)):
            parts.append(f"{name} {len({r[QUERY_ID] for r in rows})} queries / {len(rows)} judgments")
        gains = sorted({r[GAIN] for r in splits.train})
        return ", ".join(parts) + f"; gains {gains}"

    def load_predictor(self, model_dir: Path, splits_dir: Path, device: str) -> Predictor:
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(model_dir, trust_remote_code=False)
        model = AutoModelForSequenceClassification.from_pretrained(model_dir, trust_remote_code=False)
        if model.config.num_labels not in (1, 2):
            raise ValueError(
                f"the saved model has {model.config.num_labels} outputs; a reranker needs one (its relevance score): "
                "build it with AutoModelForSequenceClassification.from_pretrained(..., num_labels=1)"
            )
        model.to(device).eval()

        def predict(rows: list[dict]) -> Predictions:
            pairs = [(str(r[QUERY]), str(r[DOCUMENT])) for r in rows]
            order = sorted(range(len(pairs)), key=lambda i: len(pairs[i][0]) + len(pairs[i][1]))
            scores = [0.0] * len(pairs)
            with torch.inference_mode():
                for start in range(0, len(order), EVAL_BATCH_SIZE):
                    ix = order[start : start + EVAL_BATCH_SIZE]
                    batch = tokenizer(
                        [pairs[i][0] for i in ix],
                        [pairs[i][1] for i in ix],
                        truncation="only_second",
                        max_length=EVAL_MAX_LENGTH,
                        padding=True,
                        return_tensors="pt",
                    )
                    logits = model(**batch.to(device)).logits.float()
                    relevance = logits[:, 0] if logits.shape[1] == 1 else logits[:, 1] - logits[:, 0]
                    for i, value in zip(ix, relevance.cpu().tolist(), strict=True):
                        scores[i] = value
            return Predictions(
                predictions=scores,
                references=[int(r[GAIN]) for r in rows],
                groups=[str(r[QUERY_ID]) for r in rows],
                inputs=[f"{q} ‖ {d[:120]}" for q, d in pairs],
            )

        return predict


def _group(row: dict) -> str:
    return row[QUERY_ID]


def _cap_queries(rows: list[dict], max_queries: int, rng) -> list[dict]:
    keys = sorted({r[QUERY_ID] for r in rows})
    if len(keys) <= max_queries:
        return rows
    kept = set(rng.choice(keys, size=max_queries, replace=False).tolist())
    return [r for r in rows if r[QUERY_ID] in kept]


def _rows(ds, data, where: str) -> list[dict]:
    """Rows {query_id, query, document, gain} of one source split, or a DataError naming the row and the fix."""
    from hf_autoresearch.data import DataError

    columns = [data.query_column, *data.document_columns, data.label_column]
    missing = [c for c in dict.fromkeys(columns) if c not in ds.column_names]
    if missing:
        raise DataError(
            f"{where}: no column {missing[0]!r} (columns: {', '.join(ds.column_names)}); set data.query_column, "
            "data.document_columns and data.label_column in recipe.toml (or init's --query-column, "
            "--document-column, --label-column)"
        )
    gains = {str(k): v for k, v in data.gains.items()}
    rows = []
    for i, raw in enumerate(ds.select_columns(list(dict.fromkeys(columns))).to_list()):
        query = clean_text(raw[data.query_column])
        if not query:
            raise DataError(f"{where}, row {i + 1}: empty {data.query_column!r}; every judgment needs its query")
        document = DOCUMENT_SEPARATOR.join(t for t in (clean_text(raw[c]) for c in data.document_columns) if t)
        if not document:
            raise DataError(
                f"{where}, row {i + 1}: the document columns {data.document_columns} are all empty; drop the row"
            )
        rows.append(
            {
                QUERY_ID: query_key(query),
                QUERY: query,
                DOCUMENT: document,
                GAIN: _gain(raw[data.label_column], gains, data.label_column, f"{where}, row {i + 1}"),
            }
        )
    return rows


def _gain(label, gains: dict, column: str, where: str) -> int:
    from hf_autoresearch.data import DataError

    if gains:
        key = _label_key(label)
        if key not in gains:
            raise DataError(
                f"{where}: {column} {label!r} has no gain in data.gains ({', '.join(sorted(gains))}); add it, "
                f'e.g. data.gains = {{"{key}" = 0, ...}}'
            )
        return int(gains[key])
    try:
        value = float(label)
    except (TypeError, ValueError):
        raise DataError(
            f"{where}: {column} {label!r} is not a number; map the labels to integer gains with data.gains "
            "(e.g. {Exact = 3, Substitute = 2, Complement = 1, Irrelevant = 0}), or init --gain LABEL=GAIN"
        ) from None
    if value != int(value) or value < 0:
        raise DataError(
            f"{where}: {column} {label!r} is not a whole number >= 0; the ranking metrics take integer gains: map "
            'the grades with data.gains (e.g. {"1" = 0, "1.33" = 1, ...})'
        )
    return int(value)


def _label_key(label) -> str:
    """1, 1.0 and "1" all look up the gains key "1"."""
    if isinstance(label, float) and label.is_integer():
        return str(int(label))
    return str(label)
