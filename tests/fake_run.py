"""A run folder written without training: real git commits of train.py in a real worktree, ledger rows with the
given outcomes, and small stand-in model folders for the keeps. For tests of what reads a finished run."""

from __future__ import annotations

import json
import re
from dataclasses import asdict
from pathlib import Path

from hf_autoresearch.ledger import ExperimentRecord, Ledger
from hf_autoresearch.options import RunConfig
from hf_autoresearch.workspace import Workspace


def fake_run(project: Path, run_dir: Path, tag: str, outcomes: list[dict]) -> Path:
    """`outcomes`: dicts with status, description and optional selection, holdout, lr (edits LEARNING_RATE)."""
    recipe = project / "recipes" / "intent-categorization"
    folder = run_dir / tag
    folder.mkdir(parents=True)
    ws = Workspace.create(recipe, folder / "worktree", f"autoresearch/{tag}")
    config = RunConfig(
        tag=tag,
        recipe=str(recipe),
        repo=str(project),
        recipe_rel="recipes/intent-categorization",
        branch=f"autoresearch/{tag}",
        agent="replay",
        task="classification",
        model="sentence-transformers/all-MiniLM-L6-v2",
        data="PolyAI/banking77",
        budget=60.0,
        grace=30.0,
        seed=0,
        min_delta=0.0,
        started_at="2026-11-28T05:00:00+00:00",
    )
    (folder / "run.json").write_text(json.dumps(asdict(config), indent=2))
    ledger = Ledger(folder)
    best = ""
    for number, o in enumerate(outcomes):
        status = o["status"]
        commit = ""
        if number == 0:
            commit = ws.head()
        elif status != "invalid":
            text = re.sub(
                r"^LEARNING_RATE = \S+",
                f"LEARNING_RATE = {o.get('lr', number + 10)}e-4",
                ws.train_py.read_text(),
                flags=re.M,
            )
            ws.train_py.write_text(text)
            commit = ws.commit(f"exp-{number:04d}: {o['description']}")
        diff = ""
        if commit and best:
            from hf_autoresearch.workspace import git

            diff = git(ws.worktree, "diff", best, commit)
        record = ExperimentRecord(
            number=number,
            status=status,
            description=o["description"],
            commit=commit,
            parent=best,
            selection=o.get("selection"),
            holdout=o.get("holdout") if status == "keep" else None,
            scores={
                k: {"accuracy": o[k], "macro_f1": o[k] * 0.9}
                for k in ("selection", "holdout")
                if o.get(k) is not None and (k == "selection" or status == "keep")
            },
            train_seconds=o.get("train_seconds", 40.0),
            total_seconds=o.get("total_seconds", 70.0),
            timings={"agent": 3.0, "process": 40.0},
            reason=o.get("reason", ""),
            diff=diff,
            proposal=o.get("proposal", {}),
            decision=o.get("decision", {}),
            finished_at=f"2026-11-28T05:{number + 1:02d}:00+00:00",
        )
        ledger.append(record)
        if status == "keep":
            best = commit
            model = folder / "models" / record.experiment
            model.mkdir(parents=True)
            (model / "config.json").write_text(json.dumps({"architectures": ["BertForSequenceClassification"]}))
            (model / "model.safetensors").write_bytes(f"weights of {record.experiment}".encode())
            (model / "tokenizer.json").write_text("{}")
            (model / "summary.json").write_text(json.dumps({"training_seconds": 40.0, "seed": 0}))
            (model / "training_args.bin").write_bytes(b"pickle")
        elif best:
            ws.reset(best)
    return folder
