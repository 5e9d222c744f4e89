"""The task interface: everything the harness needs to know about one kind of task, in one small class.

A task reads and splits a data source, names the columns train.py receives, loads a saved model for the frozen
evaluation and predicts, and says how the model is loaded (auto class, pipeline tag). The harness never tests a
task's name: it asks the task. See docs/recipes.md, "Add your own task".
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar


@dataclass
class Splits:
    """Rows of the three splits, under the task's canonical column names, and the label set (classification)."""

    train: list[dict]
    selection: list[dict]
    holdout: list[dict]
    labels: list[str] = field(default_factory=list)


@dataclass
class Predictions:
    """What a frozen predictor returns for a list of rows; a metric module receives these."""

    predictions: list
    references: list
    scores: list[list[float]] | None = None  # per-row class probabilities, for metrics that rank (AP, ROC-AUC)
    inputs: list[str] = field(default_factory=list)  # the rows' inputs as text: samples and previews show them
    groups: list[str] | None = None  # per-row group (ranking: the query id), for metrics that score per group


Predictor = Callable[[list[dict]], Predictions]


class Task(ABC):
    """One kind of task. Subclasses set the class attributes and implement `make_splits` and `load_predictor`.

    Contract:
    - `make_splits(source, data)` returns train / selection / holdout rows whose keys are `columns` (the canonical
      names train.py reads, whatever the source calls them; `data.text_column` / `data.label_column` name the
      source's columns). No row may be in two splits. It raises `hf_autoresearch.data.DataError` on bad data.
    - `load_predictor(model_dir, splits_dir, device)` loads the saved model once (never with remote code) and
      returns a function rows -> Predictions. It raises an error with the reason when the model cannot be scored.
    - `input_text(row)` is the row's input as text, for the contamination check, samples and previews.
    """

    name: ClassVar[str]
    columns: ClassVar[tuple[str, str]]  # (input, target) canonical column names of the rows train.py receives
    default_metric: ClassVar[tuple[str, str]]  # (metric module, the key that decides)
    auto_class: ClassVar[str]  # transformers class that loads a saved model, e.g. AutoModelForSequenceClassification
    pipeline_tag: ClassVar[str]  # the Hub's pipeline tag, for model cards
    scores_untrained: ClassVar[bool] = False  # can an untrained model be scored (baseline --no-train)?
    template: ClassVar[Path | None] = None  # a train.py for `hf-autoresearch init`

    @abstractmethod
    def make_splits(self, source: str, data) -> Splits: ...

    @abstractmethod
    def load_predictor(self, model_dir: Path, splits_dir: Path, device: str) -> Predictor: ...

    def input_text(self, row: dict) -> str:
        return str(row[self.columns[0]])

    def describe(self, splits: Splits) -> str:
        """One line about the prepared data, printed by `run` and `init`."""
        return f"train {len(splits.train)}, selection {len(splits.selection)}, holdout {len(splits.holdout)} rows"
