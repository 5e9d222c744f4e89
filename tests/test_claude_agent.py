"""The claude agent against a real local HTTP server that answers as the Messages API (tests/fake_anthropic.py)."""

from __future__ import annotations

import json
import shutil

import pytest
from conftest import RECIPE, git
from fake_anthropic import API_KEY, USAGE, FakeAnthropic, editing, message, overloaded, scripted, text, tool_use

from hf_autoresearch.agents.base import InvalidProposal, ProposalContext
from hf_autoresearch.agents.claude import AgentError, ClaudeAgent
from hf_autoresearch.agents.editor import EDITOR_TOOL
from hf_autoresearch.agents.pricing import DEFAULT_PRICES, load_prices, price_for
from hf_autoresearch.cli import main
from hf_autoresearch.errors import UserError
from hf_autoresearch.ledger import ExperimentRecord, Ledger
from hf_autoresearch.recipe import load_recipe

SONNET = DEFAULT_PRICES["sonnet"]
EDITOR = EDITOR_TOOL["name"]


def dollars(input_tokens=0, output_tokens=0, cache_read=0, cache_write=0, prices=SONNET) -> float:
    return (
        input_tokens * prices["input"]
        + output_tokens * prices["output"]
        + cache_read * prices["cache_read"]
        + cache_write * prices["cache_write"]
    ) / 1e6


@pytest.fixture(autouse=True)
def api_key(monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", API_KEY)
    monkeypatch.delenv("ANTHROPIC_BASE_URL", raising=False)


@pytest.fixture
def context(tmp_path) -> ProposalContext:
    """A worktree holding the recipe, a baseline in the history and its log in the run folder."""
    worktree = tmp_path / "worktree"
    shutil.copytree(RECIPE, worktree / RECIPE.name, ignore=shutil.ignore_patterns("examples", "__pycache__"))
    run = tmp_path / "run"
    (run / "logs").mkdir(parents=True)
    (run / "logs" / "exp-0000.log").write_text("".join(f"step {i} loss {3 - i / 10:.1f}\n" for i in range(20)))
    baseline = ExperimentRecord(number=0, status="keep", description="baseline", selection=0.5, commit="abc")
    crash = ExperimentRecord(
        number=1, status="crash", description="Bigger head", reason="exited 1", log_tail="Traceback\nValueError: x"
    )
    recipe = load_recipe(worktree / RECIPE.name)
    return ProposalContext(
        2, worktree, worktree / RECIPE.name / "train.py", recipe, [baseline, crash], baseline, run, 30
    )


def agent_for(fake: FakeAnthropic, **kwargs) -> ClaudeAgent:
    return ClaudeAgent(base_url=fake.url, log=lambda line: None, **kwargs)


def results(request: dict) -> list[dict]:
    """The tool_result blocks a request carries back to the model."""
    content = request["messages"][-1]["content"]
    return [block for block in content if isinstance(block, dict) and block.get("type") == "tool_result"]


def test_views_edits_reads_a_log_and_finishes(context):
    first = {
        "input_tokens": 2000,
        "output_tokens": 50,
        "cache_creation_input_tokens": 1500,
        "cache_read_input_tokens": 0,
    }
    later = {
        "input_tokens": 300,
        "output_tokens": 80,
        "cache_creation_input_tokens": 200,
        "cache_read_input_tokens": 1500,
    }
    answers = [
        message(
            text("Let me look."), tool_use(EDITOR, command="view", path="train.py", view_range=[1, 3]), usage=first
        ),
        message(
            tool_use(
                EDITOR,
                command="str_replace",
                path="train.py",
                old_str="LEARNING_RATE = 5e-5 ",
                new_str="LEARNING_RATE = 2e-4 ",
            ),
            usage=later,
        ),
        message(tool_use("read_experiment_log", experiment=0, tail_lines=2), usage=later),
        message(
            tool_use("finish_experiment", description="Raise the learning rate to 2e-4\nsecond line"), usage=later
        ),
    ]
    before = context.train_py.read_text()
    with FakeAnthropic(scripted(*answers)) as fake:
        proposal = agent_for(fake).propose(context)
    assert proposal.description == "Raise the learning rate to 2e-4"
    after = context.train_py.read_text()
    assert after == before.replace("LEARNING_RATE = 5e-5 ", "LEARNING_RATE = 2e-4 ")

    requests = fake.requests
    assert len(requests) == 4
    # every tool call is answered with a tool_result carrying its id
    assert results(requests[1]) == [
        {
            "type": "tool_result",
            "tool_use_id": "toolu_1_1",
            "content": "\n".join(f"{n:6}\t{line}" for n, line in enumerate(before.splitlines()[:3], 1)),
        }
    ]
    assert "LEARNING_RATE = 2e-4" in results(requests[2])[0]["content"]
    assert results(requests[3])[0]["content"] == "exp-0000.log: last 2 of 20 lines\nstep 18 loss 1.2\nstep 19 loss 1.1"
    assert not any(r.get("is_error") for request in requests for r in results(request))
    # the stable part is cached; the prompt holds the recipe, the history with the crash's log, the best train.py
    system = requests[0]["system"]
    assert system[-1]["cache_control"] == {"type": "ephemeral"} and "program.md" in system[0]["text"]
    assert "BANKING77" in system[0]["text"] and "30 s" in system[0]["text"]
    assert requests[0]["tools"][0] == EDITOR_TOOL
    prompt = requests[0]["messages"][0]["content"]
    assert "| exp-0001 | crash |" in prompt and "ValueError: x" in prompt and before in prompt

    assert proposal.usage == {
        "model": "claude-sonnet-5-5",
        "input_tokens": 2900,
        "output_tokens": 290,
        "cache_read_input_tokens": 4500,
        "cache_creation_input_tokens": 2100,
        "requests": 4,
    }
    assert proposal.cost == pytest.approx(dollars(2900, 290, 4500, 2100))
    assert proposal.details["turns"] == 4 and "Let me look." in proposal.details["notes"]


def test_other_paths_and_create_are_refused_and_nothing_changes(context):
    program = (context.train_py.parent / "program.md").read_text()
    before = context.train_py.read_text()
    answers = [
        message(tool_use(EDITOR, command="str_replace", path="program.md", old_str="#", new_str="!")),
        message(tool_use(EDITOR, command="create", path="train.py", file_text="print('hi')\n")),
        message(tool_use(EDITOR, command="view", path="/etc/passwd")),
        message(tool_use("finish_experiment", description="nothing")),
        message(tool_use("read_experiment_log", experiment=1)),
    ]
    with FakeAnthropic(scripted(*answers)) as fake, pytest.raises(InvalidProposal) as err:
        agent_for(fake, max_turns=5).propose(context)
    errors = [results(request)[0] for request in fake.requests[1:]]
    assert all(e["is_error"] for e in errors)
    assert "only train.py" in errors[0]["content"] and "'program.md' is refused" in errors[0]["content"]
    assert "`create` is not allowed" in errors[1]["content"]
    assert "'/etc/passwd' is refused" in errors[2]["content"]
    assert "train.py is unchanged" in errors[3]["content"]
    # the model never finished: the turn limit makes the experiment invalid, with what it cost
    assert "--max-agent-turns 5" in str(err.value)
    assert err.value.usage["requests"] == 5 and err.value.cost == pytest.approx(5 * dollars(1000, 100))
    assert (context.train_py.parent / "program.md").read_text() == program
    assert context.train_py.read_text() == before


def test_a_finish_with_broken_code_is_sent_back_to_fix(context):
    answers = [
        message(tool_use(EDITOR, command="insert", path="train.py", insert_line=0, insert_text="def broken(:\n")),
        message(tool_use("finish_experiment", description="x")),
        message(tool_use(EDITOR, command="str_replace", path="train.py", old_str="def broken(:\n", new_str="X = 1\n")),
        message(tool_use("finish_experiment", description="Add X")),
    ]
    with FakeAnthropic(scripted(*answers)) as fake:
        proposal = agent_for(fake).propose(context)
    assert "does not compile" in results(fake.requests[2])[0]["content"]
    assert proposal.description == "Add X" and context.train_py.read_text().startswith("X = 1\n")


def test_overloaded_answer_is_retried_then_succeeds(context):
    answers = [
        overloaded(retry_after_ms=10),
        message(
            tool_use(EDITOR, command="str_replace", path="train.py", old_str="EPOCHS = 3 ", new_str="EPOCHS = 5 ")
        ),
        message(tool_use("finish_experiment", description="More epochs")),
    ]
    with FakeAnthropic(scripted(*answers)) as fake:
        proposal = agent_for(fake).propose(context)
    assert len(fake.requests) == 3 and fake.requests[0] == fake.requests[1]  # the same request, sent again
    assert proposal.description == "More epochs" and proposal.usage["requests"] == 2


def test_an_api_that_keeps_failing_stops_the_run(context):
    with FakeAnthropic(scripted(overloaded(retry_after_ms=5))) as fake, pytest.raises(AgentError, match="--resume"):
        agent_for(fake, max_retries=2).propose(context)
    assert len(fake.requests) == 3
    assert isinstance(AgentError("x"), UserError)


def test_dollar_limit_stops_proposing(context):
    with FakeAnthropic(scripted(message(tool_use(EDITOR, command="view", path="train.py")))) as fake:
        # reached during a proposal: that experiment is invalid, with its cost
        with pytest.raises(InvalidProposal, match="--max-agent-dollars 0.006 reached"):
            agent_for(fake, max_dollars=0.006).propose(context)
        assert len(fake.requests) == 2  # 0.0045 $ a request: the third would pass the limit
        # reached before: nothing more is proposed, no request is made
        context.history[1].agent_cost = 0.006
        assert agent_for(fake, max_dollars=0.006).propose(context) is None
        assert len(fake.requests) == 2


def test_prices_can_be_overridden_and_unknown_models_need_one(tmp_path):
    file = tmp_path / "prices.json"
    file.write_text(
        json.dumps({"claude-sonnet-5-5": {"input": 1, "output": 2, "cache_read": 0.1, "cache_write": 1.5}})
    )
    table = load_prices(file)
    assert price_for("claude-sonnet-5-5", table)["output"] == 2.0
    assert price_for("claude-sonnet-4-6", table) == SONNET and price_for("claude-opus-5-5", table)["input"] == 5.0
    with pytest.raises(UserError, match="--agent-prices"):
        price_for("some-other-model", table)
    file.write_text(json.dumps({"m": {"input": 1}}))
    with pytest.raises(UserError, match="exactly input, output, cache_read, cache_write"):
        load_prices(file)


@pytest.mark.parametrize(
    ("key", "model", "message"),
    [
        ("wrong-key", "claude-sonnet-5-5", "rejected the credentials"),
        (API_KEY, "claude-nonexistent-1-opus", "knows no model"),
        (None, "claude-sonnet-5-5", "needs an Anthropic API key"),
    ],
)
def test_bad_credentials_or_model_stop_the_run_before_training(tmp_path, monkeypatch, capsys, key, model, message):
    if key is None:
        monkeypatch.delenv("ANTHROPIC_API_KEY")
    else:
        monkeypatch.setenv("ANTHROPIC_API_KEY", key)
    with FakeAnthropic(scripted(message_never_sent())) as fake:
        monkeypatch.setenv("ANTHROPIC_BASE_URL", fake.url)
        args = ["run", str(RECIPE), "--agent", "claude", "--agent-model", model, "--run-dir", str(tmp_path / "runs")]
        assert main([*args, "--tag", "t", "--data", str(tmp_path / "no-data"), "--model", "m"]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "runs" / "t").exists() and fake.requests == []


def message_never_sent():
    return message(text("unused"))


@pytest.mark.slow
def test_claude_run_end_to_end_records_edits_and_costs(
    project, banking_subset, tiny_bert, tmp_path, monkeypatch, capsys
):
    """Experiment 1 is a real edit (trained, scored); experiment 2 never finishes (invalid, not trained)."""
    recipe = project / "recipes" / "intent-categorization"
    run_dir = tmp_path / "runs"
    edits = [("LEARNING_RATE = 5e-5 ", "LEARNING_RATE = 3e-3 ")]
    common = ["--run-dir", str(run_dir), "--tag", "c1"]
    with FakeAnthropic(editing(edits, finish_after=1)) as fake:
        monkeypatch.setenv("ANTHROPIC_BASE_URL", fake.url)
        args = [str(recipe), "--budget", "8", "--grace", "90", "--max-experiments", "2", "--max-agent-turns", "3"]
        data = ["--data", str(banking_subset), "--model", str(tiny_bert)]
        assert main(["run", *args, *data, *common]) == 0  # ANTHROPIC_API_KEY set: claude is the default
        records = Ledger(run_dir / "c1").records()
        assert [r.status for r in records][0] == "keep" and len(records) == 3
        edited, invalid = records[1], records[2]
        assert edited.status in ("keep", "discard"), edited.reason
        assert "+LEARNING_RATE = 3e-3 " in edited.diff and edited.description == "Set LEARNING_RATE = 3e-3"
        assert edited.selection is not None and edited.train_seconds > 0
        assert edited.agent_usage == {
            **{k: 3 * v for k, v in USAGE.items()},
            "model": "claude-sonnet-5-5",
            "requests": 3,
        }
        assert edited.agent_cost == pytest.approx(3 * dollars(1000, 100))
        assert invalid.status == "invalid" and "--max-agent-turns 3" in invalid.reason and invalid.commit == ""
        assert invalid.agent_usage["requests"] == 3 and invalid.agent_cost == pytest.approx(3 * dollars(1000, 100))
        assert git(project, "status", "--porcelain") == ""
        out = capsys.readouterr().out
        assert f"agent cost ${6 * dollars(1000, 100):.4f}: 6 requests, 6000 input, 600 output" in out

        # resumed with a dollar limit already spent: the run stops cleanly without a new experiment
        sent = len(fake.requests)
        assert main(["run", "--resume", "--max-agent-dollars", "0.02", "--max-experiments", "5", *common]) == 0
        assert len(Ledger(run_dir / "c1").records()) == 3 and len(fake.requests) == sent
        assert "--max-agent-dollars 0.02" in capsys.readouterr().out
