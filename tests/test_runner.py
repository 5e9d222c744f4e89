"""The runner on scripts that need no model: exit codes, the contract's environment, the deadline, the crash reason,
the budget kill, and signals that arrive while the process group is being killed."""

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from hf_autoresearch import experiment
from hf_autoresearch.executors.crash import exception_line
from hf_autoresearch.executors.runner import (
    KILL_WAIT_SECONDS,
    TrainingJob,
    kill_owned,
    launch_args,
    owned_processes,
    run_training,
)


def job(tmp_path, script: str, budget=30.0, grace=30.0, **kw) -> TrainingJob:
    (tmp_path / "train.py").write_text(script)
    data = tmp_path / "train-data"
    data.mkdir(exist_ok=True)
    (data / "train.jsonl").write_text('{"text": "a", "label": "b"}\n')
    return TrainingJob(
        train_py=tmp_path / "train.py",
        scratch=tmp_path / "scratch",
        train_data=data,
        model="m",
        seed=7,
        budget_seconds=budget,
        grace_seconds=grace,
        log_path=tmp_path / "logs" / "exp.log",
        **kw,
    )


def alive(pid: int) -> bool:
    """Running (a killed orphan may linger as a zombie until init reaps it: that counts as dead)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


ENV_SCRIPT = """
import json, os, torch
keys = ["AUTORESEARCH_DATA_DIR", "AUTORESEARCH_OUTPUT_DIR", "AUTORESEARCH_TIME_BUDGET", "AUTORESEARCH_SEED",
        "AUTORESEARCH_MODEL", "AUTORESEARCH_DEADLINE", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "CUDA_VISIBLE_DEVICES"]
env = {k: os.environ.get(k) for k in keys}
env["cwd"] = os.getcwd()
env["data_files"] = sorted(os.listdir(os.environ["AUTORESEARCH_DATA_DIR"]))
env["torch_threads"] = torch.get_num_threads()
open(os.path.join(os.environ["AUTORESEARCH_OUTPUT_DIR"], "env.json"), "w").write(json.dumps(env))
"""


def test_contract_environment_slot_pinning_and_scratch_layout(tmp_path):
    before = time.time()
    result = run_training(job(tmp_path, ENV_SCRIPT, cpu_threads=1, cuda_devices=""), gpu=False)
    assert result.status == "ok", result.log_tail
    assert result.reason == ""
    env = json.loads((result.output_dir / "env.json").read_text())
    assert env["AUTORESEARCH_SEED"] == "7" and env["AUTORESEARCH_MODEL"] == "m"
    assert float(env["AUTORESEARCH_TIME_BUDGET"]) == 30
    # the deadline is fixed by the harness when it launches the process, not by train.py
    assert before + 30 <= float(env["AUTORESEARCH_DEADLINE"]) <= before + 30 + result.launch_seconds + 0.1
    assert env["data_files"] == ["train.jsonl"]
    assert env["cwd"].startswith(str(tmp_path / "scratch"))  # a scratch folder, not the worktree
    assert env["OMP_NUM_THREADS"] == env["MKL_NUM_THREADS"] == "1"
    assert env["torch_threads"] == 1
    assert env["CUDA_VISIBLE_DEVICES"] == ""


def test_the_budget_counts_from_launch_not_from_when_train_py_imports_the_helper(tmp_path):
    script = """
import json, os, time
time.sleep(3)  # a slow import of torch and transformers, before the helper is imported
from hf_autoresearch import experiment
out = os.environ["AUTORESEARCH_OUTPUT_DIR"]
json.dump({"left": experiment.time_left(), "budget": experiment.time_budget()}, open(out + "/t.json", "w"))
"""
    result = run_training(job(tmp_path, script, budget=30), gpu=False)
    assert result.status == "ok", result.log_tail
    seen = json.loads((result.output_dir / "t.json").read_text())
    assert seen["budget"] == 30
    assert seen["left"] < 30 - 3  # the sleep and accelerate's start-up were spent from the budget
    assert seen["left"] > 30 - result.seconds - 1


def test_time_left_by_hand_counts_from_import(monkeypatch):
    monkeypatch.delenv("AUTORESEARCH_DEADLINE", raising=False)
    monkeypatch.setenv("AUTORESEARCH_TIME_BUDGET", "100")
    monkeypatch.setattr(experiment, "_IMPORTED", time.time() - 5)  # imported 5 s ago, whenever the session began
    assert experiment.deadline() == pytest.approx(experiment._IMPORTED + 100)
    assert experiment.time_left() == pytest.approx(95, abs=1)
    monkeypatch.setenv("AUTORESEARCH_DEADLINE", str(time.time() + 50))
    assert experiment.time_left() == pytest.approx(50, abs=1)


@pytest.mark.parametrize(
    "script, reason",
    [
        ("rows = [{'txt': 'a'}]\nprint('loading')\nprint(rows[0]['text'])\n", "KeyError: 'text'"),
        ("print('loading')\nraise SystemExit('out of cheese')\n", "train.py exited with status 1"),
    ],
)
def test_a_crash_reports_train_py_s_exception_not_the_launcher_s(tmp_path, script, reason):
    result = run_training(job(tmp_path, script), gpu=False)
    assert result.status == "crash" and result.returncode != 0
    assert result.reason == reason
    assert "loading" in result.log_tail
    assert "CalledProcessError" in (tmp_path / "logs" / "exp.log").read_text()  # accelerate's wrapper was there


TORCHRUN_LOG = """\
Traceback (most recent call last):
  File "/tmp/acc/train2.py", line 4, in <module>
    print(rows[0]["text"])
          ~~~~~~~^^^^^^^^
KeyError: 'text'
W1129 08:24:46.532000 7993 torch/distributed/elastic/multiprocessing/api.py:1028] Sending process 8010 closing signal
E1129 08:24:46.536000 7993 torch/distributed/elastic/multiprocessing/api.py:1002] failed (exitcode: 1) local_rank: 1
Traceback (most recent call last):
  File "<frozen runpy>", line 198, in _run_module_as_main
  File "/venv/lib/python3.11/site-packages/accelerate/commands/launch.py", line 1029, in multi_gpu_launcher
    distrib_run.run(args)
  File "/venv/lib/python3.11/site-packages/torch/distributed/run.py", line 1019, in run
    elastic_launch(
  File "/venv/lib/python3.11/site-packages/torch/distributed/launcher/api.py", line 383, in launch_agent
    raise ChildFailedError(
torch.distributed.elastic.multiprocessing.errors.ChildFailedError:
============================================================
train2.py FAILED
------------------------------------------------------------
Root Cause (first observed failure):
[0]:
  rank      : 1 (local_rank: 1)
  exitcode  : 1 (pid: 8011)
  traceback : To enable traceback see: https://pytorch.org/docs/stable/elastic/errors.html
============================================================
"""
CHAINED_LOG = """\
[rank0]: Traceback (most recent call last):
[rank0]:   File "train.py", line 4, in load
[rank0]:     return rows[0]["text"]
[rank0]: KeyError: 'text'
[rank0]:
[rank0]: The above exception was the direct cause of the following exception:
[rank0]:
[rank0]: Traceback (most recent call last):
[rank0]:   File "train.py", line 7, in <module>
[rank0]:     load()
[rank0]: RuntimeError: the data has no 'text' column
"""


def test_exception_line_of_multi_gpu_and_chained_tracebacks():
    assert exception_line(TORCHRUN_LOG) == "KeyError: 'text'"  # a real log of accelerate's multi-GPU launcher
    assert exception_line(CHAINED_LOG) == "RuntimeError: the data has no 'text' column"
    assert exception_line("Killed\n") is None


@pytest.mark.parametrize("spawn_child", [False, True])
def test_overrun_kills_the_whole_process_group_at_budget_plus_grace(tmp_path, spawn_child):
    marker = f"time.sleep(321.{uuid.uuid4().int % 1000})"
    script = "import time\n"
    if spawn_child:  # a grandchild of the launcher, like a data loader worker, must die too
        script += f"import subprocess, sys\nsubprocess.Popen([sys.executable, '-c', 'import time; {marker}'])\n"
    script += "time.sleep(300)\n"
    result = run_training(job(tmp_path, script, budget=2, grace=4), gpu=False)
    assert result.status == "timeout"
    assert 6 <= result.seconds < 6 + 2 * KILL_WAIT_SECONDS
    assert result.reason.startswith("killed after") and "budget 2 s + grace 4 s" in result.reason
    assert result.reason in (tmp_path / "logs" / "exp.log").read_text()
    if spawn_child:
        assert marker not in subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout


def test_num_processes_launches_multi_gpu_on_its_own_port(tmp_path):
    two = job(tmp_path, "", num_processes=2)
    args = launch_args(two, gpu=True)
    assert args[args.index("--num_processes") + 1] == "2" and "--multi_gpu" in args
    assert int(args[args.index("--main_process_port") + 1]) != 29500
    assert launch_args(two, gpu=False)[:3] == ["--cpu", "--num_processes", "1"]  # no multi-process CPU run
    assert "--multi_gpu" not in launch_args(job(tmp_path, ""), gpu=True)


# --- signals: a harness in a process of its own, as the CLI runs it -------------------------------------------

HARNESS = """
import sys
from pathlib import Path
from hf_autoresearch.executors import runner
root, mode, owner = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
if mode == "direct":  # the launcher is train.py itself, slow to stop on SIGTERM (like torchrun, which forwards it)
    runner.launch_command = lambda job, gpu: [sys.executable, "train.py"]
job = runner.TrainingJob(train_py=root / "train.py", scratch=root / "scratch", train_data=root / "train-data",
                         model="m", seed=0, budget_seconds=300, grace_seconds=30, log_path=root / "exp.log",
                         owner=owner)
try:
    runner.run_training(job, gpu=False)
except KeyboardInterrupt:
    print("interrupted", flush=True)
"""
STUBBORN = """
import os, signal, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
open(os.path.join(os.environ["AUTORESEARCH_OUTPUT_DIR"], "pid"), "w").write(str(os.getpid()))
time.sleep(300)
"""


def start_harness(tmp_path, mode="direct", owner="") -> tuple[subprocess.Popen, int]:
    """(the harness process, the pid of its training once it runs)."""
    job(tmp_path, STUBBORN)  # writes train.py and the training data
    (tmp_path / "harness.py").write_text(HARNESS)
    harness = subprocess.Popen(
        [sys.executable, str(tmp_path / "harness.py"), str(tmp_path), mode, owner],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    pid_file = tmp_path / "scratch" / "output" / "pid"
    for _ in range(300):
        if pid_file.is_file() and pid_file.read_text():
            return harness, int(pid_file.read_text())
        time.sleep(0.1)
    harness.kill()
    raise AssertionError(f"training never started: {harness.communicate()[0]}")


@pytest.mark.parametrize("second", [signal.SIGINT, signal.SIGTERM])
def test_a_second_signal_during_the_group_kill_does_not_leave_training_running(tmp_path, second):
    harness, pid = start_harness(tmp_path)
    try:
        harness.send_signal(signal.SIGINT)  # Ctrl-C: the harness SIGTERMs the group and waits for it
        time.sleep(1.0)
        assert alive(pid)  # this training ignores SIGTERM: only the SIGKILL after the wait stops it
        harness.send_signal(second)
        output = harness.communicate(timeout=30)[0]
        assert "interrupted" in output  # the second signal is still honoured, after the kill
        assert not alive(pid)
    finally:
        if alive(pid):
            os.kill(pid, signal.SIGKILL)


def test_sigterm_to_the_harness_kills_the_training_first(tmp_path):
    harness, pid = start_harness(tmp_path)
    try:
        harness.send_signal(signal.SIGTERM)  # e.g. `kill` or a scheduler stopping the run
        assert "interrupted" in harness.communicate(timeout=30)[0]
        assert not alive(pid)
    finally:
        if alive(pid):
            os.kill(pid, signal.SIGKILL)


def test_kill_owned_finds_what_a_sigkilled_harness_left_behind(tmp_path):
    owner = f"test-{uuid.uuid4().hex}"
    harness, pid = start_harness(tmp_path, mode="accelerate", owner=owner)
    try:
        harness.kill()  # nothing in the harness runs: the training group is orphaned
        harness.wait(timeout=10)
        time.sleep(0.5)
        assert alive(pid)
        assert pid in owned_processes(owner) and len(owned_processes(owner)) >= 2  # the launcher and train.py
        assert kill_owned(owner) >= 2
        time.sleep(0.5)
        assert not alive(pid) and owned_processes(owner) == []
    finally:
        if alive(pid):
            os.kill(pid, signal.SIGKILL)
