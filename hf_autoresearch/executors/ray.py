"""--executor ray: each trial (training + its selection evaluation, each still in its own process) is a Ray task
asking for K GPUs (`num_gpus`), or a share of the CPUs on a CPU-only cluster. `pip install 'hf-autoresearch[ray]'`.

What travels through Ray's object store: once per run, the training split, the selection split with the label names
and the metric's code (the holdout split only ever goes to the holdout task of a keep); per trial, the text of its
train.py. The task checks on the worker that the evaluation code it runs (its installed hf_autoresearch and the
shipped metric) hashes as it did when the run started (the tamper check), and returns the result with the saved
model as a second object that stays in the cluster until the experiment is kept (then the driver fetches it into
the run folder, and the holdout task reads it there) or is dropped.

A killed Ray worker cannot leave training behind: the task starts the reaper (reaper.py) for its own processes.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
import uuid
from concurrent.futures import Future
from pathlib import Path

from hf_autoresearch.errors import UserError
from hf_autoresearch.executors import check_workers
from hf_autoresearch.executors.ray_worker import holdout_task, pack, scratch_folder, train_task, unpack
from hf_autoresearch.executors.trial import TrialEnv, TrialResult, TrialSpec, samples_file, trial_env
from hf_autoresearch.ledger import experiment_id
from hf_autoresearch.tamper import PACKAGE


def import_ray():
    try:
        import ray
    except ImportError as err:
        raise UserError("--executor ray needs Ray: pip install 'hf-autoresearch[ray]'") from err
    return ray


class RayExecutor:
    name = "ray"

    def __init__(self, run, workers: int | None = None, gpus_per_experiment: int = 1, address: str | None = None):
        ray = self.ray = import_ray()
        self.started_ray = not ray.is_initialized()
        if self.started_ray:  # a local Ray unless an address is given (or RAY_ADDRESS is set)
            local = {}
            if not (address or os.environ.get("RAY_ADDRESS")):
                # at least one CPU a worker: Ray kills idle worker processes beyond its CPU count, and with them
                # the warm evaluation processes they keep between trials
                local["num_cpus"] = max(os.cpu_count() or 1, workers or 1)
            ray.init(address=address, include_dashboard=False, log_to_driver=False, logging_level="warning", **local)
        resources = ray.cluster_resources()
        gpus, cpus = int(resources.get("GPU", 0)), float(resources.get("CPU", 1))
        self.workers = max(1, gpus // gpus_per_experiment) if workers is None else workers
        check_workers(self.workers, gpus_per_experiment)
        if gpus and self.workers * gpus_per_experiment > gpus:
            raise UserError(
                f"--workers {self.workers} with --gpus-per-experiment {gpus_per_experiment} needs "
                f"{self.workers * gpus_per_experiment} GPUs; the Ray cluster has {gpus}"
            )
        share = cpus / self.workers
        self.options = {"num_gpus": gpus_per_experiment, "num_cpus": 1} if gpus else {"num_cpus": share}
        self.job = {"num_processes": gpus_per_experiment if gpus else 1}
        if not gpus and self.workers > 1:
            self.job["cpu_threads"] = max(1, int(share))
        self.env = trial_env(run)
        self.data = ray.put(_payload(run, self.env))
        self.holdout_file = ray.put((run.splits / "holdout.jsonl").read_bytes())
        self.train = ray.remote(max_retries=0)(train_task).options(num_returns=2, **self.options)
        self.holdout = ray.remote(max_retries=0)(holdout_task).options(**self.options)
        self.root = scratch_folder()  # fetched models, until they are moved
        self.running: dict[int, tuple[object, dict]] = {}  # id(ref) -> (ref, slot view); Ray's threads update it
        self.lock = threading.Lock()

    def submit(self, spec: TrialSpec) -> Future[TrialResult]:
        result_ref, model_ref = self.train.remote(spec, self.data, self.job)
        view = {"experiment": spec.number, "run": spec.index, "kind": spec.kind, "phase": "training"}

        def done(answer: tuple[TrialResult, str, str]) -> TrialResult:
            result, log, samples = answer
            spec.log_path.parent.mkdir(parents=True, exist_ok=True)
            spec.log_path.write_text(log)
            if samples and self.env.samples_dir is not None:
                self.env.samples_dir.mkdir(parents=True, exist_ok=True)
                samples_file(self.env.samples_dir, spec.number, "selection").write_text(samples)
            result.spec = spec  # the driver's paths
            result.remote_model = model_ref if result.status == "ok" else None
            return result

        return self._follow(result_ref, view, done)

    def score_holdout(self, result: TrialResult) -> Future[TrialResult]:
        ref = self.holdout.remote(result, result.remote_model, self.data, self.holdout_file)
        view = {"experiment": result.spec.number, "run": result.spec.index, "kind": "holdout", "phase": "holdout"}

        def done(scored: TrialResult) -> TrialResult:
            scored.spec, scored.remote_model, scored.model_dir = result.spec, result.remote_model, result.model_dir
            return scored

        def failed(err: Exception) -> TrialResult:  # the keep is decided: a lost holdout report must not undo it
            result.reason = f"holdout evaluation failed: {type(err).__name__}: {err}"
            return result

        return self._follow(ref, view, done, failed)

    def model(self, result: TrialResult) -> Path | None:
        """Fetch a kept trial's model from the cluster into a local folder."""
        if result.model_dir is None and result.remote_model is not None:
            folder = self.root / f"{experiment_id(result.spec.number)}-run{result.spec.index}"
            unpack(self.ray.get(result.remote_model), folder)
            result.model_dir = folder
        return result.model_dir

    def discard(self, result: TrialResult) -> None:
        result.remote_model = None  # the last reference: Ray frees the object

    def slots(self) -> list[dict]:
        with self.lock:
            return [{"slot": f"ray-{i}", **view} for i, (_, view) in enumerate(self.running.values())]

    def close(self) -> None:
        with self.lock:
            running = list(self.running.values())
        for ref, _ in running:
            self.ray.cancel(ref, force=True)  # kills the worker; its task's reaper kills the training
        self.running.clear()
        if self.started_ray:
            self.ray.shutdown()
        shutil.rmtree(self.root, ignore_errors=True)

    def _follow(self, ref, view: dict, convert, on_error=None) -> Future:
        """A Future of `convert(answer)` once the task answers. A UserError on the worker (tampering) stays one; any
        other failure is `on_error(err)`'s answer, or the future's exception."""
        key = id(ref)
        with self.lock:
            self.running[key] = (ref, {**view, "started": time.time()})
        future: Future = Future()

        def finished(ray_future: Future) -> None:
            with self.lock:
                self.running.pop(key, None)
            try:
                future.set_result(convert(ray_future.result()))
            except Exception as err:
                cause = getattr(err, "cause", None)
                if isinstance(cause, UserError):
                    future.set_exception(cause)
                elif on_error is not None:
                    future.set_result(on_error(err))
                else:
                    future.set_exception(err)

        ref.future().add_done_callback(finished)
        return future


# --- what travels -------------------------------------------------------------------------------------------------
def _payload(run, env: TrialEnv) -> dict:
    """Everything a trial needs besides its train.py, with the driver's paths taken out."""
    splits = run.splits
    return {
        "train": pack(splits / "train"),
        "selection": (splits / "selection.jsonl").read_bytes(),
        "metric": pack(env.metric_dir),
        "metric_name": env.metric_dir.name,  # evaluate.load(folder) loads folder/<folder name>.py
        "hashes": relative_hashes(env.evaluation_hashes, env.metric_dir),
        "hashed_extra": [str(p) for p in env.hashed_extra],
        "run": f"{run.folder}@{uuid.uuid4().hex[:8]}",  # this session of the run: workers key their cache by it
        "setup": _setup(run),
        "env": {
            "model": env.model,
            "budget": env.budget,
            "grace": env.grace,
            "metric": env.metric,
            "accelerate_args": env.accelerate_args,
            "sandbox": env.sandbox_hidden is not None,
        },
    }


def _setup(run) -> dict:
    setup = run.eval_setup()
    return {"task": setup.task, "metric_options": setup.metric_options, "python_path": setup.python_path}


def relative_hashes(hashes: dict[str, str], metric_dir: Path) -> dict[str, str]:
    """The evaluation hashes keyed by place ("metric/x.py", "package/tasks/y.py"), not by this machine's paths; a
    file outside both (a task given by import path) keeps its path ("path//abs/x.py"): it must be there on a node."""
    out = {}
    for path, digest in hashes.items():
        path = Path(path)
        if path.is_relative_to(metric_dir):  # a metric inside the package is both: shipped, and installed
            out["metric/" + path.relative_to(metric_dir).as_posix()] = digest
        if path.is_relative_to(PACKAGE):
            out["package/" + path.relative_to(PACKAGE).as_posix()] = digest
        elif not path.is_relative_to(metric_dir):
            out["path/" + path.as_posix()] = digest
    return out
