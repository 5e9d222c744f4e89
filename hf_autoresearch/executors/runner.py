"""Launch `accelerate launch train.py` under the budget, in a scratch folder and a process session of its own.

The runner is the local executor: one training on this machine (a slot may pin it to some CPU threads and GPUs).
The deadline is fixed when the process is launched and passed as AUTORESEARCH_DEADLINE (an absolute Unix time), so
the seconds train.py spends importing torch count; at deadline + grace the whole process group is killed (killing
the launcher alone would orphan the training child), and a second Ctrl-C or a SIGTERM cannot cut that kill short.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from hf_autoresearch.executors.crash import crash_reason

COMMON_LAUNCH_ARGS = ["--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"]
CPU_LAUNCH_ARGS = ["--cpu", "--num_processes", "1", *COMMON_LAUNCH_ARGS]
GPU_LAUNCH_ARGS = ["--num_processes", "1", *COMMON_LAUNCH_ARGS]
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")  # torch's intra-op pool reads OMP
OWNER_VARIABLE = "HF_AUTORESEARCH_OWNER"
LOG_TAIL_LINES = 40
KILL_WAIT_SECONDS = 5
DEFERRED_SIGNALS = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}


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
    cpu_threads: int | None = None  # a slot's share of the CPU: OMP/MKL/OpenBLAS threads of the training
    cuda_devices: str | None = None  # a slot's GPUs, as CUDA_VISIBLE_DEVICES ("" hides every GPU)
    num_processes: int = 1  # on GPU, K > 1 launches K processes (one a GPU) with --multi_gpu
    owner: str = ""  # an opaque id of the run: kill_owned(owner) finds its processes after the harness died


@dataclass
class TrainingResult:
    status: str  # ok / crash / timeout
    returncode: int | None
    seconds: float
    launch_seconds: float
    output_dir: Path
    log_tail: str
    peak_rss_mb: float
    reason: str = ""  # "" when ok; the exception's line ("KeyError: 'text'"), an exit status, or the kill message


def has_gpu() -> bool:
    import torch

    return torch.cuda.is_available()


def free_port() -> int:
    """A TCP port free right now, for the rendezvous of one multi-GPU training (slots must not share 29500)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch_args(job: TrainingJob, gpu: bool) -> list[str]:
    """The recipe's `accelerate launch` arguments, else ours; with num_processes > 1 on GPU, a multi-GPU launch."""
    args = list(job.accelerate_args or (GPU_LAUNCH_ARGS if gpu else CPU_LAUNCH_ARGS))
    if gpu and job.num_processes > 1:
        if "--num_processes" in args:
            args[args.index("--num_processes") + 1] = str(job.num_processes)
        else:
            args += ["--num_processes", str(job.num_processes)]
        if "--multi_gpu" not in args:
            args.append("--multi_gpu")
        if "--main_process_port" not in args:
            args += ["--main_process_port", str(free_port())]
    return args


def launch_command(job: TrainingJob, gpu: bool) -> list[str]:
    command = [sys.executable, "-m", "accelerate.commands.launch", *launch_args(job, gpu), "train.py"]
    if job.sandbox_hidden is not None:
        from hf_autoresearch.executors.sandbox import wrap

        command = wrap(command, job.scratch, list(job.sandbox_hidden), needed=[job.model])
    return command


def _environment(job: TrainingJob, data_dir: Path, output_dir: Path, deadline: float) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTORESEARCH_") and k != OWNER_VARIABLE}
    env.update(
        AUTORESEARCH_DATA_DIR=str(data_dir),
        AUTORESEARCH_OUTPUT_DIR=str(output_dir),
        AUTORESEARCH_TIME_BUDGET=str(job.budget_seconds),
        AUTORESEARCH_DEADLINE=repr(deadline),
        AUTORESEARCH_SEED=str(job.seed),
        AUTORESEARCH_MODEL=job.model,
        PYTHONUNBUFFERED="1",
    )
    if job.cpu_threads is not None:
        env.update(dict.fromkeys(THREAD_VARIABLES, str(job.cpu_threads)))
    if job.cuda_devices is not None:
        env["CUDA_VISIBLE_DEVICES"] = job.cuda_devices
    if job.owner:
        env[OWNER_VARIABLE] = job.owner
    return env


def _log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    if not path.is_file():
        return ""
    text = path.read_bytes()[-20000:].decode(errors="replace").replace("\r", "\n")
    kept = [line for line in text.splitlines() if line.strip()]
    return "\n".join(kept[-lines:])


@contextmanager
def signals_deferred() -> Iterator[None]:
    """Hold SIGINT, SIGTERM and SIGHUP until the block ends; they are delivered then (a Ctrl-C still stops us)."""
    old = signal.pthread_sigmask(signal.SIG_BLOCK, DEFERRED_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


@contextmanager
def sigterm_interrupts() -> Iterator[None]:
    """In the main thread, make SIGTERM raise KeyboardInterrupt (its default kills us before the group is killed)."""
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGTERM) != signal.SIG_DFL:
        yield
        return

    def interrupt(signum, frame):
        raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")

    signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def kill_group(proc: subprocess.Popen) -> None:
    """SIGTERM the process group, SIGKILL whatever is left after a few seconds, and wait for it to go.

    Signals to the harness are held meanwhile: a second Ctrl-C (or a SIGTERM) during the kill is acted on after
    it, so it can never leave training running.
    """
    with signals_deferred():
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                break
            deadline = time.monotonic() + KILL_WAIT_SECONDS
            while time.monotonic() < deadline and proc.poll() is None:
                time.sleep(0.1)
        # the launcher may be gone while a child lingers in the group: sweep until the group is empty
        deadline = time.monotonic() + KILL_WAIT_SECONDS
        while _group_alive(proc.pid) and time.monotonic() < deadline:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                break
            proc.poll()
            time.sleep(0.05)


def run_training(job: TrainingJob, gpu: bool | None = None) -> TrainingResult:
    """Run one training under the budget; always returns, killing the process group on overrun or Ctrl-C."""
    gpu = has_gpu() if gpu is None else gpu
    work, data_dir, output_dir = job.scratch / "work", job.scratch / "data", job.scratch / "output"
    for folder in (work, output_dir):
        folder.mkdir(parents=True, exist_ok=True)
    shutil.copytree(job.train_data, data_dir, dirs_exist_ok=True)
    shutil.copy2(job.train_py, work / "train.py")
    job.log_path.parent.mkdir(parents=True, exist_ok=True)
    command = launch_command(job, gpu)

    with job.log_path.open("wb") as log, sigterm_interrupts():
        started = time.monotonic()  # the budget counts from here, for the harness and (as the deadline) for train.py
        limit = job.budget_seconds + job.grace_seconds
        proc, status, peak_kb = None, None, 0
        try:  # opened before the launch, so a Ctrl-C the moment it returns still kills the group
            proc = subprocess.Popen(
                command,
                cwd=work,
                env=_environment(job, data_dir, output_dir, deadline=time.time() + job.budget_seconds),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
            launch_seconds = time.monotonic() - started
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
            if proc is not None and proc.returncode is None:  # timeout or Ctrl-C: nothing of it may keep running
                kill_group(proc)
            elif proc is not None:  # (None: the launch itself failed, no process exists)
                _reap_stragglers(proc)
    seconds = time.monotonic() - started
    reason = ""
    if status == "timeout":
        reason = f"killed after {seconds:.0f} s: budget {job.budget_seconds:.0f} s + grace {job.grace_seconds:.0f} s"
        with job.log_path.open("a") as log:
            log.write(f"\n[hf-autoresearch] {reason}\n")
    elif status == "crash":
        reason = crash_reason(job.log_path, proc.returncode)
    return TrainingResult(
        status=status,
        returncode=proc.returncode,
        seconds=seconds,
        launch_seconds=launch_seconds,
        output_dir=output_dir,
        log_tail=_log_tail(job.log_path),
        peak_rss_mb=peak_kb / 1024,
        reason=reason,
    )


def _reap_stragglers(proc: subprocess.Popen) -> None:
    """A launcher that exited may leave background children (data loader workers...) in its group."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def owned_processes(owner: str) -> list[int]:
    """Processes started for `owner` (their environment carries it): what a harness killed with SIGKILL left."""
    marker = f"{OWNER_VARIABLE}={owner}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if marker in (entry / "environ").read_bytes().split(b"\0"):
                found.append(int(entry.name))
        except OSError:  # gone, or not ours to read
            continue
    return found


def kill_owned(owner: str) -> int:
    """SIGKILL every process left behind by `owner`'s trainings (call it on resume); returns how many there were."""
    if not owner:
        raise ValueError("kill_owned needs the owner id the jobs were started with")
    killed: set[int] = set()
    for _ in range(10):  # a dying process may still fork: sweep until nothing is found
        pids = owned_processes(owner)
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
                killed.add(pid)
            except ProcessLookupError:
                pass
        time.sleep(0.1)
    return len(killed)
