"""Honest evaluation: the noise floor, confirmation runs, holdout only for keeps, determinism, tamper checks and
the contamination check, each against a case where it must fire and one where it must not."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import RECIPE, make_patch
from runs import FakeExecutor, run_loop, start_run

from hf_autoresearch.agents import Agent, Proposal
from hf_autoresearch.agents.replay import ReplayAgent
from hf_autoresearch.driver.decision import DecisionRule, NoiseFloor
from hf_autoresearch.driver.run import RunError
from hf_autoresearch.ledger import Ledger
from hf_autoresearch.tamper import TamperError


def test_threshold_is_the_larger_of_min_delta_and_z_sigma():
    noise = NoiseFloor([0.50, 0.52, 0.48], [0, 1, 2])
    assert noise.mean == pytest.approx(0.50) and noise.std == pytest.approx(0.02)
    rule = DecisionRule("maximize", min_delta=0.01, z=2.0, noise=noise)
    assert rule.threshold == pytest.approx(0.04)
    assert rule.decide(0.55, 0.50, 0, "first run")[0] is True
    assert rule.decide(0.53, 0.50, 0, "first run")[0] is False
    assert DecisionRule("maximize", 0.1, 2.0, noise).threshold == 0.1
    assert DecisionRule("minimize", 0.0, 2.0, noise).decide(0.40, 0.50, 0, "x")[0] is True
    assert NoiseFloor([0.5], [0]).std == 0.0


@pytest.fixture
def fake_project(project, banking_subset, tmp_path):
    train = project / "recipes" / "intent-categorization" / "train.py"
    train.write_text(train.read_text() + "\nFAKE_SCORES = [0.50, 0.52, 0.48]  # baseline runs: std 0.02\n")
    return project


def patch_scores(recipe, name, subject, scores, folder):
    return make_patch(
        recipe, subject, [("FAKE_SCORES = [0.50, 0.52, 0.48]", f"FAKE_SCORES = [{scores}]")], folder / name
    )


def test_noise_floor_and_confirmation_decide(fake_project, banking_subset, tmp_path):
    recipe = fake_project / "recipes" / "intent-categorization"
    patches = tmp_path / "patches"
    patch_scores(recipe, "1.patch", "within the noise", "0.53", patches)  # gain 0.03 < 2 sigma = 0.04
    patch_scores(recipe, "2.patch", "lucky seed", "0.56, 0.50", patches)  # clears, mean 0.53 does not
    patch_scores(recipe, "3.patch", "real gain", "0.70, 0.68", patches)  # clears twice
    make_patch(recipe, "comment only", [("EPOCHS = 3 ", "# a comment\nEPOCHS = 3 ")], patches / "4.patch")
    run = start_run(
        recipe,
        tmp_path / "runs",
        "fake",
        agent="replay",
        data=str(banking_subset),
        budget=10,
        baseline_repeats=3,
        confirm=True,
    )
    executor = FakeExecutor(tmp_path / "models")
    run_loop(run, ReplayAgent(patches), executor)
    base, noise, lucky, real, same = Ledger(run.folder).records()
    assert base.decision["noise"]["std"] == pytest.approx(0.02)
    assert base.selection == pytest.approx(0.50) and len(base.trials) == 3
    assert [noise.status, lucky.status, real.status, same.status] == ["discard", "discard", "keep", "discard"]
    assert len(noise.trials) == 1  # below the threshold: no confirmation run spent on it
    assert noise.decision["threshold"] == pytest.approx(0.04) and noise.decision["gain"] == pytest.approx(0.03)
    assert len(lucky.trials) == 2 and "did not confirm" in lucky.reason
    assert lucky.selection == pytest.approx(0.53)
    assert real.selection == pytest.approx(0.69) and real.decision["stage"] == "mean with confirmation run"
    # holdout: for the baseline's three runs and the keep's two, never for a discard
    assert executor.holdout_calls == 5
    assert [r.holdout is None for r in (base, noise, lucky, real, same)] == [False, True, True, False, True]
    tsv = (run.folder / "results.tsv").read_text().splitlines()
    assert tsv[0].split("\t")[-3:] == ["gain", "threshold", "description"]


def test_without_confirmation_a_single_lucky_run_is_kept(fake_project, banking_subset, tmp_path):
    recipe = fake_project / "recipes" / "intent-categorization"
    patch_scores(recipe, "1.patch", "lucky seed", "0.56, 0.50", tmp_path / "p")
    run = start_run(
        recipe,
        tmp_path / "runs",
        "noconfirm",
        agent="replay",
        data=str(banking_subset),
        budget=10,
        baseline_repeats=3,
        confirm=False,
    )
    run_loop(run, ReplayAgent(tmp_path / "p"), FakeExecutor(tmp_path / "models"))
    assert [r.status for r in Ledger(run.folder).records()] == ["keep", "keep"]


class TamperingAgent(Agent):
    """An agent whose edit is fine but which also rewrites the metric code on the side."""

    name = "tampering"

    def __init__(self, metric_file: Path):
        self.metric_file = metric_file

    def propose(self, context):
        source = context.train_py.read_text()
        context.train_py.write_text(source.replace("EPOCHS = 3", "EPOCHS = 4"))
        self.metric_file.write_text(
            self.metric_file.read_text().replace("accuracy_score(references, predictions)", "1.0")
        )
        return Proposal("more epochs")


@pytest.mark.slow
def test_tampered_metric_stops_the_run_and_the_ledger_stays_consistent(project, banking_subset, tiny_bert, tmp_path):
    recipe = project / "recipes" / "intent-categorization"
    metric = tmp_path / "mymetric"
    shutil.copytree(RECIPE.parents[1] / "hf_autoresearch" / "metrics" / "classification", metric)
    (metric / "classification.py").rename(metric / "mymetric.py")
    toml = recipe / "recipe.toml"
    toml.write_text(toml.read_text().replace('module = "classification"', f'module = "{metric}"'))
    run = start_run(
        recipe,
        tmp_path / "runs",
        "tamper",
        agent="replay",
        data=str(banking_subset),
        model=str(tiny_bert),
        budget=10,
        grace=60,
        baseline_repeats=1,
        confirm=False,
    )
    with pytest.raises(TamperError, match="mymetric.py"):
        run_loop(run, TamperingAgent(metric / "mymetric.py"), max_experiments=1)
    assert [r.number for r in Ledger(run.folder).records()] == [0]  # the tampered experiment is not recorded
    assert "EPOCHS = 4" not in run.workspace.train_py.read_text()  # and the worktree is back at the best


def test_contamination_is_dropped_by_default_and_fails_on_request(project, banking_subset, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(banking_subset, data)
    test_rows = (data / "test.csv").read_text().splitlines()
    # two holdout rows leak into train: one verbatim, one with other case and punctuation
    leaked = [test_rows[1], test_rows[2].upper().replace("?", "!")]
    (data / "train.csv").write_text((data / "train.csv").read_text() + "\n".join(leaked) + "\n")
    recipe = project / "recipes" / "intent-categorization"
    messages = []
    run = start_run(recipe, tmp_path / "runs", "clean", data=str(data), log=messages.append)
    report = json.loads((run.folder / "contamination.json").read_text())
    assert report["counts"]["exact_holdout"] >= 2
    train_texts = {json.loads(line)["text"] for line in (run.splits / "train" / "train.jsonl").open()}
    assert not any(row.rsplit(",", 1)[0].strip('"') in train_texts for row in leaked)
    assert any("dropped" in m for m in messages)
    with pytest.raises(RunError, match="duplicate selection or holdout rows"):
        start_run(
            recipe,
            tmp_path / "runs",
            "strict",
            agent="replay",
            data=str(data),
            contamination="fail",
        )


def test_clean_data_passes_the_contamination_check(project, banking_subset, tmp_path):
    run = start_run(
        project / "recipes" / "intent-categorization",
        tmp_path / "runs",
        "ok",
        agent="replay",
        data=str(banking_subset),
        contamination="fail",
    )
    assert json.loads((run.folder / "contamination.json").read_text())["counts"] == {"train_rows": 0}


@pytest.mark.slow
def test_noise_floor_is_recorded_and_a_comment_only_edit_is_discarded(project, banking_subset, tiny_bert, tmp_path):
    """Real training: two baseline seeds give the noise floor; the same code with the same seed gives the same score,
    so an edit that only adds a comment cannot be kept."""
    recipe = project / "recipes" / "intent-categorization"
    patches = tmp_path / "patches"
    make_patch(
        recipe, "Only a comment", [("EPOCHS = 3 ", "EPOCHS = 3  # unchanged\nEPOCHS = 3 ")], patches / "1.patch"
    )
    run = start_run(
        recipe,
        tmp_path / "runs",
        "real",
        agent="replay",
        data=str(banking_subset),
        model=str(tiny_bert),
        budget=12,
        grace=60,
        baseline_repeats=2,
    )
    run_loop(run, ReplayAgent(patches))
    base, comment = Ledger(run.folder).records()
    assert [t["seed"] for t in base.trials] == [0, 1]
    assert (run.folder / "logs" / "exp-0000-run2.log").is_file()
    assert base.decision["noise"]["scores"] == [t["selection"] for t in base.trials]
    assert comment.status == "discard"
    assert comment.trials[0]["selection"] == base.trials[0]["selection"]  # deterministic on CPU for one seed


def test_status_reports_the_holdout_gap_and_warns_when_the_holdout_did_not_improve():
    from hf_autoresearch.ledger import ExperimentRecord
    from hf_autoresearch.reporting.status import holdout_gap

    base = ExperimentRecord(number=0, status="keep", description="baseline", selection=0.50, holdout=0.48)
    honest = ExperimentRecord(number=3, status="keep", description="x", selection=0.60, holdout=0.57)
    overfit = ExperimentRecord(number=4, status="keep", description="y", selection=0.60, holdout=0.47)
    lines = holdout_gap(base, honest)
    assert "selection gain +0.1000, holdout gain +0.0900" in lines[0] and len(lines) == 1
    lines = holdout_gap(base, overfit)
    assert len(lines) == 2 and "holdout did not" in lines[1]
    assert holdout_gap(base, base) == []
