"""Where trials run: the `Executor` protocol every executor keeps, and the one a run's options ask for.

`local` runs trials as processes on this machine (one slot a GPU, or a share of the CPUs); `ray` runs them as Ray
tasks on a cluster. `trial` is the unit of work both run, `runner` launches train.py under the budget, `reaper`
kills what a dead driver left running, `sandbox` hides the run folder from train.py, `crash` reads a failed log.
"""

from __future__ import annotations

from concurrent.futures import Future
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from hf_autoresearch.errors import UserError

if TYPE_CHECKING:
    from hf_autoresearch.executors.trial import TrialResult, TrialSpec


class Executor(Protocol):
    """Runs trials. The driver (driver/inflight.py, driver/loop.py) and tests/runs.py's FakeExecutor rely on
    nothing else.

    - `workers`: how many trials it runs at once.
    - `submit(spec)`: train and score on the selection split; the future never fails for a bad train.py (the
      result's status says crash or timeout).
    - `score_holdout(result)`: score a kept trial's model on the holdout (only ever after its experiment is kept).
    - `model(result)`: the trial's saved model as a local folder (fetched if it is remote), or None.
    - `discard(result)`: its model is not needed any more.
    - `slots()`: what each slot runs now, {"slot", "experiment", "run", "kind", "phase", "started"}, or {"slot"}
      when it is idle.
    - `close()`: stop everything still running (its processes die) and clean up.
    """

    name: str
    workers: int

    def submit(self, spec: TrialSpec) -> Future[TrialResult]: ...

    def score_holdout(self, result: TrialResult) -> Future[TrialResult]: ...

    def model(self, result: TrialResult) -> Path | None: ...

    def discard(self, result: TrialResult) -> None: ...

    def slots(self) -> list[dict]: ...

    def close(self) -> None: ...


def check_workers(workers: int | None, gpus_per_experiment: int) -> None:
    if (workers is not None and workers < 1) or gpus_per_experiment < 1:
        raise UserError("--workers and --gpus-per-experiment must be at least 1")


def make_executor(run) -> Executor:
    """The executor the run's options ask for: --executor local (default) or ray."""
    config = run.config
    if config.executor == "ray":
        from hf_autoresearch.executors.ray import RayExecutor

        return RayExecutor(run, config.workers, config.gpus_per_experiment, config.ray_address)
    from hf_autoresearch.executors.local import LocalExecutor

    return LocalExecutor(run, config.workers, config.gpus_per_experiment)


def check_executor(config) -> None:
    """Fail in seconds, before any data is prepared, on executor options that cannot work here."""
    check_workers(config.workers, config.gpus_per_experiment)
    if config.executor == "ray":
        from hf_autoresearch.executors.ray import import_ray

        import_ray()
        return
    from hf_autoresearch.executors.local import default_workers, slot_shares, usable_cpus, visible_gpus

    k = config.gpus_per_experiment
    workers = default_workers(k) if config.workers is None else config.workers
    slot_shares(workers, k, visible_gpus(), usable_cpus())
