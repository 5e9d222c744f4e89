"""--executor local (the default): `workers` slots on this machine, each a scratch folder (outside the run folder,
which train.py must not see), a warm evaluation process, and a share of the machine: GPUs as CUDA_VISIBLE_DEVICES,
CPU threads as OMP/MKL threads. A slot needs no git worktree: a trial carries the text of its train.py. With one
worker a trial runs in the caller's thread, so Ctrl-C reaches the training loop directly.
"""

from __future__ import annotations

import hashlib
import os
import queue
import shutil
import tempfile
import time
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from hf_autoresearch.errors import UserError
from hf_autoresearch.evaluation import Evaluator
from hf_autoresearch.executors import check_workers, reaper
from hf_autoresearch.executors.runner import OWNER_VARIABLE, THREAD_VARIABLES, kill_owned
from hf_autoresearch.executors.trial import TrialResult, TrialSpec, run_trial, score, trial_env
from hf_autoresearch.ledger import experiment_id


@dataclass
class Slot:
    index: int
    scratch: Path
    evaluator: Evaluator
    job_options: dict = field(default_factory=dict)  # cpu_threads, cuda_devices, num_processes, owner: the runner's
    current: dict | None = None  # the trial it runs now, for slots()


def run_owner(run) -> str:
    """The id every process of this run carries (HF_AUTORESEARCH_OWNER); the same across sessions, so a resumed
    run can kill what a killed one left running."""
    digest = hashlib.sha1(str(run.folder.resolve()).encode()).hexdigest()[:10]
    return f"{run.config.tag}@{digest}"


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
    check_workers(workers, gpus_per_experiment)
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

    def __init__(self, run, workers: int | None = None, gpus_per_experiment: int = 1):
        self.env = trial_env(run)
        self.workers = default_workers(gpus_per_experiment) if workers is None else workers
        shares = slot_shares(self.workers, gpus_per_experiment, visible_gpus(), usable_cpus())
        self.owner = run_owner(run)
        kill_owned(self.owner)  # what a killed session of this run left behind
        self.root = Path(tempfile.mkdtemp(prefix="hf-autoresearch-"))  # outside the run folder train.py must not see
        self.reaper = reaper.start(self.owner, [self.root])
        setup = run.eval_setup()
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
            scratch = slot.scratch / f"{experiment_id(spec.number)}-run{spec.index}"

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
