"""Tasks are plug-ins: a task the package does not ship runs through the loop, and `init` makes a runnable recipe."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from conftest import ROOT, git, read_csv, write_csv
from runs import record_baseline, run_loop, start_run

from hf_autoresearch.agents import Agent, Proposal
from hf_autoresearch.agents.optuna_agent import OptunaAgent
from hf_autoresearch.agents.prompts import rule_text
from hf_autoresearch.cli import main
from hf_autoresearch.ledger import Ledger
from hf_autoresearch.options import VERSION
from hf_autoresearch.recipe import load_recipe
from hf_autoresearch.tasks import UnknownTask, get_task

TOY = Path(__file__).parent / "toy"


def commit_all(repo: Path) -> None:
    git(repo, "-c", "user.name=u", "-c", "user.email=u@x", "add", "-A")
    git(repo, "-c", "user.name=u", "-c", "user.email=u@x", "commit", "-q", "-m", "recipe")


def package_state() -> str:
    return subprocess.run(
        ["git", "status", "--porcelain", "hf_autoresearch"], cwd=ROOT, capture_output=True, text=True
    ).stdout


def test_tasks_are_found_by_name_or_import_path():
    assert get_task("classification").columns == ("text", "label")
    assert get_task("query-expansion").scores_untrained is True
    with pytest.raises(UnknownTask, match="unknown task 'poetry'"):
        get_task("poetry")
    with pytest.raises(UnknownTask, match="cannot import"):
        get_task("no_such_module:Task")


def toy_recipe(data: Path, tmp_path: Path) -> Path:
    """A git project holding a recipe of the toy task, named by its import path."""
    repo = tmp_path / "project"
    recipe = repo / "recipes" / "length"
    recipe.mkdir(parents=True)
    (recipe / "train.py").write_text((TOY / "train.py").read_text())
    (recipe / "program.md").write_text("Find the threshold.\n")
    (recipe / "recipe.toml").write_text(
        'name = "length"\ntask = "toy_task:LengthTask"\n[model]\nname = "none"\n'
        f'[data]\nsource = "{data}"\n[budget]\nseconds = 30\n'
    )
    git(tmp_path, "init", "-q", "-b", "main", str(repo))
    commit_all(repo)
    return recipe


def test_a_task_the_package_does_not_ship_runs_through_the_loop(banking_subset, tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(TOY))  # the task module lives outside the package, in a user's folder
    recipe = toy_recipe(banking_subset, tmp_path)
    run = start_run(recipe, tmp_path / "runs", "toy", agent="optuna", baseline_repeats=1, confirm=False)
    run_loop(run, OptunaAgent(seed=0), max_experiments=2)
    records = Ledger(run.folder).records()
    assert [r.number for r in records] == [0, 1, 2]
    assert records[0].status == "keep" and records[0].selection is not None
    assert all(r.status in ("keep", "discard") for r in records[1:]), [r.reason for r in records]
    # the toy's metric is accuracy of long/short: a threshold of 10 calls almost everything long
    texts = [r["text"] for r in read_csv(banking_subset / "test.csv")]
    expected = sum((len(t) > 10) == (len(t) > 40) for t in texts) / len(texts)
    assert records[0].holdout == pytest.approx(expected)


@pytest.mark.slow
def test_init_writes_a_recipe_for_other_column_names_that_runs_as_it_is(banking_subset, tiny_bert, tmp_path, capsys):
    before = package_state()
    data = tmp_path / "intents"
    for split in ("train", "test"):
        rows = [{"utterance": r["text"], "intent": r["label"]} for r in read_csv(banking_subset / f"{split}.csv")]
        write_csv(rows, data / f"{split}.csv")
    repo = tmp_path / "project"
    folder = repo / "recipes" / "my-intents"
    assert (
        main(
            [
                "init",
                str(folder),
                "--task",
                "classification",
                "--data",
                str(data),
                "--model",
                str(tiny_bert),
                "--text-column",
                "utterance",
                "--label-column",
                "intent",
                "--budget",
                "10",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "train 200 rows" not in out and "5 labels: " in out and "20.0%" in out  # row counts and label set
    recipe = load_recipe(folder)
    assert (recipe.data.text_column, recipe.data.label_column) == ("utterance", "intent")
    assert main(["recipes", str(repo / "recipes")]) == 0
    git(tmp_path, "init", "-q", "-b", "main", str(repo))
    commit_all(repo)
    args = [
        "run",
        str(folder),
        "--tag",
        "mine",
        "--agent",
        "optuna",
        "--max-experiments",
        "1",
        "--grace",
        "60",
        "--baseline-repeats",
        "1",
        "--no-confirm",
        "--run-dir",
        str(tmp_path / "runs"),
    ]
    assert main(args) == 0
    records = Ledger(tmp_path / "runs" / "mine").records()
    assert [r.number for r in records] == [0, 1] and records[0].status == "keep", [r.reason for r in records]
    assert records[1].status in ("keep", "discard", "crash"), records[1].reason
    assert "LEARNING_RATE" in records[1].description or records[1].proposal
    assert package_state() == before  # no file of the package was changed


def test_init_refuses_an_existing_recipe_and_a_task_without_template(banking_subset, tmp_path, capsys):
    folder = tmp_path / "r"
    args = ["init", str(folder), "--data", str(banking_subset), "--model", "m"]
    assert main(args) == 0
    assert main(args) == 2 and "already holds a recipe" in capsys.readouterr().err
    assert main(["init", str(tmp_path / "q"), *args[2:], "--task", "query-expansion"]) == 2
    assert "has no train.py template" in capsys.readouterr().err


def test_resume_reads_a_run_json_written_before_the_options_were_one_dataclass(project, banking_subset, tmp_path):
    """run.json of version 1: agent options nested under agent_options, no task, no version."""
    from hf_autoresearch.driver.run import resume

    run = start_run(project / "recipes" / "intent-categorization", tmp_path / "runs", "old", data=str(banking_subset))
    config = json.loads((run.folder / "run.json").read_text())
    old = {
        k: v
        for k, v in config.items()
        if k
        not in (
            "task",
            "version",
            "agent_model",
            "max_agent_turns",
            "max_agent_dollars",
            "agent_prices",
            "run_dir",
            "resume",
            "max_experiments",
            "hours",
            "push_to_hub",
            "public",
            "promote",
            "dry_run",
            "tracker",
        )
    }
    old["agent_options"] = {"max_agent_turns": 7}
    (run.folder / "run.json").write_text(json.dumps(old))
    resumed = resume(tmp_path / "runs", "old", overrides={"budget": 42.0}, log=lambda *_: None)
    assert resumed.config.task == "classification" and resumed.config.max_agent_turns == 7
    assert resumed.config.version == VERSION and any("tamper" not in k for k in resumed.config.evaluation_hashes)
    assert resumed.config.budget == 42.0
    with pytest.raises(Exception, match="--model cannot change when a run is resumed"):
        resume(tmp_path / "runs", "old", overrides={"model": "other"}, log=lambda *_: None)


def test_a_run_started_before_the_package_moved_resumes(project, banking_subset, tmp_path):
    """run.json of version 2 fingerprints the flat layout (hf_autoresearch/loop.py...): a resume re-hashes, the tamper
    check passes, and what was decided stays as recorded."""
    from hf_autoresearch.driver.run import resume
    from hf_autoresearch.tamper import PACKAGE, verify

    run = start_run(project / "recipes" / "intent-categorization", tmp_path / "runs", "flat", data=str(banking_subset))
    config = json.loads((run.folder / "run.json").read_text())
    flat = {str(PACKAGE / Path(path).name): digest for path, digest in config["evaluation_hashes"].items()}
    config.update(version=2, evaluation_hashes=flat)
    (run.folder / "run.json").write_text(json.dumps(config))
    with pytest.raises(Exception, match="changed since the run started"):
        verify(flat, run.metric_dir)  # what a resume without the re-hash would say before every evaluation
    record_baseline(run, selection=0.4)
    resumed = resume(tmp_path / "runs", "flat", log=lambda *_: None)
    assert resumed.config.version == VERSION
    assert str(PACKAGE / "driver" / "loop.py") in resumed.config.evaluation_hashes
    verify(resumed.config.evaluation_hashes, resumed.metric_dir)
    assert [(r.number, r.status, r.selection) for r in resumed.ledger.records()] == [(0, "keep", 0.4)]
    assert json.loads((resumed.folder / "run.json").read_text())["version"] == VERSION


def test_a_start_cut_short_is_finished_by_resume(project, banking_subset, tmp_path):
    """run.json is written first; splits and the worktree are made by --resume when a kill stopped the start."""
    import shutil

    from hf_autoresearch.driver.run import resume

    run = start_run(project / "recipes" / "intent-categorization", tmp_path / "runs", "cut", data=str(banking_subset))
    shutil.rmtree(run.folder / "splits")
    git(project, "worktree", "remove", "--force", str(run.folder / "worktree"))
    resumed = resume(tmp_path / "runs", "cut", log=lambda *_: None)
    assert (resumed.splits / "train" / "train.jsonl").is_file() and resumed.workspace.train_py.is_file()


class RecordingAgent(Agent):
    """Raises THRESHOLD by 5 each time and keeps what the loop told it."""

    name = "recording"
    uses_preview = True

    def __init__(self):
        self.contexts = []

    def propose(self, context):
        self.contexts.append(context)
        text = context.train_py.read_text()
        value = int(text.split("THRESHOLD = ")[1].split()[0])
        context.train_py.write_text(text.replace(f"THRESHOLD = {value} ", f"THRESHOLD = {value + 5} "))
        return Proposal(f"threshold {value + 5}")


def test_the_agent_is_told_the_rule_and_shown_the_best_model_on_training_rows(banking_subset, tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(TOY))
    recipe = toy_recipe(banking_subset, tmp_path)
    run = start_run(recipe, tmp_path / "runs", "seen", baseline_repeats=2, confirm=False)
    agent = RecordingAgent()
    run_loop(run, agent, max_experiments=1)
    (context,) = agent.contexts
    assert context.rule["confirm"] is False and context.rule["direction"] == "maximize"
    # the gain the t-test needs, written as z * sigma for the prompt (docs/keep-rule.md)
    assert context.rule["threshold"] == pytest.approx(context.rule["z"] * context.rule["noise_std"])
    assert context.rule["false_keep_rate"] == 0.01 and context.rule["threshold"] > 0
    # the wording the claude agent gets, from the rule as the loop passes it (not rebuilt from the ledger)
    text = rule_text(context.rule)
    assert "one-sided t-test" in text and "false-keep rate of 0.01" in text
    assert f"{context.rule['threshold']:.4f}" in text
    train = [json.loads(line)["sentence"] for line in (run.splits / "train" / "train.jsonl").open()]
    evaluation = {
        json.loads(line)["sentence"] for s in ("selection", "holdout") for line in (run.splits / f"{s}.jsonl").open()
    }
    assert [p["input"] for p in context.preview] == train[:5]  # fixed training rows, never evaluation rows
    assert not {p["input"] for p in context.preview} & evaluation
    assert {p["prediction"] for p in context.preview} <= {"long", "short"}
