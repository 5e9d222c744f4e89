"""Live progress: what the status line says, silence off a terminal, and the loop's callbacks staying harmless."""

from __future__ import annotations

import io
from types import SimpleNamespace

from rich.console import Console

from hf_autoresearch.driver.loop import Loop
from hf_autoresearch.ledger import ExperimentRecord
from hf_autoresearch.reporting.progress import LiveProgress


class FakeLedger:
    def __init__(self, records):
        self._records = records

    def records(self):
        return self._records

    def best(self):
        return [r for r in self._records if r.status == "keep"][-1]


def fake_run(budget=300.0):
    base = ExperimentRecord(number=0, status="keep", description="baseline", selection=0.41)
    return SimpleNamespace(
        config=SimpleNamespace(budget=budget),
        recipe=SimpleNamespace(metric=SimpleNamespace(name="accuracy")),
        ledger=FakeLedger([base]),
        callbacks=[],
    )


def test_the_line_names_experiment_phase_budget_left_and_best():
    run = fake_run(budget=300)
    progress = LiveProgress(Console(file=io.StringIO()), enabled=False)
    with progress.attach(run):
        assert run.callbacks == [progress]
        progress.on_phase(run, 3, "training")
        progress.phase_started -= 62.5  # training started 62.5 s ago
        line = progress.render().plain
        assert line.startswith("exp-0003  training 1:02, 3:57 of the budget left")
        assert "best accuracy 0.4100 (exp-0000)" in line and "1 done, 1 kept" in line
        progress.on_record(run, ExperimentRecord(number=3, status="keep", description="x", selection=0.5))
        assert "best accuracy 0.5000 (exp-0003)" in progress.render().plain
        progress.on_phase(run, 4, "agent")
        assert "exp-0004  agent 0:00" in progress.render().plain
    assert run.callbacks == []


def test_quiet_when_stdout_is_not_a_terminal():
    out = io.StringIO()
    run = fake_run()
    progress = LiveProgress(Console(file=out))
    assert not progress.enabled
    with progress.attach(run):
        progress.on_phase(run, 1, "training")
    assert out.getvalue() == ""


def test_a_failing_callback_is_reported_and_the_others_still_run():
    seen, logs = [], []

    class Broken:
        def on_record(self, run, record):
            raise RuntimeError("hub down")

    class Good:
        def on_record(self, run, record):
            seen.append(record)

    run = SimpleNamespace(callbacks=[Broken(), object(), Good()], log=logs.append)
    Loop._notify(run, "on_record", "rec")
    assert seen == ["rec"]
    assert logs == ["warning: Broken.on_record failed: RuntimeError: hub down"]
