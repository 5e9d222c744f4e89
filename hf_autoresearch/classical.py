"""Classical lines beside a run: what a practitioner tries before a language model, scored like the run's models.

- classification: TF-IDF of character 2-5-grams (within word boundaries) + logistic regression (scikit-learn),
  trained on the run's train split.
- ranking: BM25 (Okapi, `rank_bm25`) ranking each query's judged documents, IDF from the split's documents (no
  training); a random
  order (the mean of the metric's own shuffles is in its `random_ndcg@10`; this line is one seeded shuffle's
  scores ranked by the same frozen metric); and the recipe's model untrained (a fresh one-output head), scored by
  the frozen evaluation.

Every line is scored on the run's selection and holdout splits by the recipe's metric module with the recipe's
options, through the same `compute_metric` the frozen evaluation uses. `hf-autoresearch classical` writes them to
<run>/classical.json; `status` prints them under the larger baseline.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
import time
from pathlib import Path

from hf_autoresearch.data import read_jsonl
from hf_autoresearch.tasks.base import Predictions

CLASSICAL_FILE = "classical.json"
SPLITS = ("selection", "holdout")
_WORD = re.compile(r"\w+")


def tfidf_logistic(train: list[dict], labels: list[str], seed: int = 0):
    """A fitted TF-IDF (char 2-5-grams) + logistic regression on rows {"text", "label"}: a rows -> Predictions."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    label2id = {name: i for i, name in enumerate(labels)}
    model = make_pipeline(
        TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), min_df=2, sublinear_tf=True),
        LogisticRegression(C=10.0, max_iter=2000, random_state=seed),
    )
    model.fit([r["text"] for r in train], [label2id[r["label"]] for r in train])
    classes = [int(c) for c in model.classes_]

    def predict(rows: list[dict]) -> Predictions:
        probs = model.predict_proba([r["text"] for r in rows])
        scores = [[0.0] * len(labels) for _ in rows]
        for row_scores, row_probs in zip(scores, probs, strict=True):
            for c, p in zip(classes, row_probs, strict=True):
                row_scores[c] = float(p)
        predicted = [max(range(len(labels)), key=s.__getitem__) for s in scores]
        return Predictions(predicted, [label2id[r["label"]] for r in rows], scores=scores)

    return predict


def tokens(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def bm25(rows: list[dict]) -> Predictions:
    """BM25 (Okapi, k1 1.5, b 0.75) of each query's judged documents. The index (IDF, average length) is the split's
    distinct documents: within one query's few candidates, its own terms are in most of them and their IDF turns
    negative (rank_bm25 then floors it), which scrambles the order."""
    from rank_bm25 import BM25Okapi

    documents = sorted({row["document"] for row in rows})
    position = {d: i for i, d in enumerate(documents)}
    index = BM25Okapi([tokens(d) or [""] for d in documents])
    by_query: dict[str, list[int]] = {}
    for i, row in enumerate(rows):
        by_query.setdefault(row["query_id"], []).append(i)
    scores = [0.0] * len(rows)
    for ix in by_query.values():
        values = index.get_batch_scores(tokens(rows[ix[0]]["query"]), [position[rows[i]["document"]] for i in ix])
        for i, value in zip(ix, values, strict=True):
            scores[i] = float(value)
    return _ranked(rows, scores)


def random_order(rows: list[dict], seed: int = 0) -> Predictions:
    import numpy as np

    return _ranked(rows, np.random.default_rng(seed).random(len(rows)).tolist())


def _ranked(rows: list[dict], scores: list[float]) -> Predictions:
    return Predictions(
        predictions=scores, references=[int(r["gain"]) for r in rows], groups=[r["query_id"] for r in rows]
    )


def untrained_model(model: str, folder: Path, seed: int = 0) -> Path:
    """Save `model` with a fresh one-output head (what the ranking train.py starts from) to `folder`."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    torch.manual_seed(seed)
    AutoTokenizer.from_pretrained(model).save_pretrained(folder)
    AutoModelForSequenceClassification.from_pretrained(model, num_labels=1).save_pretrained(folder)
    return folder


def run_classical(recipe_dir: Path, run_dir: Path, tag: str | None = None, untrained: bool = True, log=print) -> dict:
    """Score the task's classical lines on run `tag`'s splits; write and return <run>/classical.json."""
    from hf_autoresearch.evaluation import Evaluator, compute_metric, eval_setup
    from hf_autoresearch.larger_model import LargerModelError, find_run
    from hf_autoresearch.metrics import load_metric, metric_path
    from hf_autoresearch.recipe import load_recipe
    from hf_autoresearch.tasks import get_task

    folder = find_run(run_dir, recipe_dir, tag)
    config = json.loads((folder / "run.json").read_text())
    recipe = load_recipe(folder / "worktree" / config["recipe_rel"])
    task = get_task(recipe.task)
    splits_dir = folder / "splits"
    labels = json.loads((splits_dir / "train" / "labels.json").read_text())
    rows = {split: read_jsonl(splits_dir / f"{split}.jsonl") for split in SPLITS}
    metric = load_metric(metric_path(recipe.metric.module))
    options = dict(recipe.metric.options)
    lines = []

    def score(name: str, predict) -> None:
        started = time.monotonic()
        entry = {"name": name, "scores": {}}
        for split in SPLITS:
            entry["scores"][split] = compute_metric(metric, predict(rows[split]), options, labels)
            entry[split] = float(entry["scores"][split][recipe.metric.name])
        entry["seconds"] = time.monotonic() - started
        lines.append(entry)
        log(f"{name}: selection {entry['selection']:.4f}, holdout {entry['holdout']:.4f} ({entry['seconds']:.0f} s)")

    from hf_autoresearch.tasks.classification import ClassificationTask
    from hf_autoresearch.tasks.ranking import RankingTask

    if isinstance(task, ClassificationTask):
        train = read_jsonl(splits_dir / "train" / "train.jsonl")
        score("TF-IDF char 2-5 + logistic regression", tfidf_logistic(train, labels, config["seed"]))
    elif isinstance(task, RankingTask):
        score("BM25 over each query's judged documents", bm25)
        score("random order", lambda r: random_order(r, config["seed"]))
        if untrained:
            model = config.get("model") or recipe.model.name
            scratch = Path(tempfile.mkdtemp(prefix="hf-autoresearch-untrained-"))
            try:
                untrained_model(model, scratch / "model", config["seed"])
                started = time.monotonic()
                entry = {"name": f"{Path(model).name} untrained (a fresh one-output head)", "scores": {}}
                with Evaluator(
                    eval_setup(recipe.task, splits_dir, metric_path(recipe.metric.module), options), scratch / "eval"
                ) as evaluation:
                    for split in SPLITS:
                        entry["scores"][split] = evaluation.score(scratch / "model", splits_dir / f"{split}.jsonl")[
                            "scores"
                        ]
                        entry[split] = float(entry["scores"][split][recipe.metric.name])
                entry["seconds"] = time.monotonic() - started
                lines.append(entry)
                log(f"{entry['name']}: selection {entry['selection']:.4f}, holdout {entry['holdout']:.4f}")
            finally:
                shutil.rmtree(scratch, ignore_errors=True)
    else:
        raise LargerModelError(f"no classical line for task {recipe.task!r} (classification and ranking have one)")
    result = {"run": str(folder), "metric": recipe.metric.name, "lines": lines}
    (folder / CLASSICAL_FILE).write_text(json.dumps(result, indent=2))
    return result


def status_lines(folder: Path, best=None) -> list[str]:
    """One line per classical line of run `folder` (none before `hf-autoresearch classical` ran), with the run's
    best experiment's holdout gain over it."""
    file = Path(folder) / CLASSICAL_FILE
    if not file.is_file():
        return []
    out = []
    for line in json.loads(file.read_text())["lines"]:
        text = f"classical: {line['name']}: selection {line['selection']:.4f}, holdout {line['holdout']:.4f}"
        if best is not None and best.holdout is not None:
            text += f" (best {best.experiment} {best.holdout - line['holdout']:+.4f} on holdout)"
        out.append(text)
    return out
