"""`hf-autoresearch report`: progress.png, report.md and report.html from a run's ledger."""

from __future__ import annotations

import json

import pytest
from fake_run import fake_run

from hf_autoresearch.cli import main
from hf_autoresearch.ledger import ExperimentRecord, Ledger
from hf_autoresearch.report import write_report
from hf_autoresearch.runinfo import RunInfo, larger_baseline, noise_floor

PNG = b"\x89PNG\r\n\x1a\n"


def image_size(path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def test_report_of_a_run_with_crashes_and_no_keeps(project, tmp_path):
    folder = fake_run(
        project,
        tmp_path / "runs",
        "t1",
        [
            dict(status="keep", description="baseline", selection=0.4123, holdout=0.3988),
            dict(status="crash", description="Bigger model", reason="train.py exited with status 1\nTraceback"),
            dict(status="discard", description="Lower learning rate", selection=0.3871, lr=1),
            dict(status="timeout", description="Many more epochs", reason="killed at budget 60 s + grace 30 s"),
            dict(status="invalid", description="Edit the program", reason="the edit touches program.md"),
        ],
    )
    paths = write_report(folder)
    assert image_size(paths["png"]) == (1800, 1012)
    md = paths["md"].read_text()
    assert "| baseline (exp-0000) |" in md and "| 0.4123 | 0.3988 |" in md
    assert "4 experiments after the baseline: 1 discard, 1 crash, 1 timeout, 1 invalid" in md
    assert "keep rate 0% (0 of 4)" in md
    assert "No experiment beat the baseline." in md
    assert "| exp-0002 | discard | 0.3871 | – |" in md
    assert "| exp-0001 | crash |" in md and "train.py exited with status 1" in md and "Traceback" not in md
    assert "agent cost" not in md  # the replay agent recorded none
    html = paths["html"].read_text()
    assert '<img src="progress.png"' in html and "<td>exp-0004</td>" in html


def test_report_when_even_the_baseline_crashed(project, tmp_path, capsys):
    folder = fake_run(project, tmp_path / "runs", "t2", [dict(status="crash", description="baseline", reason="OOM")])
    assert main(["report", "t2", "--run-dir", str(folder.parent)]) == 0
    assert "report.md" in capsys.readouterr().out
    md = (folder / "report.md").read_text()
    assert "| exp-0000 | crash |" in md and (folder / "progress.png").stat().st_size > 10_000


def test_report_shows_noise_floor_larger_baseline_agent_cost_and_each_keep(project, tmp_path):
    folder = fake_run(
        project,
        tmp_path / "runs",
        "t3",
        [
            dict(
                status="keep",
                description="baseline",
                selection=0.40,
                holdout=0.39,
                decision={"rule": "baseline", "noise": {"mean": 0.401, "std": 0.0125, "repeats": 3}},
            ),
            dict(status="keep", description="Raise the learning rate", selection=0.47, holdout=0.45, lr=3),
            dict(status="discard", description="Lower it again", selection=0.41, lr=1),
            dict(status="keep", description="Even higher", selection=0.52, holdout=0.44, lr=5),
        ],
    )
    (folder / "larger-baseline.json").write_text(
        json.dumps(
            {"model": "HuggingFaceTB/SmolLM2-360M", "scores": {"selection": {"accuracy": 0.61}}, "holdout": 0.6}
        )
    )
    records = Ledger(folder).records()
    for r in records:  # what the claude agent records
        r.agent_usage, r.agent_cost = {"input": 1000}, 0.25
    Ledger(folder).jsonl.write_text("".join(json.dumps(vars(r)) + "\n" for r in records))

    info = RunInfo.load(folder)
    assert noise_floor(info)["std"] == 0.0125
    assert larger_baseline(info) == {
        "model": "HuggingFaceTB/SmolLM2-360M",
        "selection": 0.61,
        "holdout": 0.6,
        "params_M": None,
        "train_seconds": None,
    }
    md = write_report(folder)["md"].read_text()
    assert "| **best (exp-0003)** |" in md and "+0.1200 (+30.0%)" in md
    assert "| larger baseline | `HuggingFaceTB/SmolLM2-360M` | 0.6100 | 0.6000 |" in md
    assert "agent cost $1.00, $0.50 per kept improvement" in md
    assert "0.4010 ± 0.0125" in md
    assert "keep rate 67% (2 of 3)" in md
    # one section per keep, with its gain over the keep before it and its diff
    assert "### exp-0001: Raise the learning rate" in md and "### exp-0003: Even higher" in md
    assert "(+0.0500 over exp-0001)" in md and "+LEARNING_RATE = 5e-4" in md
    assert "### exp-0002" not in md


def test_ledger_rows_without_optional_fields_still_report(project, tmp_path):
    """Older ledgers (no noise, cost or larger baseline) read the same."""
    folder = fake_run(project, tmp_path / "runs", "t4", [dict(status="keep", description="baseline", selection=0.5)])
    info = RunInfo.load(folder)
    assert noise_floor(info) is None and larger_baseline(info) is None
    assert isinstance(info.records[0], ExperimentRecord)


@pytest.mark.slow
def test_report_from_a_real_run(pushed_run):
    folder, _, _ = pushed_run
    records = Ledger(folder).records()
    base, best = records[0], [r for r in records if r.status == "keep"][-1]
    assert main(["report", "e2e", "--run-dir", str(folder.parent)]) == 0
    md = (folder / "report.md").read_text()
    assert f"| baseline (exp-0000) | `{tiny_model(folder)}` | {base.selection:.4f} | {base.holdout:.4f} |" in md
    for r in records:
        holdout = "–" if r.holdout is None else f"{r.holdout:.4f}"
        assert f"| {r.experiment} | {r.status} | {r.selection:.4f} | {holdout} | {r.train_seconds:.0f} |" in md
    if best is not base:  # the edit was kept: its own section, scores, Hub revision and diff
        assert f"**{best.selection:.4f}**" in md and f"**{best.holdout:.4f}**" in md
        assert "### exp-0001: Raise the learning rate to 1e-2 with small batches" in md
        assert "Hub revision `e2e-exp-0001`" in md and "+LEARNING_RATE = 1e-2" in md
    else:
        assert "No experiment beat the baseline." in md
    assert image_size(folder / "progress.png") == (1800, 1012)


def tiny_model(folder) -> str:
    return json.loads((folder / "run.json").read_text())["model"]
