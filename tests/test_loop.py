"""End-to-end runs of the loop with the replay agent on a tiny random BERT and real BANKING77 rows, on CPU."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import git, make_patch

from hf_autoresearch.cli import main
from hf_autoresearch.ledger import Ledger

BUDGET = "40"  # counted from launch (AUTORESEARCH_DEADLINE): a 2-core CPU spends ~10-15 s starting up
FAST = ["--baseline-repeats", "1", "--no-confirm"]  # the noise floor and confirmations are tested in test_honest.py


def run_cli(*args: str) -> int:
    return main(["run", *args])


@pytest.fixture
def patches(project, tmp_path):
    """A baseline plus three patches: one improving, one crashing, one touching another file."""
    recipe = project / "recipes" / "intent-categorization"
    folder = tmp_path / "patches"
    make_patch(
        recipe,
        "Raise the learning rate to 3e-3 without warmup, train for more epochs",
        [
            ("LEARNING_RATE = 5e-5", "LEARNING_RATE = 3e-3"),
            ("WARMUP = 0.1 ", "WARMUP = 0.0 "),
            ("EPOCHS = 3 ", "EPOCHS = 60 "),
            ("BATCH_SIZE = 32 ", "BATCH_SIZE = 16 "),
        ],
        folder / "0001-improve.patch",
    )
    make_patch(
        recipe,
        "Crash on purpose",
        [("    started = time.monotonic()\n", "    started = time.monotonic()\n    raise RuntimeError('boom')\n")],
        folder / "0002-crash.patch",
    )
    make_patch(
        recipe,
        "Edit the program instead",
        [("# Intent categorization", "# Edited")],
        folder / "0003-other-file.patch",
        file="program.md",
    )
    return folder


@pytest.mark.slow
def test_replay_run_keeps_improvement_and_records_crash_and_invalid(project, patches, banking_subset, tiny_bert):
    user_head = git(project, "rev-parse", "HEAD")
    run_dir = project / ".autoresearch"
    code = run_cli(
        str(project / "recipes" / "intent-categorization"),
        "--tag",
        "t1",
        "--agent",
        "replay",
        "--patches",
        str(patches),
        "--budget",
        BUDGET,
        "--max-experiments",
        "3",
        "--data",
        str(banking_subset),
        "--model",
        str(tiny_bert),
        "--run-dir",
        str(run_dir),
        *FAST,
    )
    assert code == 0
    records = Ledger(run_dir / "t1").records()
    assert [r.status for r in records] == ["keep", "keep", "crash", "invalid"]
    base, improved, crashed, invalid = records
    assert improved.selection > base.selection
    assert improved.holdout is not None and base.holdout is not None
    assert crashed.holdout is None and "boom" in crashed.log_tail
    assert "program.md" in invalid.reason and invalid.commit == ""

    # the run branch holds the baseline and the kept commit only; the user's branch did not move
    log = git(project, "log", "--format=%s", "autoresearch/t1").splitlines()
    assert log[0] == "exp-0001: Raise the learning rate to 3e-3 without warmup, train for more epochs"
    assert not any("Crash" in line for line in log)
    assert git(project, "rev-parse", "HEAD") == user_head
    assert git(project, "branch", "--show-current") == "main"
    assert git(project, "status", "--porcelain") == ""

    # results.tsv: header and one row an experiment, statuses in order
    rows = (run_dir / "t1" / "results.tsv").read_text().splitlines()
    assert rows[0].split("\t")[:5] == ["experiment", "commit", "status", "selection", "holdout"]
    assert [row.split("\t")[2] for row in rows[1:]] == ["keep", "keep", "crash", "invalid"]
    assert (run_dir / "t1" / "logs" / "exp-0002.log").is_file()
    assert (run_dir / "t1" / "models" / "exp-0001" / "config.json").is_file()
    assert not (run_dir / "t1" / "models" / "exp-0002").exists()


@pytest.mark.slow
def test_timeout_and_resume_continue_the_same_run(project, banking_subset, tiny_bert, tmp_path):
    recipe = project / "recipes" / "intent-categorization"
    folder = tmp_path / "patches"
    make_patch(
        recipe,
        "Ignore the budget",
        [("    started = time.monotonic()\n", "    started = time.monotonic()\n    time.sleep(600)\n")],
        folder / "0001-overrun.patch",
    )
    make_patch(recipe, "Smaller batches", [("BATCH_SIZE = 32 ", "BATCH_SIZE = 16 ")], folder / "0002-batch.patch")
    run_dir = tmp_path / "runs"
    common = ["--data", str(banking_subset), "--model", str(tiny_bert), "--run-dir", str(run_dir), *FAST]
    assert (
        run_cli(
            str(recipe),
            "--tag",
            "t2",
            "--patches",
            str(folder),
            "--budget",
            "20",
            "--grace",
            "30",
            "--max-experiments",
            "1",
            *common,
        )
        == 0
    )
    records = Ledger(run_dir / "t2").records()
    assert [r.status for r in records] == ["keep", "timeout"]
    assert records[1].train_seconds < 65  # killed at budget + grace (50 s from launch), not after the sleep
    # no process of the killed experiment survives
    assert "time.sleep(600)" not in subprocess.run(["ps", "aux"], capture_output=True, text=True).stdout

    assert run_cli("--resume", "--tag", "t2", "--max-experiments", "2", "--run-dir", str(run_dir)) == 0
    records = Ledger(run_dir / "t2").records()
    assert [r.number for r in records] == [0, 1, 2]
    assert records[2].proposal["patch"] == "0002-batch.patch"
    assert records[2].status in ("keep", "discard")


def test_starting_an_existing_run_or_a_missing_recipe_fails_clearly(project, tmp_path, capsys):
    assert run_cli(str(tmp_path / "nope"), "--patches", str(tmp_path), "--run-dir", str(tmp_path)) == 2
    assert "--patches" in capsys.readouterr().err  # the bad agent option is caught before anything runs
    patches = tmp_path / "p"
    make_patch(project / "recipes" / "intent-categorization", "x", [("EPOCHS = 3", "EPOCHS = 2")], patches / "a.patch")
    assert run_cli(str(tmp_path / "nope"), "--patches", str(patches), "--run-dir", str(tmp_path)) == 2
    assert "no such recipe folder" in capsys.readouterr().err


def test_interrupt_leaves_a_consistent_resumable_ledger(project, banking_subset, tiny_bert, tmp_path):
    """Ctrl-C during the baseline's training: the process group dies, nothing is recorded, resume starts over."""
    run_dir = tmp_path / "runs"
    recipe = project / "recipes" / "intent-categorization"
    patches = tmp_path / "p"
    make_patch(recipe, "x", [("EPOCHS = 3", "EPOCHS = 2")], patches / "a.patch")
    cmd = [
        sys.executable,
        "-m",
        "hf_autoresearch.cli",
        "run",
        str(recipe),
        "--tag",
        "t3",
        "--patches",
        str(patches),
        "--budget",
        "60",
        "--data",
        str(banking_subset),
        "--model",
        str(tiny_bert),
        "--run-dir",
        str(run_dir),
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    # wait for the baseline's launcher itself (its environment names this model), not for a fixed time: on a busy
    # machine a sleep either fires before the launch or after the whole tiny run has finished
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not _experiment_processes(str(tiny_bert)):
        time.sleep(0.2)
    assert _experiment_processes(str(tiny_bert)), "the baseline never launched"
    time.sleep(0.5)  # inside the launch: accelerate and train.py's imports take seconds
    proc.send_signal(2)  # SIGINT, as Ctrl-C does
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130, out
    assert "--resume" in out
    assert Ledger(run_dir / "t3").records() == []
    assert json.loads((run_dir / "t3" / "run.json").read_text())["tag"] == "t3"
    assert _experiment_processes(str(tiny_bert)) == []


def _experiment_processes(model: str) -> list[int]:
    """Live processes launched for an experiment on `model` (other runs on this machine do not count)."""
    found = []
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            if f"AUTORESEARCH_MODEL={model}".encode() in environ.read_bytes():
                found.append(int(environ.parent.name))
        except OSError:
            pass
    return found
