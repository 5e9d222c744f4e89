"""--tracker trackio: each experiment is one step of a local trackio project (run in a child process so that
TRACKIO_DIR, which trackio reads at import, points into the test's folder)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from hf_autoresearch.ledger import ExperimentRecord
from hf_autoresearch.reporting.tracking import experiment_metrics

SCRIPT = textwrap.dedent(
    """
    import json, sys
    from types import SimpleNamespace
    from hf_autoresearch.ledger import ExperimentRecord
    from hf_autoresearch.options import RunConfig
    from hf_autoresearch.reporting.tracking import make_tracker

    config = RunConfig(tag="t1", recipe="r", repo="/r", recipe_rel="recipes/r", branch="autoresearch/t1",
                       agent="optuna", model="m", data="d", budget=60.0, grace=30.0, seed=0, min_delta=0.0)
    run = SimpleNamespace(config=config, recipe=SimpleNamespace(name="intent", metric=SimpleNamespace(
        name="accuracy", direction="maximize")), ledger=SimpleNamespace(best=lambda: None))
    tracker = make_tracker("trackio")
    records = [
        ExperimentRecord(number=0, status="keep", description="baseline", selection=0.4, holdout=0.38,
                         scores={"selection": {"accuracy": 0.4}}, timings={"agent": 0.0, "process": 30.0}),
        ExperimentRecord(number=1, status="discard", description="lr", selection=0.35,
                         proposal={"params": {"LEARNING_RATE": 3e-4}}, timings={"agent": 2.0, "process": 31.0}),
        ExperimentRecord(number=2, status="crash", description="boom", timings={"agent": 1.0, "process": 3.0}),
    ]
    for record in records:
        tracker.on_record(run, record)
    tracker.close()
    from trackio.sqlite_storage import SQLiteStorage
    print("RESULT", json.dumps({"runs": SQLiteStorage.get_runs("hf-autoresearch-intent"),
                      "logs": SQLiteStorage.get_logs("hf-autoresearch-intent", "t1")}, default=str))
    """
)


def test_metrics_of_one_experiment():
    record = ExperimentRecord(
        number=2,
        status="keep",
        description="x",
        selection=0.5,
        holdout=0.45,
        scores={"selection": {"accuracy": 0.5, "macro_f1": 0.4}},
        timings={"agent": 2.0, "eval_selection": 9.5},
        proposal={"params": {"LEARNING_RATE": 3e-4, "SCHEDULER": "cosine"}},
        train_seconds=61.0,
    )
    metrics = experiment_metrics(record, best=0.5)
    assert metrics["selection/macro_f1"] == 0.4 and metrics["time/eval_selection"] == 9.5
    assert metrics["config/LEARNING_RATE"] == 3e-4 and "config/SCHEDULER" not in metrics
    assert metrics["kept"] == 1.0 and metrics["best_selection"] == 0.5 and metrics["time/train"] == 61.0
    assert "agent_cost_usd" not in metrics  # no agent usage recorded (optuna, replay): no cost to log
    record.agent_usage, record.agent_cost = {"input_tokens": 1000, "requests": 1}, 0.003
    assert experiment_metrics(record, best=0.5)["agent_cost_usd"] == 0.003


def test_trackio_logs_one_step_per_experiment_to_a_local_project(tmp_path):
    pytest.importorskip("trackio")
    env = {**os.environ, "TRACKIO_DIR": str(tmp_path / "trackio")}
    out = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    line = next(line for line in out.stdout.splitlines() if line.startswith("RESULT "))
    result = json.loads(line.removeprefix("RESULT "))
    assert result["runs"] == ["t1"]
    logs = sorted(result["logs"], key=lambda row: row["step"])
    assert [row["step"] for row in logs] == [0, 1, 2]
    assert logs[0]["selection"] == 0.4 and logs[0]["holdout"] == 0.38
    assert logs[1]["config/LEARNING_RATE"] == 3e-4 and logs[1]["best_selection"] == 0.4
    assert logs[2]["status"] == "crash" and "selection" not in logs[2]
    assert (tmp_path / "trackio").is_dir()
