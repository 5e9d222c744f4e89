"""A watchdog that outlives the harness: when the harness ends in any way (a return, Ctrl-C, SIGKILL), the pipe to
this process closes and it kills every process started for the run (trainings and evaluations carry the run's owner
id in their environment, see runner.kill_owned). Trainings run in process sessions of their own, so nothing else
would stop them when a harness is killed with SIGKILL.

    python -m hf_autoresearch.executors.reaper OWNER [FOLDER...]   (stdin: a pipe from the harness; never written)

The FOLDERs (scratch folders under /tmp) are removed after the processes are gone.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from hf_autoresearch.executors.runner import OWNER_VARIABLE, kill_owned


def start(owner: str, folders: list[Path] = ()) -> subprocess.Popen:
    """Start the watchdog for `owner`; it acts when this process exits or `stop` is called."""
    env = {k: v for k, v in os.environ.items() if k != OWNER_VARIABLE}  # it must not count itself as the run's
    return subprocess.Popen(
        [sys.executable, "-m", "hf_autoresearch.executors.reaper", owner, *map(str, folders)],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        env=env,
        start_new_session=True,  # a Ctrl-C in the terminal reaches the harness, not its watchdog
    )


def stop(proc: subprocess.Popen, timeout: float = 30) -> None:
    """Close the pipe: the watchdog kills what is left of the run's processes, and exits."""
    try:
        proc.stdin.close()
        proc.wait(timeout=timeout)
    except (OSError, subprocess.TimeoutExpired):
        proc.kill()
        proc.wait()


def main(argv: list[str]) -> int:
    owner, folders = argv[0], argv[1:]
    sys.stdin.buffer.read()  # returns at EOF: the harness closed the pipe or died
    kill_owned(owner)
    for folder in folders:
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
