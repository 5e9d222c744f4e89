"""Launch `accelerate launch train.py` under the budget, in a scratch folder and a process session of its own.

The runner is the local executor: one experiment at a time on this machine. At budget + grace it kills the
whole process group (killing the launcher alone would orphan the training child).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

CPU_LAUNCH_ARGS = [
    "--cpu",
    "--num_processes",
    "1",
    "--num_machines",
    "1",
    "--mixed_precision",
    "no",
    "--dynamo_backend",
    "no",
]
GPU_LAUNCH_ARGS = ["--num_processes", "1", "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"]
LOG_TAIL_LINES = 40
KILL_WAIT_SECONDS = 5


@dataclass
class TrainingJob:
    train_py: Path  # copied into the scratch folder before launch, so the script never sees the run folder
    scratch: Path  # holds work/ (the working directory), data/ (training rows only) and output/
    train_data: Path  # a folder of training files, copied into scratch/data
    model: str
    seed: int
    budget_seconds: float
    grace_seconds: float
    log_path: Path
    accelerate_args: tuple[str, ...] = ()
    sandbox_hidden: tuple[Path, ...] | None = None  # with --sandbox: folders training must not see (bubblewrap)


@dataclass
class TrainingResult:
    status: str  # ok / crash / timeout
    returncode: int | None
    seconds: float
    launch_seconds: float
    output_dir: Path
    log_tail: str
    peak_rss_mb: float


def has_gpu() -> bool:
    import torch

    return torch.cuda.is_available()


def launch_command(job: TrainingJob, gpu: bool) -> list[str]:
    defaults = GPU_LAUNCH_ARGS if gpu else CPU_LAUNCH_ARGS
    command = [sys.executable, "-m", "accelerate.commands.launch", *(job.accelerate_args or defaults), "train.py"]
    if job.sandbox_hidden is not None:
        from hf_autoresearch.sandbox import wrap

        command = wrap(command, job.scratch, list(job.sandbox_hidden), needed=[job.model])
    return command


def _environment(job: TrainingJob, data_dir: Path, output_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTORESEARCH_")}
    env.update(
        AUTORESEARCH_DATA_DIR=str(data_dir),
        AUTORESEARCH_OUTPUT_DIR=str(output_dir),
        AUTORESEARCH_TIME_BUDGET=str(job.budget_seconds),
        AUTORESEARCH_SEED=str(job.seed),
        AUTORESEARCH_MODEL=job.model,
        PYTHONUNBUFFERED="1",
    )
    return env


def _log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    if not path.is_file():
        return ""
    text = path.read_bytes()[-20000:].decode(errors="replace").replace("\r", "\n")
    kept = [line for line in text.splitlines() if line.strip()]
    return "\n".join(kept[-lines:])


def kill_group(proc: subprocess.Popen) -> None:
    """SIGTERM the process group, then SIGKILL whatever is left after a few seconds."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + KILL_WAIT_SECONDS
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                break
            time.sleep(0.1)
    # the launcher may be gone while a child lingers in the group: one last sweep
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def run_training(job: TrainingJob, gpu: bool | None = None) -> TrainingResult:
    """Run one training under the budget; always returns, killing the process group on overrun or Ctrl-C."""
    gpu = has_gpu() if gpu is None else gpu
    work, data_dir, output_dir = job.scratch / "work", job.scratch / "data", job.scratch / "output"
    for folder in (work, output_dir):
        folder.mkdir(parents=True, exist_ok=True)
    shutil.copytree(job.train_data, data_dir, dirs_exist_ok=True)
    shutil.copy2(job.train_py, work / "train.py")
    job.log_path.parent.mkdir(parents=True, exist_ok=True)

    started = time.monotonic()
    with job.log_path.open("wb") as log:
        proc = subprocess.Popen(
            launch_command(job, gpu),
            cwd=work,
            env=_environment(job, data_dir, output_dir),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        launch_seconds = time.monotonic() - started
        limit = job.budget_seconds + job.grace_seconds
        status, peak_kb = None, 0
        try:
            while status is None:
                pid, wait_status, usage = os.wait4(proc.pid, os.WNOHANG)
                if pid:
                    proc.returncode = os.waitstatus_to_exitcode(wait_status)
                    peak_kb = usage.ru_maxrss
                    status = "ok" if proc.returncode == 0 else "crash"
                elif time.monotonic() - started > limit:
                    kill_group(proc)
                    status = "timeout"
                else:
                    time.sleep(0.2)
        finally:
            if proc.returncode is None:  # timeout or Ctrl-C: nothing of this experiment may keep running
                kill_group(proc)
            else:
                _reap_stragglers(proc)
    seconds = time.monotonic() - started
    if status == "timeout":
        with job.log_path.open("a") as log:
            log.write(
                f"\n[hf-autoresearch] killed after {seconds:.0f} s: budget {job.budget_seconds:.0f} s "
                f"+ grace {job.grace_seconds:.0f} s\n"
            )
    return TrainingResult(
        status=status,
        returncode=proc.returncode,
        seconds=seconds,
        launch_seconds=launch_seconds,
        output_dir=output_dir,
        log_tail=_log_tail(job.log_path),
        peak_rss_mb=peak_kb / 1024,
    )


def _reap_stragglers(proc: subprocess.Popen) -> None:
    """A launcher that exited may leave background children (data loader workers...) in its group."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
