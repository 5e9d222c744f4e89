"""A task type that is not shipped: is a text longer than a threshold? Its "model" is a config.json holding the
threshold, so it trains in no time. It proves the harness runs a task it does not know by name."""

from __future__ import annotations

import json
from pathlib import Path

from hf_autoresearch.tasks import Predictions, Splits, Task

LABELS = ["long", "short"]


class LengthTask(Task):
    name = "length"
    columns = ("sentence", "size")
    default_metric = ("classification", "accuracy")
    auto_class = "AutoConfig"
    pipeline_tag = "text-classification"
    scores_untrained = False

    def make_splits(self, source: str, data) -> Splits:
        from hf_autoresearch.data import carve, load_source

        loaded = load_source(source)

        def rows(ds):
            return [{"sentence": r[data.text_column], "size": _size(r[data.text_column])} for r in ds.to_list()]

        train, selection = carve(rows(loaded["train"]), data.selection_fraction, data.split_seed, "size")
        return Splits(train, selection, rows(loaded["test"]), labels=LABELS)

    def load_predictor(self, model_dir: Path, splits_dir: Path, device: str):
        threshold = json.loads((Path(model_dir) / "config.json").read_text())["threshold"]

        def predict(rows):
            predicted = [LABELS.index("long" if len(r["sentence"]) > threshold else "short") for r in rows]
            return Predictions(
                predicted, [LABELS.index(r["size"]) for r in rows], inputs=[r["sentence"] for r in rows]
            )

        return predict


def _size(text: str) -> str:
    return "long" if len(text) > 40 else "short"
