"""What the claude agent is told (agents/prompts.py) and reads (agents/tools.py), on synthetic ledgers."""

from __future__ import annotations

import sys

import pytest
from conftest import ROOT

from hf_autoresearch.agents.editor import TrainPyEditor
from hf_autoresearch.agents.prompts import machine_text
from hf_autoresearch.agents.tools import run_tool

sys.path.insert(0, str(ROOT / "scripts"))
import prompt_size  # noqa: E402  (the synthetic ledgers of scripts/prompt_size.py)


def test_the_prompt_stays_bounded_as_a_run_grows():
    sizes = {}
    for n in (10, 100, 300):
        system, task = prompt_size.prompts(n)
        sizes[n] = len(system) + len(task)
    assert sizes[300] < 1.15 * sizes[100] and sizes[300] < 40_000
    task = prompt_size.prompts(300)[1]
    table = task.split("History")[1].split("The edits of the latest")[0]
    rows = [line for line in table.splitlines() if line.startswith("| exp-")]
    assert len(rows) <= 1 + 15 + 25 and rows[0].startswith("| exp-0000 | keep |") and "exp-0300" in rows[-1]
    # the rows left out are summed up, by status, with the range of their scores
    assert "older rows not shown (exp-0001 to exp-0" in table and "discard" in table and "ranged 0." in table


def test_the_machine_the_curves_invalid_reasons_and_notes_are_in_the_prompt():
    system, task = prompt_size.prompts(10)
    assert "- accelerator: CUDA, 1 GPU visible to each trial: NVIDIA H100 80GB HBM3 (79.1 GB" in system
    assert "bf16 yes, fp16 yes" in system and "16 CPU cores, 4 threads for each trial; RAM 125.8 GB" in system
    assert "4 trials at once share it" in system and "0.8 s" not in system  # program.md: no machine numbers
    baseline = next(line for line in task.splitlines() if line.startswith("| exp-0000 "))
    assert "(0.8000, 0.8100, 0.7900)" in baseline and "macro_f1 0.7800" in baseline and "| 700/900 |" in baseline
    assert "| 411.0 | 8 | 1 | 2100 RSS | baseline |" in baseline and "| 4.26 2.54 1.54 0.868 0.545 |" in baseline
    invalid = task.split("Recent invalid proposals")[1]
    assert "exp-0008: train.py does not compile" in invalid and invalid.count("  detail") == 5  # in full
    notes = task.split("Your own notes")[1]
    assert "exp-0010 (discard): ...s stop at 700" in notes and "so cosine schedule ..." in notes


def test_the_curve_tool_reads_one_experiment_in_full(tmp_path):
    system, task = prompt_size.prompts(10)
    history = prompt_size.synthetic_history(10)
    context = type("Context", (), {"history": history, "number": 11, "run_folder": None})()
    text, description = run_tool(
        "read_experiment_curve", {"experiment": 0}, TrainPyEditor.__new__(TrainPyEditor), context
    )
    assert description is None
    lines = text.splitlines()
    assert lines[0] == "exp-0000 (keep): baseline"
    assert "selection scores (mean over runs): accuracy 0.8000, macro_f1 0.7800" in text
    assert "run 1 (baseline, seed 1): selection 0.8100" in text
    assert "completed_steps 700" in text and "planned_steps 900" in text
    assert sum(1 for line in lines if line[:1].isdigit()) == 70  # every logged step
    crash = run_tool("read_experiment_curve", {"experiment": 7}, None, context)[0]
    assert "reason: ValueError: Expected input batch_size" in crash and "no training curve was recorded" in crash
    assert "your notes when you proposed it:" in crash


@pytest.mark.parametrize(
    ("facts", "expected"),
    [
        ({}, "- not known"),
        (
            {"device": "cpu", "gpus": [], "workers": 1, "cpu_cores": 2, "ram_gb": 7.6, "executor": "local"},
            "- accelerator: CPU only (no GPU); bf16 no, fp16 no\n- CPU: 2 CPU cores, all of them for the trial; "
            "RAM 7.6 GB\n- executor: local, one trial at a time; torch ?",
        ),
    ],
)
def test_machine_text(facts, expected):
    assert machine_text(facts) == expected
