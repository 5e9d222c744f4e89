"""What the agent is told about the machine its experiments train on: accelerator, CPU, memory, how it is shared.

The accelerator is probed in a short-lived child process (so the driver never holds a CUDA context while
experiments train); the CPU and memory are read here. Trials of the Ray executor may run on other nodes: then the
facts describe the driver's machine, and say so.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from hf_autoresearch.executors.local import usable_cpus

PROBE_TIMEOUT = 120  # seconds: importing torch and initialising CUDA
PROBE = """
import json, torch
facts = {"device": "cpu", "gpus": []}
if torch.cuda.is_available():
    facts["device"] = "cuda"
    for i in range(torch.cuda.device_count()):
        p = torch.cuda.get_device_properties(i)
        facts["gpus"].append({"name": p.name, "memory_gb": round(p.total_memory / 2**30, 1),
                              "capability": f"{p.major}.{p.minor}"})
    facts["bf16"] = torch.cuda.is_bf16_supported()
    facts["fp16"] = True
elif getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
    facts.update(device="mps", bf16=False, fp16=True)
else:
    facts.update(bf16=False, fp16=False)
facts["torch"] = torch.__version__
facts["torch_threads"] = torch.get_num_threads()
print(json.dumps(facts))
"""


def accelerator(env: dict | None = None) -> dict:
    """{device: cuda|mps|cpu, gpus: [{name, memory_gb, capability}], bf16, fp16, torch}, probed in a child process
    with `env` (a slot's CUDA_VISIBLE_DEVICES); {"device": "unknown", "error": ...} when the probe fails."""
    try:
        done = subprocess.run(
            [sys.executable, "-c", PROBE],
            capture_output=True,
            text=True,
            timeout=PROBE_TIMEOUT,
            env={**os.environ, **(env or {})},
        )
        return json.loads(done.stdout.strip().splitlines()[-1])
    except (OSError, subprocess.SubprocessError, json.JSONDecodeError, IndexError) as err:
        return {"device": "unknown", "error": f"{type(err).__name__}: {err}"[:200]}


def memory_gb() -> float | None:
    """This machine's RAM in GiB (Linux /proc/meminfo), None elsewhere."""
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return None


def describe(executor) -> dict:
    """The facts of the machine one trial of `executor` gets: what is there, and its share of it."""
    slots = getattr(executor, "all_slots", None) or []
    share = slots[0].job_options if slots else {}
    env = {"CUDA_VISIBLE_DEVICES": share["cuda_devices"]} if share.get("cuda_devices") is not None else {}
    facts = accelerator(env)
    facts.update(
        executor=getattr(executor, "name", type(executor).__name__),
        workers=executor.workers,
        cpu_cores=usable_cpus(),
        threads_per_trial=share.get("cpu_threads") or None,
        ram_gb=memory_gb(),
    )
    if facts["executor"] != "local":
        facts["note"] = "trials run on the executor's nodes; these are the facts of the machine that drives the run"
    return facts
