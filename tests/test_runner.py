"""The runner on scripts that need no model: exit codes, the contract's environment, and the budget kill."""

import json
import subprocess

import pytest

from hf_autoresearch.runner import TrainingJob, run_training


def job(tmp_path, script: str, budget=30.0, grace=30.0) -> TrainingJob:
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
    )


ENV_SCRIPT = """
import json, os
keys = ["AUTORESEARCH_DATA_DIR", "AUTORESEARCH_OUTPUT_DIR", "AUTORESEARCH_TIME_BUDGET", "AUTORESEARCH_SEED",
        "AUTORESEARCH_MODEL"]
env = {k: os.environ[k] for k in keys}
env["cwd"] = os.getcwd()
env["data_files"] = sorted(os.listdir(os.environ["AUTORESEARCH_DATA_DIR"]))
open(os.path.join(os.environ["AUTORESEARCH_OUTPUT_DIR"], "env.json"), "w").write(json.dumps(env))
"""


def test_contract_environment_and_scratch_layout(tmp_path):
    result = run_training(job(tmp_path, ENV_SCRIPT), gpu=False)
    assert result.status == "ok", result.log_tail
    env = json.loads((result.output_dir / "env.json").read_text())
    assert env["AUTORESEARCH_SEED"] == "7" and env["AUTORESEARCH_MODEL"] == "m"
    assert float(env["AUTORESEARCH_TIME_BUDGET"]) == 30
    assert env["data_files"] == ["train.jsonl"]
    assert env["cwd"].startswith(str(tmp_path / "scratch"))  # a scratch folder, not the worktree


def test_crash_keeps_the_log_tail(tmp_path):
    result = run_training(job(tmp_path, "print('loading')\nraise SystemExit('out of cheese')\n"), gpu=False)
    assert result.status == "crash" and result.returncode != 0
    assert "out of cheese" in result.log_tail
    assert "out of cheese" in (tmp_path / "logs" / "exp.log").read_text()


@pytest.mark.parametrize("spawn_child", [False, True])
def test_overrun_kills_the_whole_process_group(tmp_path, spawn_child):
    script = "import time\n"
    if spawn_child:  # a grandchild of the launcher, like a data loader worker, must die too
        script += "import subprocess, sys\nsubprocess.Popen([sys.executable, '-c', 'import time; time.sleep(321)'])\n"
    script += "time.sleep(300)\n"
    result = run_training(job(tmp_path, script, budget=2, grace=4), gpu=False)
    assert result.status == "timeout"
    assert result.seconds < 25
    assert "killed after" in (tmp_path / "logs" / "exp.log").read_text()
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert "time.sleep(321)" not in ps
