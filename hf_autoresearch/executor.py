"""Executors run trials. Every executor has this interface (the loop, assess.py and tests/runs.py's FakeExecutor
rely on nothing else):

    workers: int                                    how many trials it runs at once
    submit(spec) -> Future[TrialResult]             train + score on the selection split; never raises for a bad
                                                    train.py (the result says crash / timeout)
    score_holdout(result) -> Future[TrialResult]    score a kept trial's model on the holdout
    model(result) -> Path | None                    the trial's saved model as a local folder (fetched if remote)
    discard(result)                                 its model is not needed any more
    slots() -> list[dict]                           what each slot runs now: {"slot", "experiment", "run", "kind",
                                                    "phase", "started"} or {"slot"} when idle
    close()                                         stop everything still running (its processes die) and clean up

The local executor has `workers` slots on this machine, each a scratch folder (outside the run folder, which
train.py must not see), a warm evaluation process, and a share of the machine: GPUs as CUDA_VISIBLE_DEVICES, CPU
threads as OMP/MKL threads. A slot needs no git worktree: a trial carries the text of its train.py. With one worker a
trial runs in the caller's thread, so Ctrl-C reaches the training loop directly.
"""

from __future__ import annotations

import hashlib
import os
import queue
import shutil
import sys
import tempfile
import time
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from hf_autoresearch import reaper
from hf_autoresearch.errors import UserError
from hf_autoresearch.evaluation import EvalSetup, Evaluator
from hf_autoresearch.runner import OWNER_VARIABLE, THREAD_VARIABLES, kill_owned
from hf_autoresearch.tasks import task_files
from hf_autoresearch.trial import TrialEnv, TrialResult, TrialSpec, run_trial, score


@dataclass
class Slot:
    index: int
    scratch: Path
    evaluator: Evaluator
    job_options: dict = field(default_factory=dict)  # cpu_threads, cuda_devices, num_processes, owner: the runner's
    current: dict | None = None  # the trial it runs now, for slots()


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
        hashed_extra=tuple(task_files(config.task)),
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


def make_executor(campaign):
    """The executor the run's options ask for: --executor local (default) or ray."""
    config = campaign.config
    if config.executor == "ray":
        from hf_autoresearch.ray_executor import RayExecutor

        return RayExecutor(campaign, config.workers, config.gpus_per_experiment, config.ray_address)
    return LocalExecutor(campaign, config.workers, config.gpus_per_experiment)


def check_executor(config) -> None:
    """Fail in seconds, before any data is prepared, on executor options that cannot work here."""
    if (config.workers is not None and config.workers < 1) or config.gpus_per_experiment < 1:
        raise UserError("--workers and --gpus-per-experiment must be at least 1")
    if config.executor == "ray":
        from hf_autoresearch.ray_executor import import_ray

        import_ray()
        return
    k = config.gpus_per_experiment
    workers = default_workers(k) if config.workers is None else config.workers
    slot_shares(workers, k, visible_gpus(), usable_cpus())


def run_owner(campaign) -> str:
    """The id every process of this run carries (HF_AUTORESEARCH_OWNER); the same across sessions, so a resumed
    run can kill what a killed one left running."""
    digest = hashlib.sha1(str(campaign.folder.resolve()).encode()).hexdigest()[:10]
    return f"{campaign.config.tag}@{digest}"


def visible_gpus() -> list[str]:
    """The GPUs this process may use, as CUDA_VISIBLE_DEVICES names them (indices when it is unset)."""
    import torch

    if not torch.cuda.is_available():
        return []
    given = os.environ.get("CUDA_VISIBLE_DEVICES")
    if given is not None:
        return [d.strip() for d in given.split(",") if d.strip()]
    return [str(i) for i in range(torch.cuda.device_count())]


def default_workers(gpus_per_experiment: int = 1) -> int:
    """One experiment per GPU (or per K GPUs); 1 without a GPU."""
    return max(1, len(visible_gpus()) // max(1, gpus_per_experiment))


def usable_cpus() -> int:
    """The cores this process may run on: its affinity mask (taskset, a container's cpuset), else the machine's."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # no affinity masks (macOS)
        return os.cpu_count() or 1


def slot_shares(workers: int, gpus_per_experiment: int, gpus: list[str], cpus: int) -> list[dict]:
    """The runner options of each slot: its GPUs (K each, none shared) and its CPU threads, set when there are several
    slots or when this process may use fewer than all the machine's cores (a thread pool sized to the machine on a
    pinned process oversubscribes its cores)."""
    if workers < 1 or gpus_per_experiment < 1:
        raise UserError("--workers and --gpus-per-experiment must be at least 1")
    threads = max(1, cpus // workers) if workers > 1 or cpus < (os.cpu_count() or 1) else None
    if not gpus:
        return [{"cpu_threads": threads} for _ in range(workers)]
    needed = workers * gpus_per_experiment
    if needed > len(gpus):
        raise UserError(
            f"--workers {workers} with --gpus-per-experiment {gpus_per_experiment} needs {needed} GPUs; "
            f"{len(gpus)} are visible ({','.join(gpus)})"
        )
    k = gpus_per_experiment
    return [
        {"cpu_threads": threads, "cuda_devices": ",".join(gpus[i * k : (i + 1) * k]), "num_processes": k}
        for i in range(workers)
    ]


class LocalExecutor:
    """Trials as subprocesses on this machine, at most `workers` at once."""

    name = "local"

    def __init__(self, campaign, workers: int | None = None, gpus_per_experiment: int = 1):
        self.env = trial_env(campaign)
        self.workers = default_workers(gpus_per_experiment) if workers is None else workers
        shares = slot_shares(self.workers, gpus_per_experiment, visible_gpus(), usable_cpus())
        self.owner = run_owner(campaign)
        kill_owned(self.owner)  # what a killed session of this run left behind
        self.root = Path(tempfile.mkdtemp(prefix="hf-autoresearch-"))  # outside the run folder train.py must not see
        self.reaper = reaper.start(self.owner, [self.root])
        setup = eval_setup(campaign)
        self.all_slots: list[Slot] = []
        self.free: queue.Queue[Slot] = queue.Queue()
        for i, share in enumerate(shares):
            folder = self.root / f"slot-{i}"
            evaluator = Evaluator(setup, folder / "eval", env=_evaluation_env(share, self.owner))
            slot = Slot(i, folder, evaluator, {**share, "owner": self.owner})
            self.all_slots.append(slot)
            self.free.put(slot)
        self.pool = ThreadPoolExecutor(self.workers, thread_name_prefix="slot") if self.workers > 1 else None
        self.closing = False

    def _on_slot(self, work, *args) -> Future:
        def job():
            slot = self.free.get()
            try:
                if self.closing:  # queued before close(): never start it
                    raise CancelledError
                return work(slot, *args)
            finally:
                slot.current = None
                self.free.put(slot)

        if self.pool is not None:
            return self.pool.submit(job)
        future: Future = Future()  # one slot: run now, in this thread, so Ctrl-C reaches the training loop
        try:
            future.set_result(job())
        except Exception as err:  # as a pool would: the caller sees it in the future
            future.set_exception(err)
        return future

    def submit(self, spec: TrialSpec) -> Future[TrialResult]:
        def work(slot: Slot, spec: TrialSpec) -> TrialResult:
            slot.current = _running(spec, "training")
            scratch = slot.scratch / f"exp-{spec.number:04d}-run{spec.index}"

            def on_phase(phase: str) -> None:
                slot.current = {**slot.current, "phase": phase}

            result = run_trial(spec, self.env, scratch, slot.evaluator, on_phase=on_phase, **slot.job_options)
            result.slot = f"local-{slot.index}"
            return result

        return self._on_slot(work, spec)

    def score_holdout(self, result: TrialResult) -> Future[TrialResult]:
        """Score a trial's model on the holdout (only ever after its experiment was kept)."""

        def work(slot: Slot, result: TrialResult) -> TrialResult:
            slot.current = _running(result.spec, "holdout")
            score(result, "holdout", self.env, slot.evaluator)
            return result

        return self._on_slot(work, result)

    def model(self, result: TrialResult) -> Path | None:
        return result.model_dir

    def discard(self, result: TrialResult) -> None:
        """Free the disk a trial's scratch folder holds (its model was not kept)."""
        if result.model_dir is not None and Path(result.model_dir).is_relative_to(self.root):
            shutil.rmtree(Path(result.model_dir).parents[1], ignore_errors=True)

    def slots(self) -> list[dict]:
        return [{"slot": f"local-{s.index}", **(s.current or {})} for s in self.all_slots]

    def close(self) -> None:
        """Stop what still runs: every training and evaluation of the run is killed, then the slots are cleaned."""
        self.closing = True
        if self.pool is not None:
            self.pool.shutdown(wait=False, cancel_futures=True)
        while True:
            kill_owned(self.owner)  # trainings die; their slot threads see it and return at once
            if self.free.qsize() == self.workers:  # every slot is back
                break
            time.sleep(0.2)
        if self.pool is not None:
            self.pool.shutdown(wait=True)
        for slot in self.all_slots:
            slot.evaluator.close()
        reaper.stop(self.reaper)
        shutil.rmtree(self.root, ignore_errors=True)


def _running(spec: TrialSpec, phase: str) -> dict:
    return {"experiment": spec.number, "run": spec.index, "kind": spec.kind, "phase": phase, "started": time.time()}


def _evaluation_env(share: dict, owner: str) -> dict:
    """The evaluation process of a slot: its first GPU, its CPU threads, and the run's owner id (so it is reaped)."""
    env = {**os.environ, OWNER_VARIABLE: owner}
    if share.get("cpu_threads"):
        env.update(dict.fromkeys(THREAD_VARIABLES, str(share["cpu_threads"])))
    if share.get("cuda_devices"):
        env["CUDA_VISIBLE_DEVICES"] = share["cuda_devices"].split(",")[0]
    return env
