"""`hf-autoresearch report`: progress.png, report.md and report.html from a run's ledger."""

from __future__ import annotations

import json

import pytest
from fake_run import fake_run
from run_shapes import agent_usage, baseline_decision, save_weights, set_usage, write_larger_baseline

from hf_autoresearch.cli import main
from hf_autoresearch.ledger import Ledger
from hf_autoresearch.reporting.larger_baseline import count_parameters
from hf_autoresearch.reporting.report import write_report
from hf_autoresearch.reporting.summary import format_params

PNG = b"\x89PNG\r\n\x1a\n"
BASELINE = baseline_decision([0.39, 0.40, 0.41])


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


def test_report_shows_noise_floor_larger_baseline_agent_cost_and_each_keep(project, tmp_path, monkeypatch):
    """Every input in the shape the harness writes it: the baseline's NoiseFloor, the claude agent's Usage,
    larger-baseline.json from `larger_model.score_larger_model`, safetensors weights."""
    folder = fake_run(
        project,
        tmp_path / "runs",
        "t3",
        [
            dict(status="keep", description="baseline", selection=0.40, holdout=0.39, decision=BASELINE),
            dict(status="keep", description="Raise the learning rate", selection=0.47, holdout=0.45, lr=3),
            dict(status="discard", description="Lower it again", selection=0.41, lr=1),
            dict(status="keep", description="Even higher", selection=0.52, holdout=0.44, lr=5),
        ],
    )
    set_usage(folder, {n: agent_usage(50_000, 10_000) for n in (1, 2, 3)})  # $0.20 a proposal at sonnet-5-5
    for number in (0, 1, 3):
        save_weights(folder / "models" / f"exp-{number:04d}", {"w": (227, 100)})
    write_larger_baseline(
        folder, monkeypatch, model="acme/larger", selection=0.61, holdout=0.60, shapes={"w": (1095, 100)}
    )

    md = write_report(folder)["md"].read_text()
    model = "`sentence-transformers/all-MiniLM-L6-v2`"
    assert f"| baseline (exp-0000) | {model} | 22.7K | 0.4000 | 0.3900 |" in md
    best = "| **0.5200** | **0.4400** | +0.1200 (+30.0%) | +0.0500 (+12.8%) |"
    assert f"| **best (exp-0003)** | {model} | 22.7K {best}" in md
    assert "| larger baseline | `acme/larger` | 109.5K | 0.6100 | 0.6000 | best -0.0900 (-14.8%) | best -0.1600" in md
    assert "agent cost $0.60, $0.30 per kept improvement" in md
    assert "noise floor: the baseline trained 3 times scores 0.4000 ± 0.0100 (std)" in md
    assert "keeps had to gain more than 0.0200" in md
    assert "keep rate 67% (2 of 3)" in md
    assert "selection gain +0.1200, holdout gain +0.0500, gap +0.0700" in md
    # one section per keep, with its gain over the keep before it and its diff
    assert "### exp-0001: Raise the learning rate" in md and "### exp-0003: Even higher" in md
    assert "(+0.0500 over exp-0001)" in md and "+LEARNING_RATE = 5e-4" in md
    assert "### exp-0002" not in md
    # the numeric columns are right-aligned, the params one included
    assert "|---|---|---:|---:|---:|---:|---:|" in md


def test_a_run_without_noise_floor_cost_or_larger_baseline_reports_none_of_them(project, tmp_path):
    folder = fake_run(project, tmp_path / "runs", "t4", [dict(status="keep", description="baseline", selection=0.5)])
    md = write_report(folder)["md"].read_text()
    assert "| baseline (exp-0000) |" in md and "noise floor" not in md
    assert "agent cost" not in md and "larger baseline" not in md and "no experiments after the baseline yet" in md


@pytest.mark.slow
def test_report_from_a_real_run(pushed_run):
    folder, _, _ = pushed_run
    records = Ledger(folder).records()
    base, best = records[0], [r for r in records if r.status == "keep"][-1]
    assert main(["report", "e2e", "--run-dir", str(folder.parent)]) == 0
    md = (folder / "report.md").read_text()
    params = format_params(count_parameters(folder / "models" / "exp-0000"))  # the real model's safetensors
    assert params != "?"
    scores = f"{base.selection:.4f} | {base.holdout:.4f}"
    assert f"| baseline (exp-0000) | `{tiny_model(folder)}` | {params} | {scores} |" in md
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
