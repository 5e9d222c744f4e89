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
from hf_autoresearch.driver.run import RunError, resume
from hf_autoresearch.ledger import ExperimentRecord, Ledger
from hf_autoresearch.options import VERSION
from hf_autoresearch.tamper import TamperError


@pytest.fixture
def fake_project(project, banking_subset, tmp_path):
    train = project / "recipes" / "intent-categorization" / "train.py"
    train.write_text(train.read_text() + "\nFAKE_SCORES = [0.50, 0.52, 0.48]  # baseline runs: std 0.02\n")
    return project


def patch_scores(recipe, name, subject, scores, folder):
    return make_patch(
        recipe, subject, [("FAKE_SCORES = [0.50, 0.52, 0.48]", f"FAKE_SCORES = [{scores}]")], folder / name
    )


@pytest.mark.usefixtures("no_sampling_floor")
def test_screen_confirmation_re_measure_and_the_shipped_model(fake_project, banking_subset, tmp_path):
    """K = 3 baseline runs 0.50 0.52 0.48: sigma 0.02 with 2 degrees of freedom."""
    recipe = fake_project / "recipes" / "intent-categorization"
    patches = tmp_path / "patches"
    patch_scores(recipe, "1.patch", "within the noise", "0.51", patches)  # +0.01: below the screen (0.0245)
    patch_scores(recipe, "2.patch", "lucky seed", "0.56, 0.50, 0.50", patches)  # screen passes, the mean 0.52 not
    patch_scores(recipe, "3.patch", "real gain", "0.70, 0.71, 0.69, 0.66, 0.68, 0.67", patches)
    make_patch(recipe, "comment only", [("EPOCHS = 3 ", "# a comment\nEPOCHS = 3 ")], patches / "4.patch")
    run = start_run(recipe, tmp_path / "runs", "fake", data=str(banking_subset), budget=10, baseline_repeats=3)
    executor = FakeExecutor(tmp_path / "models")
    run_loop(run, ReplayAgent(patches), executor)
    base, noise, lucky, real, same = Ledger(run.folder).records()
    assert base.decision["noise"]["std"] == pytest.approx(0.02) and len(base.trials) == 3
    assert [noise.status, lucky.status, real.status, same.status] == ["discard", "discard", "keep", "discard"]
    # the screen: one run, no confirmation spent; the t quantile at 2 degrees of freedom, one run against three
    assert len(noise.trials) == 1 and noise.decision["stage"] == "screen"
    assert noise.decision["df"] == 2 and noise.decision["sigma"] == pytest.approx(0.02)
    assert noise.decision["threshold"] == pytest.approx(1.0607 * 0.02 * (1 + 1 / 3) ** 0.5, rel=1e-3)
    # the lucky first run earns two confirmation runs; the mean of three is tested at 1% (t 6.96 at 2 df)
    assert [t["kind"] for t in lucky.trials] == ["first run", "confirmation", "confirmation"]
    assert "did not confirm" in lucky.reason and lucky.selection == pytest.approx(0.52)
    assert lucky.decision["threshold"] == pytest.approx(6.9646 * 0.02 * (1 / 3 + 1 / 3) ** 0.5, rel=1e-3)
    assert lucky.decision["false_keep_rate"] == 0.01 and lucky.decision["rate_held"] is True
    # the keep: decided on its three runs, then re-measured three times; its score to beat is the re-measure mean
    assert [t["kind"] for t in real.trials] == ["first run"] + ["confirmation"] * 2 + ["re-measure"] * 3
    assert real.decision["score"] == pytest.approx(0.70) and real.decision["decision_mean"] == pytest.approx(0.70)
    assert real.selection == pytest.approx(0.67) and real.decision["stage"] == "mean with confirmation runs"
    # the shipped model is the best of its six on the selection split; the holdout shown is that model's own
    assert real.decision["shipped"]["run"] == 1 and real.holdout == pytest.approx(0.71 - 0.1)
    assert real.decision["holdout_mean"]["models"] == 6
    assert real.decision["holdout_mean"]["value"] == pytest.approx(0.685 - 0.1)
    # the next candidate is judged against the re-measured bar, with the keep's re-measure spread in the pool
    assert same.decision["best"] == pytest.approx(0.67) and same.decision["best_runs"] == 3
    # pooled: the re-measure runs, the real confirmation pair, the baseline; the lucky pair (0.50, 0.50: no spread)
    # is quieter than the pool at this level and left out
    assert same.decision["df"] == 2 + 1 + 2
    # every first run has a seed of its own, none of them the baseline's
    first_seeds = [r.trials[0]["seed"] for r in (noise, lucky, real, same)]
    assert len(set(first_seeds)) == 4 and not set(first_seeds) & {t["seed"] for t in base.trials}
    seeds = [t["seed"] for r in (base, noise, lucky, real, same) for t in r.trials]
    assert len(seeds) == len(set(seeds))


@pytest.mark.usefixtures("no_sampling_floor")
def test_without_confirmation_the_first_run_is_tested_at_the_full_rate(fake_project, banking_subset, tmp_path):
    recipe = fake_project / "recipes" / "intent-categorization"
    patch_scores(recipe, "1.patch", "lucky seed", "0.56, 0.50", tmp_path / "p")  # passed the old z = 2 rule
    patch_scores(recipe, "2.patch", "real gain", "0.80, 0.70", tmp_path / "p")
    run = start_run(
        recipe, tmp_path / "runs", "noconfirm", data=str(banking_subset), budget=10, baseline_repeats=3, confirm=False
    )
    run_loop(run, ReplayAgent(tmp_path / "p"), FakeExecutor(tmp_path / "models"))
    base, lucky, real = Ledger(run.folder).records()
    assert [lucky.status, real.status] == ["discard", "keep"]
    assert lucky.decision["stage"] == "first run" and len(lucky.trials) == 1
    assert lucky.decision["threshold"] == pytest.approx(6.9646 * 0.02 * (1 + 1 / 3) ** 0.5, rel=1e-3)
    assert [t["kind"] for t in real.trials] == ["first run"] + ["re-measure"] * 3


def old_record(number, status, selection, trials, decision, commit, parent=""):
    record = ExperimentRecord(number, status, f"exp {number}", commit=commit, parent=parent, selection=selection)
    record.trials = [{"kind": kind, "commit": commit, "status": "ok", "selection": s} for kind, s in trials]
    record.decision = decision
    return record


@pytest.mark.usefixtures("no_sampling_floor")
def test_a_run_made_before_the_t_test_resumes_with_its_decisions_as_recorded(fake_project, banking_subset, tmp_path):
    """A version-3 run (z = 2 rule, keeps scored by the mean of their deciding runs) is resumed: its ledger lines stay
    byte for byte, and its next experiment is judged by the t-test (a keep recorded by the old rule is a biased
    bar, said so: tests/test_decision.py)."""
    recipe = fake_project / "recipes" / "intent-categorization"
    run = start_run(recipe, tmp_path / "runs", "old", data=str(banking_subset), budget=10, baseline_repeats=3)
    config = json.loads((run.folder / "run.json").read_text())
    config.pop("false_keep_rate")
    (run.folder / "run.json").write_text(json.dumps({**config, "version": 3, "noise_z": 2.0}))
    head = run.workspace.head()
    noise = {"scores": [0.50, 0.52, 0.48], "seeds": [0, 1, 2], "mean": 0.5, "std": 0.02}
    old_rule = {"rule": "gain > max(min_delta, z * noise_std)", "z": 2.0, "noise_std": 0.02, "threshold": 0.04}
    ledger = Ledger(run.folder)
    ledger.append(
        old_record(0, "keep", 0.5, [("baseline", x) for x in (0.50, 0.52, 0.48)], {"rule": "baseline", "noise": noise},
                   head)
    )  # fmt: skip
    ledger.append(
        old_record(1, "discard", 0.53, [("first run", 0.56), ("confirmation", 0.50)],
                   {**old_rule, "stage": "mean with confirmation run", "gain": 0.03}, "c1" * 20, head)
    )  # fmt: skip
    before = (run.folder / "ledger.jsonl").read_bytes()
    patch_scores(recipe, "1.patch", "a real gain", "0.70, 0.71, 0.69", tmp_path / "p")
    lines = []
    resumed = resume(tmp_path / "runs", "old", log=lines.append)
    assert any("decisions stand as recorded" in line for line in lines)
    run_loop(resumed, ReplayAgent(tmp_path / "p"), FakeExecutor(tmp_path / "models"))
    after = (run.folder / "ledger.jsonl").read_bytes()
    assert after.startswith(before)  # never rewritten
    base, old, new = Ledger(run.folder).records()
    assert old.decision == {**old_rule, "stage": "mean with confirmation run", "gain": 0.03}
    assert new.status == "keep" and new.decision["rule"] == "t-test" and new.decision["best"] == 0.5
    assert new.decision["df"] == 2  # the old baseline's runs are a group; the old confirmation pair is not
    assert json.loads((run.folder / "run.json").read_text())["version"] == VERSION


def test_noise_z_is_retired_with_a_message(fake_project, banking_subset, tmp_path):
    recipe = fake_project / "recipes" / "intent-categorization"
    with pytest.raises(RunError, match="--noise-z is retired.*--false-keep-rate"):
        start_run(recipe, tmp_path / "runs", "z", data=str(banking_subset), noise_z=2.0)


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
