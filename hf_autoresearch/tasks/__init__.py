"""Task plug-ins: one module a task type, found by name in a small registry.

`get_task("classification")` gives the task a recipe's `task = ...` names. A task outside this package is named
by its import path, `task = "my_package.my_module:MyTask"`, or registered with `register`; the frozen evaluation
(a separate process) imports it the same way, so an import path works everywhere.
"""

from __future__ import annotations

import importlib
from functools import cache
from pathlib import Path

from hf_autoresearch.tasks.base import Predictions, Splits, Task

__all__ = ["Predictions", "Splits", "Task", "get_task", "prepare_splits", "register", "task_files", "task_names"]

# name -> "module:Class"; imported on first use so `--help` and `recipes` stay fast
_REGISTRY: dict[str, str] = {
    "classification": "hf_autoresearch.tasks.classification:ClassificationTask",
    "query-expansion": "hf_autoresearch.tasks.query_expansion:QueryExpansionTask",
    "ranking": "hf_autoresearch.tasks.ranking:RankingTask",
}


class UnknownTask(LookupError):
    pass


def register(name: str, spec: str) -> None:
    """Make `name` mean the task class at import path `spec` ("module:Class")."""
    _REGISTRY[name] = spec
    get_task.cache_clear()


def task_names() -> list[str]:
    return sorted(_REGISTRY)


@cache
def get_task(name: str) -> Task:
    """The task called `name` (a registered name or a "module:Class" import path)."""
    spec = _REGISTRY.get(name, name)
    module_name, sep, class_name = spec.partition(":")
    if not sep:
        raise UnknownTask(
            f"unknown task {name!r}; use one of {', '.join(task_names())}, or an import path 'package.module:Class'"
        )
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as err:
        raise UnknownTask(f"task {name!r}: cannot import {spec} ({type(err).__name__}: {err})") from err
    if not (isinstance(cls, type) and issubclass(cls, Task)):
        raise UnknownTask(f"task {name!r}: {spec} is not a subclass of hf_autoresearch.tasks.Task")
    return cls()


def task_files(name: str) -> list[Path]:
    """The source file of a task that lives outside this package (the tamper check hashes it); [] for ours."""
    module = type(get_task(name)).__module__
    if module.startswith("hf_autoresearch."):
        return []
    return [Path(importlib.import_module(module).__file__).resolve()]


def prepare_splits(task_name: str, source: str, data) -> Splits:
    """The splits of `source` for a task, with a recipe's [data] settings, evaluation rows capped as it asks."""
    from hf_autoresearch.data import cap_eval_rows

    splits = get_task(task_name).make_splits(source, data)
    return cap_eval_rows(splits, data.max_eval_rows, data.split_seed)
