"""The contract every agent shares (agents/base.py): the invalid-streak stop; proposals asked while others train."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from conftest import RECIPE, make_patch
from fake_anthropic import API_KEY, FakeAnthropic, message, scripted, tool_use

from hf_autoresearch.agents import AgentGaveUp, check_invalid_streak, make_agent
from hf_autoresearch.agents.base import ProposalContext
from hf_autoresearch.errors import UserError
from hf_autoresearch.ledger import ExperimentRecord
from hf_autoresearch.recipe import load_recipe


@pytest.fixture
def context(tmp_path) -> ProposalContext:
    worktree = tmp_path / "worktree"
    shutil.copytree(RECIPE, worktree / RECIPE.name, ignore=shutil.ignore_patterns("examples", "__pycache__"))
    subprocess.run(["git", "init", "-q", str(worktree)], check=True)
    (tmp_path / "run").mkdir()
    baseline = ExperimentRecord(number=0, status="keep", description="baseline", selection=0.5, proposal={})
    baseline.proposal = {"baseline": True}
    train_py = worktree / RECIPE.name / "train.py"
    recipe = load_recipe(worktree / RECIPE.name)
    return ProposalContext(1, worktree, train_py, recipe, [baseline], baseline, tmp_path / "run", 30)


def _invalid(number: int) -> ExperimentRecord:
    return ExperimentRecord(number=number, status="invalid", description="x", reason=f"reason {number}")


def test_the_streak_counts_only_trailing_invalid_experiments():
    keep = ExperimentRecord(number=0, status="keep", description="baseline", selection=0.5)
    history = [keep, _invalid(1), ExperimentRecord(number=2, status="crash", description="c"), _invalid(3)]
    check_invalid_streak(history, 2)  # one invalid at the end: goes on
    history.append(_invalid(4))
    with pytest.raises(AgentGaveUp, match="exp-0003 to exp-0004.*reason 4"):
        check_invalid_streak(history, 2)
    check_invalid_streak(history, 2, since=4)  # a resumed run counts from its own first experiment
    check_invalid_streak(history, 0)  # 0 never stops
    assert issubclass(AgentGaveUp, UserError)  # the loop stops cleanly; --resume continues


def _agent(name: str, tmp_path, url: str | None = None):
    if name == "replay":
        patches = tmp_path / "patches"
        make_patch(RECIPE, "lr", [("LEARNING_RATE = 5e-5 ", "LEARNING_RATE = 1e-4 ")], patches / "0001-lr.patch")
        make_patch(RECIPE, "warmup", [("WARMUP = 0.1 ", "WARMUP = 0.0 ")], patches / "0002-warmup.patch")
        make_patch(RECIPE, "epochs", [("EPOCHS = 3 ", "EPOCHS = 5 ")], patches / "0003-epochs.patch")
        return make_agent("replay", patches=str(patches), max_invalid_streak=2)
    if name == "claude":
        from hf_autoresearch.agents.claude import ClaudeAgent

        return ClaudeAgent(base_url=url, log=lambda line: None, max_invalid_streak=2)
    return make_agent("optuna", seed=1, max_invalid_streak=2)


def _spent(name: str, agent, context, fake) -> int:
    """What proposing has used up so far, per agent: API requests, patches handed out, optuna trials asked."""
    if name == "claude":
        return len(fake.requests)
    if name == "replay":
        return len(agent._proposed)
    return len(agent.study(context).trials)


@pytest.mark.parametrize("name", ["replay", "optuna", "claude"])
def test_every_agent_gives_up_after_its_invalid_streak(name, context, tmp_path, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", API_KEY)
    edit = tool_use(
        "str_replace_based_edit_tool",
        command="str_replace",
        path="train.py",
        old_str="EPOCHS = 3 ",
        new_str="EPOCHS = 4 ",
    )
    answers = scripted(message(edit), message(tool_use("finish_experiment", description="epochs 4")))
    original = context.train_py.read_text()
    with FakeAnthropic(answers) as fake:
        agent = _agent(name, tmp_path, fake.url)
        context.history += [_invalid(1), _invalid(2)]  # from an earlier session: a resumed run starts afresh
        context.number = 3
        assert agent.propose(context) is not None
        assert context.train_py.read_text() != original  # the proposal edited train.py ...
        sent = _spent(name, agent, context, fake)
        assert sent > 0  # ... and used something up, so the check below can fail
        context.train_py.write_text(original)  # the loop resets the worktree to the best
        context.history += [_invalid(3), _invalid(4)]
        context.number = 5
        with pytest.raises(AgentGaveUp, match="exp-0003 to exp-0004"):
            agent.propose(context)
        assert _spent(name, agent, context, fake) == sent  # giving up costs nothing
        assert context.train_py.read_text() == original  # and edits nothing


def test_replay_hands_each_patch_out_once_while_others_train(context, tmp_path):
    agent = _agent("replay", tmp_path)
    original = context.train_py.read_text()
    first = agent.propose(context)
    context.train_py.write_text(original)  # the next worker starts from the best commit
    context.number = 2
    context.in_flight = [{"experiment": "exp-0001", "description": first.description, "diff": ""}]
    second = agent.propose(context)
    assert (first.details["patch"], second.details["patch"]) == ("0001-lr.patch", "0002-warmup.patch")
    # exp-0001 was interrupted before it was recorded and is proposed again: the same patch
    context.train_py.write_text(original)
    context.number = 1
    context.in_flight = []
    assert agent.propose(context).details["patch"] == "0001-lr.patch"


def test_make_agent_passes_the_options_on(monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", API_KEY)
    # the CLI leaves unset options out: the documented defaults (medium effort, adaptive thinking) must still apply
    assert make_agent("claude").request_options() == {
        "thinking": {"type": "adaptive", "display": "summarized"},
        "output_config": {"effort": "medium"},
    }
    assert make_agent("claude", effort="high", thinking=2048).request_options()["output_config"] == {"effort": "high"}
    optuna = make_agent("optuna", seed=2, sampler="random", startup_trials=4, max_invalid_streak=0)
    assert (optuna.sampler_name, optuna.startup_trials, optuna.max_invalid_streak) == ("random", 4, 0)
    assert make_agent("optuna").max_invalid_streak == 5
    with pytest.raises(UserError, match="--max-invalid-streak"):
        make_agent("optuna", max_invalid_streak=-1)
    with pytest.raises(UserError, match="unknown effort"):  # checked when built, before any training
        make_agent("claude", effort="extreme")
