"""Executors run trials: `submit(spec) -> Future[TrialResult]`. The local executor has slots on this machine,
each with its own scratch folder and warm evaluation process; with one slot a trial runs in the caller's thread.
"""

from __future__ import annotations

import queue
import shutil
import sys
import tempfile
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from hf_autoresearch.evaluation import EvalSetup, Evaluator
from hf_autoresearch.trial import TrialEnv, TrialResult, TrialSpec, run_trial, score


@dataclass
class Slot:
    index: int
    scratch: Path
    evaluator: Evaluator
    job_options: dict = field(default_factory=dict)  # cpu_threads, cuda_devices... for the runner


def trial_env(campaign) -> TrialEnv:
    from hf_autoresearch.sandbox import hidden_paths

    config = campaign.config
    return TrialEnv(
        splits=campaign.splits,
        model=config.model,
        budget=config.budget,
        grace=config.grace,
        metric=campaign.recipe.metric.name,
        metric_dir=campaign.metric_dir,
        evaluation_hashes=config.evaluation_hashes,
        accelerate_args=tuple(config.accelerate_args),
        sandbox_hidden=tuple(hidden_paths(campaign.folder.parent, config.data)) if config.sandbox else None,
        samples_dir=campaign.folder / "samples",
    )


def eval_setup(campaign) -> EvalSetup:
    task = campaign.task
    module = sys.modules[type(task).__module__]
    python_path = []
    if not type(task).__module__.startswith("hf_autoresearch."):  # a task given by import path
        depth = type(task).__module__.count(".") + 1
        python_path.append(str(Path(module.__file__).resolve().parents[depth - 1]))
    return EvalSetup(
        task=campaign.config.task,
        splits_dir=str(campaign.splits),
        metric_path=str(campaign.metric_dir),
        metric_options=dict(campaign.recipe.metric.options),
        python_path=python_path,
    )


class LocalExecutor:
    """Trials as subprocesses on this machine, at most `workers` at once."""

    name = "local"

    def __init__(self, campaign, workers: int = 1):
        self.env = trial_env(campaign)
        self.root = Path(tempfile.mkdtemp(prefix="hf-autoresearch-"))  # outside the run folder train.py must not see
        setup = eval_setup(campaign)
        self.workers = workers
        self.free: queue.Queue[Slot] = queue.Queue()
        for i in range(workers):
            self.free.put(Slot(i, self.root / f"slot-{i}", Evaluator(setup, self.root / f"slot-{i}" / "eval")))
        self.pool = ThreadPoolExecutor(workers, thread_name_prefix="slot") if workers > 1 else None

    def _on_slot(self, work, *args) -> Future:
        def job():
            slot = self.free.get()
            try:
                return work(slot, *args)
            finally:
                self.free.put(slot)

        if self.pool is not None:
            return self.pool.submit(job)
        future: Future = Future()
        future.set_result(job())  # one slot: run now, in this thread, so Ctrl-C reaches the training loop
        return future

    def submit(self, spec: TrialSpec) -> Future[TrialResult]:
        def work(slot: Slot, spec: TrialSpec) -> TrialResult:
            scratch = slot.scratch / f"exp-{spec.number:04d}-run{spec.index}"
            return run_trial(spec, self.env, scratch, slot.evaluator, **slot.job_options)

        return self._on_slot(work, spec)

    def score_holdout(self, result: TrialResult) -> Future[TrialResult]:
        """Score a trial's model on the holdout (only ever after its experiment was kept)."""

        def work(slot: Slot, result: TrialResult) -> TrialResult:
            score(result, "holdout", self.env, slot.evaluator)
            return result

        return self._on_slot(work, result)

    def discard(self, result: TrialResult) -> None:
        """Free the disk a trial's scratch folder holds (its model was not kept)."""
        if result.model_dir is not None:
            shutil.rmtree(Path(result.model_dir).parents[1], ignore_errors=True)

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
        while not self.free.empty():
            self.free.get().evaluator.close()
        shutil.rmtree(self.root, ignore_errors=True)
