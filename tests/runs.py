"""Starting runs from tests without the CLI, and a fake executor whose trials train nothing."""

from __future__ import annotations

import re
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from hf_autoresearch.driver.decision import NoiseFloor
from hf_autoresearch.driver.loop import Loop
from hf_autoresearch.driver.run import Run, start
from hf_autoresearch.executors.local import LocalExecutor
from hf_autoresearch.executors.trial import TrialResult, TrialSpec
from hf_autoresearch.ledger import ExperimentRecord
from hf_autoresearch.options import RunConfig

SCORES = re.compile(r"^FAKE_SCORES = \[(.*)\]", re.MULTILINE)
GAINS = re.compile(r"^FAKE_GAIN_\w+ = (\S+)", re.MULTILINE)
CAPS = re.compile(r"^FAKE_CAP_\w+ = (\S+)", re.MULTILINE)
DELAYS = re.compile(r"^FAKE_DELAY_\w+ = (\S+)", re.MULTILINE)
SECONDS = re.compile(r"^FAKE_SECONDS = (\S+)", re.MULTILINE)


def start_run(recipe: Path, run_dir: Path, tag: str, log=lambda *_: None, **options) -> Run:
    options.setdefault("agent", "replay")
    return start(RunConfig(recipe=str(recipe), run_dir=str(run_dir), tag=tag, **options), log=log)


def record_baseline(run: Run, selection: float = 0.2, std_scores=(0.2,)) -> ExperimentRecord:
    """Put a kept baseline exp-0000 (the worktree's HEAD) in the run's ledger without training it, so a test can
    start with experiments (`run --resume`)."""
    noise = NoiseFloor(list(std_scores), list(range(len(std_scores))))
    record = ExperimentRecord(0, "keep", "baseline", commit=run.workspace.head(), selection=selection)
    record.decision = {"rule": "baseline", "noise": noise.to_dict(), "direction": "maximize"}
    record.proposal = {"baseline": True}
    run.ledger.append(record)
    return record


def run_loop(run: Run, agent, executor=None, log=lambda *_: None, **limits) -> Loop:
    executor = executor or LocalExecutor(run)
    loop = Loop(run, agent, executor, log=log)
    try:
        loop.run_experiments(**limits)
    finally:
        executor.close()
    return loop


def fake_score(train_py: str, index: int) -> float:
    """FAKE_SCORES[index] (the last one past the end) plus every `FAKE_GAIN_X = g` line, at most every
    `FAKE_CAP_X = c` (so two edits' gains need not add up)."""
    values = [float(x) for x in SCORES.search(train_py).group(1).split(",")]
    score = values[min(index, len(values) - 1)] + sum(float(g) for g in GAINS.findall(train_py))
    return min([score, *(float(c) for c in CAPS.findall(train_py))])


def fake_delay(train_py: str, index: int) -> float:
    """Seconds a trial takes: `FAKE_SECONDS = s` (0 without it), plus for the first run of an experiment the sum of
    its `FAKE_DELAY_X = s` lines."""
    every = SECONDS.search(train_py)
    first = sum(float(s) for s in DELAYS.findall(train_py)) if index == 0 else 0.0
    return (float(every.group(1)) if every else 0.0) + first


class FakeExecutor:
    """Trains nothing: a trial scores `fake_score` of its train.py after sleeping `fake_delay`. With `workers` > 1,
    trials run at once on threads; `most_running` says how many ran at once at most.
    Holdout scorings are counted; the holdout score is the selection score minus 0.1."""

    name = "fake"

    def __init__(self, folder: Path, workers: int = 1, holdout_seconds: float = 0.0):
        self.folder = Path(folder)
        self.holdout_seconds = holdout_seconds
        self.workers = workers
        self.holdout_calls = 0
        self.specs: list[TrialSpec] = []
        self.results: list[TrialResult] = []
        self.pool = ThreadPoolExecutor(workers) if workers > 1 else None
        self.lock = threading.Lock()
        self.running = self.most_running = 0

    def _run(self, work, *args) -> Future:
        if self.pool is not None:
            return self.pool.submit(work, *args)
        future: Future = Future()
        future.set_result(work(*args))
        return future

    def submit(self, spec: TrialSpec) -> Future:
        with self.lock:
            self.specs.append(spec)
        return self._run(self._train, spec)

    def _train(self, spec: TrialSpec) -> TrialResult:
        started = time.time()
        with self.lock:
            self.running += 1
            self.most_running = max(self.most_running, self.running)
        time.sleep(fake_delay(spec.train_py, spec.index))
        score = fake_score(spec.train_py, spec.index)
        model = self.folder / f"exp-{spec.number:04d}-{spec.index}"
        model.mkdir(parents=True, exist_ok=True)
        (model / "config.json").write_text("{}")
        result = TrialResult(spec, "ok", selection=score, model_dir=model, started_at=started)
        result.scores["selection"] = {"accuracy": score, "macro_f1": 0.0}
        result.finished_at = time.time()
        with self.lock:
            self.running -= 1
            self.results.append(result)
        return result

    def score_holdout(self, result: TrialResult) -> Future:
        with self.lock:
            self.holdout_calls += 1

        def holdout() -> TrialResult:
            time.sleep(self.holdout_seconds)
            result.holdout = result.selection - 0.1
            result.scores["holdout"] = {"accuracy": result.holdout, "macro_f1": 0.0}
            return result

        return self._run(holdout)

    def model(self, result: TrialResult) -> Path | None:
        return result.model_dir

    def discard(self, result: TrialResult) -> None:
        pass

    def slots(self) -> list[dict]:
        return []

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
