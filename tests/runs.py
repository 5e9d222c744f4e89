"""Starting runs from tests without the CLI, and a fake executor whose trials train nothing."""

from __future__ import annotations

import re
from concurrent.futures import Future
from pathlib import Path

from hf_autoresearch import campaign
from hf_autoresearch.executor import LocalExecutor
from hf_autoresearch.loop import Loop
from hf_autoresearch.options import RunConfig
from hf_autoresearch.trial import TrialResult, TrialSpec

SCORES = re.compile(r"^FAKE_SCORES = \[(.*)\]", re.MULTILINE)


def start_run(recipe: Path, run_dir: Path, tag: str, log=lambda *_: None, **options) -> campaign.Campaign:
    options.setdefault("agent", "replay")
    return campaign.start(RunConfig(recipe=str(recipe), run_dir=str(run_dir), tag=tag, **options), log=log)


def run_loop(run: campaign.Campaign, agent, executor=None, log=lambda *_: None, **limits) -> Loop:
    executor = executor or LocalExecutor(run)
    loop = Loop(run, agent, executor, log=log)
    try:
        loop.run(**limits)
    finally:
        executor.close()
    return loop


class FakeExecutor:
    """Trains nothing: trial `index` scores FAKE_SCORES[index] (the last one past the end) of the trial's train.py.
    Holdout scorings are counted; the holdout score is the selection score minus 0.1."""

    name = "fake"

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.holdout_calls = 0
        self.specs: list[TrialSpec] = []

    def submit(self, spec: TrialSpec) -> Future:
        self.specs.append(spec)
        scores = [float(x) for x in SCORES.search(spec.train_py).group(1).split(",")]
        score = scores[min(spec.index, len(scores) - 1)]
        model = self.folder / f"exp-{spec.number:04d}-{spec.index}"
        model.mkdir(parents=True, exist_ok=True)
        (model / "config.json").write_text("{}")
        result = TrialResult(spec, "ok", selection=score, model_dir=model)
        result.scores["selection"] = {"accuracy": score, "macro_f1": 0.0}
        return _done(result)

    def score_holdout(self, result: TrialResult) -> Future:
        self.holdout_calls += 1
        result.holdout = result.selection - 0.1
        result.scores["holdout"] = {"accuracy": result.holdout, "macro_f1": 0.0}
        return _done(result)

    def discard(self, result: TrialResult) -> None:
        pass

    def close(self) -> None:
        pass


def _done(value) -> Future:
    future: Future = Future()
    future.set_result(value)
    return future
