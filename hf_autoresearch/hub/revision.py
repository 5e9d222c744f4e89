"""The files of one Hub revision and the commit that carries them.

A revision holds the model folder as train.py saved it (weights or adapter, tokenizer, summary.json), the train.py
of that git commit, `autoresearch.json` and a model card. Its commit description ends with a marker line naming the
run, the experiment and the git commit, so a retry can tell that an earlier attempt's commit landed.
"""

from __future__ import annotations

import json
from pathlib import Path

from hf_autoresearch.formatting import score
from hf_autoresearch.hub.card import model_card
from hf_autoresearch.hub.names import HubError
from hf_autoresearch.ledger import ExperimentRecord
from hf_autoresearch.reporting.summary import RunSummary, short

SKIP_FILES = ("training_args.bin",)  # a pickle of Trainer arguments: no use to a user, flagged by the Hub
KEEP_ON_HUB = (".gitattributes",)  # never deleted when a revision replaces the files of the previous one


def revision_files(summary: RunSummary, record: ExperimentRecord, repo_id: str, on_hub: dict[int, dict]) -> dict:
    """path in repo -> local Path or bytes: everything one revision holds."""
    model_dir = summary.folder / "models" / record.experiment
    if not (model_dir.is_dir() and any(model_dir.iterdir())):
        raise HubError(f"{record.experiment} has no model folder at {model_dir}; only kept experiments keep one")
    files: dict[str, Path | bytes] = {
        p.relative_to(model_dir).as_posix(): p
        for p in sorted(model_dir.rglob("*"))
        if p.is_file() and p.name not in SKIP_FILES
    }
    if "summary.json" not in files:
        files["summary.json"] = json.dumps(record.summary, indent=2).encode()
    files["train.py"] = (summary.train_py_at(record.commit) + "\n").encode()
    config = summary.config
    meta = {
        "run": summary.tag,
        "recipe": config.recipe_rel,
        "task": summary.task,
        "experiment": record.experiment,
        "description": record.description,
        "git_commit": record.commit,
        "git_parent": record.parent,
        "git_branch": config.branch,
        "metric": summary.metric,
        "direction": summary.direction,
        "selection": record.selection,
        "holdout": record.holdout,
        "scores": record.scores,
        "decision": record.decision,
        "seed": record.seed,
        "budget_seconds": config.budget,
        "train_seconds": record.train_seconds,
        "base_model": config.model,
        "data": config.data,
    }
    files["autoresearch.json"] = json.dumps(meta, indent=2).encode()
    files["README.md"] = str(model_card(summary, record, repo_id, on_hub)).encode()
    return files


def commit_message(summary: RunSummary, record: ExperimentRecord) -> str:
    return (
        f"{record.experiment}: {short(record.description, 80)} | {summary.metric} {score(record.selection)} "
        f"(selection) | train.py @ {record.commit[:12]}"
    )


def commit_marker(summary: RunSummary, record: ExperimentRecord) -> str:
    """The line that identifies the commit of this experiment among the branch's commits."""
    return f"hf-autoresearch: run {summary.tag} {record.experiment} git {record.commit}"


def commit_description(summary: RunSummary, record: ExperimentRecord) -> str:
    return (
        f"run {summary.tag}, {record.experiment}: {record.description}\n\n"
        f"{summary.metric}: selection {score(record.selection)}, holdout {score(record.holdout)}\n"
        f"git commit: {record.commit} ({summary.train_py_rel})\n\n{commit_marker(summary, record)}"
    )
