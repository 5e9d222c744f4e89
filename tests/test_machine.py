"""The machine facts the claude agent is told (executors/machine.py), probed for real on this machine."""

from __future__ import annotations

import sys
from types import SimpleNamespace

from hf_autoresearch.executors import machine
from hf_autoresearch.executors.local import usable_cpus


def test_describe_probes_the_accelerator_and_reads_the_slot_share():
    import torch

    slot = SimpleNamespace(job_options={"cpu_threads": 1, "owner": "x"})
    facts = machine.describe(SimpleNamespace(name="local", workers=2, all_slots=[slot, slot]))
    assert facts["device"] == ("cuda" if torch.cuda.is_available() else "cpu")
    assert len(facts["gpus"]) == torch.cuda.device_count() and facts["torch"] == torch.__version__
    assert (facts["executor"], facts["workers"], facts["threads_per_trial"]) == ("local", 2, 1)
    assert facts["cpu_cores"] == usable_cpus() and facts["ram_gb"] > 0 and "note" not in facts
    if not torch.cuda.is_available():
        assert facts["bf16"] is False and facts["fp16"] is False
    remote = machine.describe(SimpleNamespace(name="ray", workers=4))
    assert remote["threads_per_trial"] is None and "the machine that drives the run" in remote["note"]


def test_a_failed_probe_says_so(monkeypatch):
    monkeypatch.setattr(sys, "executable", "/nonexistent/python")
    facts = machine.accelerator()
    assert facts["device"] == "unknown" and "FileNotFoundError" in facts["error"]
