"""One trial: train one train.py once with one seed, then score the saved model on the selection split.

A trial is the unit of work that an executor runs (a local slot, a Ray task): `TrialSpec` in, `TrialResult` out,
nothing shared but files. An experiment is one trial, or several (the baseline's repeats, a confirmation run).
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from hf_autoresearch.evaluation import EvaluationError, Evaluator
from hf_autoresearch.executors.runner import TrainingJob, run_training
from hf_autoresearch.experiment import CURVE_FILE
from hf_autoresearch.ledger import experiment_id
from hf_autoresearch.tamper import verify
from hf_autoresearch.tasks import task_files


@dataclass
class TrialSpec:
    number: int  # the experiment
    index: int  # 0: its first run; 1...: baseline repeats or the confirmation run
    seed: int
    train_py: str  # the script's text at the experiment's commit: a trial needs no worktree
    log_path: Path
    description: str = ""
    commit: str = ""  # the git commit train_py comes from
    kind: str = "first run"  # baseline, first run, confirmation, re-applied: what the trial is for


@dataclass
class TrialResult:
    spec: TrialSpec
    status: str  # ok / crash / timeout
    reason: str = ""
    selection: float | None = None  # the deciding metric on the selection split
    holdout: float | None = None  # ... on the holdout, scored only for a keep, reported only
    scores: dict = field(default_factory=dict)  # {"selection": {...}, later "holdout": {...}}
    model_dir: Path | None = None  # the saved model, in the trial's scratch folder until the experiment decides
    summary: dict = field(default_factory=dict)  # summary.json as train.py wrote it (never trusted for scores)
    training: dict = field(default_factory=dict)  # the curve and schedule the helper's callback recorded (curve.json)
    process_seconds: float = 0.0  # accelerate launch to exit
    eval_seconds: float = 0.0
    peak_rss_mb: float = 0.0
    log_tail: str = ""
    started_at: float = 0.0  # Unix times, so overlapping trials can be seen in the ledger
    finished_at: float = 0.0
    slot: str = ""  # where it ran: "local-0", "ray:NODE"...
    remote_model: object = None  # a remote executor's handle on the saved model (`executor.model(result)` fetches it)

    def to_dict(self) -> dict:
        """The trial as the ledger keeps it (`trials` of an experiment record)."""
        return {
            "seed": self.spec.seed,
            "kind": self.spec.kind,
            "commit": self.spec.commit,
            "status": self.status,
            "selection": self.selection,
            "holdout": self.holdout,
            "scores": self.scores,
            "train_seconds": self.process_seconds,
            "train_loop": self.summary.get("training_seconds"),
            "final_loss": self.training.get("final_loss"),
            "completed_steps": self.training.get("completed_steps"),
            "eval_seconds": self.eval_seconds,
            "log": str(self.spec.log_path),
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "slot": self.slot,
        }


@dataclass
class TrialEnv:
    """What every trial of a run shares: read from the run once, so a trial can run anywhere."""

    splits: Path
    model: str
    budget: float
    grace: float
    metric: str
    metric_dir: Path
    evaluation_hashes: dict
    hashed_extra: tuple[Path, ...] = ()  # code outside the package the evaluation runs (a task given by import path)
    accelerate_args: tuple[str, ...] = ()
    sandbox_hidden: tuple[Path, ...] | None = None
    samples_dir: Path | None = None


def samples_file(samples_dir: Path, number: int, split: str) -> Path:
    """Where the generations an evaluation saved for experiment `number` on `split` are kept."""
    return Path(samples_dir) / f"{experiment_id(number)}-{split}.jsonl"


def trial_env(run) -> TrialEnv:
    """What every trial of `run` needs besides its own spec: data, model, budget, the evaluation's fingerprints."""
    from hf_autoresearch.executors.sandbox import hidden_paths

    config = run.config
    return TrialEnv(
        splits=run.splits,
        model=config.model,
        budget=config.budget,
        grace=config.grace,
        metric=run.recipe.metric.name,
        metric_dir=run.metric_dir,
        evaluation_hashes=config.evaluation_hashes,
        hashed_extra=tuple(task_files(config.task)),
        accelerate_args=tuple(config.accelerate_args),
        sandbox_hidden=tuple(hidden_paths(run.folder.parent, config.data)) if config.sandbox else None,
        samples_dir=run.folder / "samples",
    )


def run_trial(
    spec: TrialSpec, env: TrialEnv, scratch: Path, evaluator: Evaluator, on_phase=None, **job_options
) -> TrialResult:
    """Train in `scratch` (emptied first), then score selection with `evaluator`. Never raises for a bad train.py.
    `on_phase("evaluation")` is called when training ends; `job_options` pin the training (see runner.TrainingJob)."""
    shutil.rmtree(scratch, ignore_errors=True)
    (scratch / "src").mkdir(parents=True)
    train_py = scratch / "src" / "train.py"
    train_py.write_text(spec.train_py)
    evaluator.release()  # the warm evaluation process holds no model while training runs
    started = time.time()
    trained = run_training(
        TrainingJob(
            train_py=train_py,
            scratch=scratch / "job",
            train_data=env.splits / "train",
            model=env.model,
            seed=spec.seed,
            budget_seconds=env.budget,
            grace_seconds=env.grace,
            log_path=spec.log_path,
            accelerate_args=env.accelerate_args,
            sandbox_hidden=env.sandbox_hidden,
            **job_options,
        )
    )
    result = TrialResult(
        spec,
        trained.status,
        reason=trained.reason,
        summary=_read_summary(trained.output_dir),
        training=read_training(trained.output_dir),
        process_seconds=trained.seconds,
        peak_rss_mb=trained.peak_rss_mb,
        log_tail=trained.log_tail,
        started_at=started,
    )
    if trained.status == "ok":
        result.model_dir = trained.output_dir
        if on_phase is not None:
            on_phase("evaluation")
        score(result, "selection", env, evaluator)
    result.finished_at = time.time()
    return result


def score(result: TrialResult, split: str, env: TrialEnv, evaluator: Evaluator) -> None:
    """Score the trial's model on `split` after the tamper check. A failed selection score makes the trial a crash;
    a failed holdout score (after the decision) is only noted in `reason`."""
    verify(env.evaluation_hashes, env.metric_dir, env.hashed_extra)
    samples = None
    if env.samples_dir is not None and result.spec.index == 0:
        samples = samples_file(env.samples_dir, result.spec.number, split)
        samples.parent.mkdir(parents=True, exist_ok=True)
    try:
        answer = evaluator.score(result.model_dir, env.splits / f"{split}.jsonl", samples)
    except EvaluationError as err:
        return _failed(result, split, f"{split} evaluation failed: {err}")
    scores = dict(answer["scores"])
    if env.metric not in scores:
        return _failed(result, split, f"the metric returned {sorted(scores)}, not {env.metric!r}")
    result.scores[split] = scores
    result.eval_seconds += answer["wall_seconds"]
    setattr(result, split, float(scores[env.metric]))


def _failed(result: TrialResult, split: str, reason: str) -> None:
    result.reason = reason
    if split == "selection":
        result.status = "crash"


def read_training(output_dir: Path) -> dict:
    """curve.json as the helper's callback wrote it, plus `save_seconds`: from the last step to the last file of the
    saved model. {} when train.py did not use the callback (or died before the end of training)."""
    try:
        training = json.loads((Path(output_dir) / CURVE_FILE).read_text())
    except (OSError, json.JSONDecodeError):
        return {}
    if not isinstance(training, dict):
        return {}
    end = training.get("train_end_at")
    saved = [f.stat().st_mtime for f in Path(output_dir).rglob("*") if f.is_file() and f.name != CURVE_FILE]
    if isinstance(end, int | float) and saved:
        training["save_seconds"] = max(0.0, max(saved) - end)
    return training


def _read_summary(output_dir: Path) -> dict:
    try:
        return json.loads((Path(output_dir) / "summary.json").read_text())
    except (OSError, json.JSONDecodeError):
        return {}
