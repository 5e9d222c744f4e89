"""summary.RunSummary: one run summary from the files the harness writes, rendered by status, report and the card."""

from __future__ import annotations

import io
import json
import statistics

import pytest
from fake_run import fake_run
from rich.console import Console
from run_shapes import agent_usage, baseline_decision, save_weights, set_usage, write_larger_baseline

from hf_autoresearch.errors import UserError
from hf_autoresearch.ledger import ExperimentRecord
from hf_autoresearch.reporting.larger_baseline import count_parameters
from hf_autoresearch.reporting.status import comparison_lines, print_status
from hf_autoresearch.reporting.summary import RunSummary, relative_gain

BASELINE_RUNS = [0.40, 0.41, 0.43]
SMALL = {"embeddings": (500, 32), "head": (32, 5)}  # 16,160 parameters


def outcomes(noise=BASELINE_RUNS):
    return [
        dict(status="keep", description="baseline", selection=0.41, holdout=0.39, decision=baseline_decision(noise)),
        dict(status="keep", description="Raise the learning rate", selection=0.47, holdout=0.45, lr=3),
        dict(status="discard", description="Lower it again", selection=0.41, lr=1),
        dict(status="crash", description="Bigger batch", reason="train.py exited with status 1"),
        dict(status="keep", description="Even higher", selection=0.52, holdout=0.44, lr=5, total_seconds=130.0),
    ]


@pytest.fixture
def run(project, tmp_path, monkeypatch):
    folder = fake_run(project, tmp_path / "runs", "t1", outcomes())
    set_usage(folder, {1: agent_usage(1000, 200, requests=2), 2: agent_usage(3000, 100), 4: agent_usage(500, 50)})
    for number in (0, 1, 4):
        save_weights(folder / "models" / f"exp-{number:04d}", SMALL)
    write_larger_baseline(folder, monkeypatch, selection=0.50, holdout=0.48)
    return folder


def test_the_summary_reads_the_numbers_the_harness_wrote(run):
    s = RunSummary.load(run)
    assert (s.baseline.number, s.best.number) == (0, 4)
    assert (s.task, s.metric, s.direction) == ("classification", "accuracy", "maximize")
    # the noise floor is the baseline's decision; the threshold is the keep rule's, with run.json's z and min_delta
    assert s.noise.scores == BASELINE_RUNS
    assert s.noise.std == pytest.approx(statistics.stdev(BASELINE_RUNS))
    assert s.threshold == pytest.approx(2.0 * statistics.stdev(BASELINE_RUNS))
    # counts are of the agent's experiments, after the baseline
    assert len(s.experiments) == 4
    assert s.counts == {"keep": 2, "discard": 1, "crash": 1, "timeout": 0, "invalid": 0}
    assert s.keep_rate == 0.5
    assert s.hours == pytest.approx((4 * 70 + 130) / 3600)
    assert s.experiments_per_hour == pytest.approx(5 / s.hours)
    # gains of the best over the baseline, positive is better; the gap is what the holdout does not confirm
    assert s.gain("selection") == pytest.approx(0.11) and s.gain("holdout") == pytest.approx(0.05)
    assert s.gap == pytest.approx(0.06) and not s.holdout_disagrees
    assert s.gain("selection", s.baseline) is None
    # the agent's cost and tokens, summed from what the agent recorded
    # by hand, at Sonnet 5.5's $2 input and $10 output per million tokens: 4500 x $2 + 350 x $10 = $0.0125
    assert s.agent_cost == pytest.approx(0.0125) and s.cost_per_keep == pytest.approx(0.00625)
    assert s.agent_tokens["input_tokens"] == 4500 and s.agent_tokens["requests"] == 4
    # the larger baseline as `hf-autoresearch baseline` wrote it, and both parameter counts
    assert s.larger.model == "acme/larger-encoder" and s.larger.ok and s.larger.trained
    assert (s.larger.selection, s.larger.holdout) == (0.50, 0.48)
    assert s.larger.num_params == 1000 * 64 + 64 * 5 and s.larger.train_seconds == 55.0
    assert s.params == 500 * 32 + 32 * 5
    assert s.vs_larger("selection") == pytest.approx(0.04) and s.vs_larger("holdout") == pytest.approx(-0.04 / 0.48)


def test_a_baseline_trained_once_has_no_noise_floor_and_min_delta_decides(project, tmp_path):
    folder = fake_run(project, tmp_path / "runs", "t2", outcomes(noise=[0.41]))
    config = json.loads((folder / "run.json").read_text())
    (folder / "run.json").write_text(json.dumps({**config, "min_delta": 0.01}))
    s = RunSummary.load(folder)
    assert s.noise is None and s.threshold == 0.01
    assert s.larger is None and s.params is None  # the stand-in weights are not safetensors: no count
    assert s.agent_cost is None  # nothing recorded usage (replay, optuna)


def test_minimize_turns_the_gains_around(project, tmp_path):
    folder = fake_run(
        project,
        tmp_path / "runs",
        "t3",
        [
            dict(status="keep", description="baseline", selection=0.50, holdout=0.52),
            dict(status="keep", description="lower loss", selection=0.40, holdout=0.53),
        ],
    )
    recipe = folder / "worktree" / "recipes" / "intent-categorization" / "recipe.toml"
    recipe.write_text(recipe.read_text().replace('direction = "maximize"', 'direction = "minimize"'))
    s = RunSummary.load(folder)
    assert s.direction == "minimize"
    assert s.gain("selection") == pytest.approx(0.10) and s.gain("holdout") == pytest.approx(-0.01)
    assert s.holdout_disagrees


def test_the_task_comes_from_run_json_else_from_the_recipe_in_the_worktree(project, tmp_path):
    folder = fake_run(project, tmp_path / "runs", "t4", outcomes())
    config = json.loads((folder / "run.json").read_text())
    (folder / "run.json").write_text(json.dumps({**config, "task": "query-expansion"}))
    assert RunSummary.load(folder).task == "query-expansion"
    del config["task"], config["version"]  # run.json as version 1 wrote it
    (folder / "run.json").write_text(json.dumps(config))
    assert RunSummary.load(folder).task == "classification"  # the worktree's recipe.toml says
    with pytest.raises(UserError, match="no run.json"):
        RunSummary.load(tmp_path)


def test_a_crashed_larger_baseline_is_reported_not_compared(project, tmp_path, monkeypatch):
    folder = fake_run(project, tmp_path / "runs", "t5", outcomes())
    write_larger_baseline(folder, monkeypatch, status="crash")
    s = RunSummary.load(folder)
    assert s.larger.status == "crash" and not s.larger.ok and s.larger.selection is None
    assert s.vs_larger("selection") is None
    lines = comparison_lines(s)
    assert len(lines) == 1 and lines[0].startswith("larger baseline larger-encoder")
    assert "crash (training ended in crash" in lines[0]


def test_status_prints_the_summary_with_both_parameter_counts(run):
    out = io.StringIO()
    print_status(run, Console(file=out, width=200))
    text = out.getvalue()
    assert (
        "best exp-0004: selection 0.5200 (baseline 0.4100), holdout 0.4400 (one model; baseline 0.3900, one model)"
        in text
    )
    assert "4 experiments after the baseline: 2 keep, 1 discard, 1 crash; 43.9 experiments an hour" in text
    rule = "keeps had to gain more than 0.0306 (z 2 times the baseline's std)"  # a run made before the t-test
    assert f"noise floor: 3 baseline runs, mean 0.4133, std 0.0153; {rule}" in text
    assert "selection gain +0.1100, holdout gain +0.0500: gap +0.0600" in text
    # three proposals called the API (one of them twice); the baseline called none. 4500 x $2 + 350 x $10 per million
    assert "agent cost $0.0125 over 3 proposals ($0.0042 an experiment): 4 requests" in text
    assert "larger baseline larger-encoder (64.3K params, trained 55 s): selection 0.5000, holdout 0.4800" in text
    assert "best exp-0004 (16.2K params, trained 40 s): selection 0.5200 (+0.0200, +4.0% vs larger)" in text


def test_relative_gain_follows_the_direction():
    assert relative_gain(0.6, 0.5, "maximize") == pytest.approx(0.2)
    assert relative_gain(0.4, 0.5, "minimize") == pytest.approx(0.2)
    assert relative_gain(0.4, 0.5, "maximize") == pytest.approx(-0.2)
    assert relative_gain(0.4, 0.0, "maximize") is None and relative_gain(None, 0.5, "maximize") is None


def test_count_parameters_reads_headers_adds_an_adapters_local_base_and_skips_what_is_not_safetensors(tmp_path):
    base = tmp_path / "base"
    assert count_parameters(base) is None
    assert save_weights(base, {"a": (10, 3), "b": (7,)}) == 37 == count_parameters(base)
    adapter = tmp_path / "adapter"
    save_weights(adapter, {"lora_A": (4, 3)})
    (adapter / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": str(base)}))
    assert count_parameters(adapter) == 12 + 37
    (adapter / "model-2.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}")
    assert count_parameters(adapter) is None  # one unreadable shard: no count rather than a wrong one
    (base / "model.safetensors").write_bytes(b"weights of exp-0001")  # a stand-in, not a safetensors file
    assert count_parameters(base) is None


def test_the_holdout_shown_is_labelled_the_shipped_models_or_a_mean_of_several():
    shipped = ExperimentRecord(3, "keep", "new", holdout=0.7)
    shipped.decision = {"shipped": {"run": 1, "holdout": 0.7}, "holdout_mean": {"value": 0.66, "models": 6}}
    older = ExperimentRecord(2, "keep", "old", holdout=0.65)  # the old rule recorded the mean of both runs' models
    older.trials = [{"kind": "first run", "holdout": 0.6}, {"kind": "confirmation", "holdout": 0.7}]
    assert RunSummary.holdout_label(shipped) == "shipped model"
    assert RunSummary.holdout_label(older) == "mean of 2 models"
