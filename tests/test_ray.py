"""--executor ray against a real local Ray: trials are Ray tasks (training and the frozen evaluation on the worker),
the kept models come back to the run folder, and the ledger has the same shape as with the local executor."""

from __future__ import annotations

import os

import pytest
from conftest import make_patch

from hf_autoresearch.cli import main
from hf_autoresearch.executors.ray import relative_hashes
from hf_autoresearch.executors.ray_worker import absolute_hashes
from hf_autoresearch.executors.trial import TrialResult, TrialSpec
from hf_autoresearch.ledger import Ledger
from hf_autoresearch.tamper import PACKAGE, fingerprint

ray = pytest.importorskip("ray")


def test_evaluation_hashes_travel_without_the_driver_paths(tmp_path):
    """The worker checks its own installed evaluation code and the shipped metric against the run's hashes."""
    metric = PACKAGE / "metrics" / "classification"
    hashes = fingerprint(metric)
    relative = relative_hashes(hashes, metric)
    assert "metric/classification.py" in relative and "package/evaluation.py" in relative
    assert not any(key.startswith("/") for key in relative)
    shipped = tmp_path / "classification"
    shipped.mkdir()
    (shipped / "classification.py").write_bytes((metric / "classification.py").read_bytes())
    assert absolute_hashes(relative, shipped) == fingerprint(shipped)  # what verify() compares on the worker
    (shipped / "classification.py").write_text("tampered")
    assert absolute_hashes(relative, shipped) != fingerprint(shipped)


def test_a_killed_workers_scratch_folder_is_swept_by_the_next(tmp_path, monkeypatch):
    import subprocess
    import sys

    from hf_autoresearch.executors.ray_worker import scratch_folder

    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale, alive = scratch_folder(), scratch_folder()
    (stale / "owner.pid").write_text(gone.stdout.strip())  # its process is dead
    fresh = scratch_folder()
    assert not stale.exists() and alive.exists() and fresh.exists()
    assert (fresh / "owner.pid").read_text() == str(os.getpid())


@pytest.mark.slow
def test_a_run_on_a_local_ray_cluster(project, banking_subset, tiny_bert, tmp_path):
    recipe = project / "recipes" / "intent-categorization"
    patches = tmp_path / "patches"
    make_patch(recipe, "higher learning rate", [("LEARNING_RATE = 5e-5", "LEARNING_RATE = 1e-3")], patches / "1.patch")
    make_patch(
        recipe,
        "crash on purpose",
        [("    started = time.monotonic()\n", "    started = time.monotonic()\n    raise RuntimeError('boom')\n")],
        patches / "2.patch",
    )
    make_patch(recipe, "smaller batches", [("BATCH_SIZE = 32 ", "BATCH_SIZE = 16 ")], patches / "3.patch")
    run_dir = tmp_path / "runs"
    args = ["run", str(recipe), "--tag", "ray", "--patches", str(patches), "--executor", "ray", "--workers", "2"]
    args += ["--budget", "8", "--grace", "90", "--baseline-repeats", "1", "--no-confirm", "--max-experiments", "3"]
    args += ["--data", str(banking_subset), "--model", str(tiny_bert), "--run-dir", str(run_dir)]
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        assert main(args) == 0
    finally:
        ray.shutdown()

    folder = run_dir / "ray"
    records = sorted(Ledger(folder).records(), key=lambda r: r.number)
    assert [r.number for r in records] == [0, 1, 2, 3]
    base, lr, crash, batch = records
    assert base.status == "keep" and base.holdout is not None
    assert crash.status == "crash" and "boom" in crash.reason and "boom" in crash.log_tail
    assert lr.status in ("keep", "discard") and batch.status in ("keep", "discard"), (lr.reason, batch.reason)
    # the same record shape as the local executor's, each trial run on a Ray worker
    local_trial = TrialResult(TrialSpec(1, 0, 0, "", tmp_path / "x.log"), "ok").to_dict()
    for record in records:
        assert set(record.trials[0]) == set(local_trial)
        assert record.trials[0]["slot"].startswith("ray:")
        assert (folder / "logs" / f"{record.experiment}.log").stat().st_size > 0  # logs came back
    for keep in (r for r in records if r.status == "keep"):
        assert (folder / "models" / keep.experiment / "config.json").is_file()  # the model came back
    assert (folder / "samples" / "exp-0000-selection.jsonl").is_file()
    rows = (folder / "results.tsv").read_text().splitlines()[1:]
    assert [row.split("\t")[0] for row in rows] == ["exp-0000", "exp-0001", "exp-0002", "exp-0003"]
