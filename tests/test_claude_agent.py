"""The claude agent against a real local HTTP server that answers as the Messages API (tests/fake_anthropic.py)."""

from __future__ import annotations

import json
import re
import shutil

import pytest
from conftest import RECIPE, git
from fake_anthropic import (
    API_KEY,
    USAGE,
    FakeAnthropic,
    capabilities,
    editing,
    message,
    overloaded,
    scripted,
    text,
    thinking,
    tool_use,
)

from hf_autoresearch.agents.base import AgentGaveUp, InvalidProposal, ProposalContext
from hf_autoresearch.agents.claude import AgentError, ClaudeAgent
from hf_autoresearch.agents.editor import EDITOR_TOOL
from hf_autoresearch.agents.pricing import cache_line, load_prices, price_for, request_cost, usage_summary
from hf_autoresearch.cli import main
from hf_autoresearch.errors import UserError
from hf_autoresearch.ledger import ExperimentRecord, Ledger
from hf_autoresearch.recipe import load_recipe

EDITOR = EDITOR_TOOL["name"]
# Claude Sonnet 5.5 (the default model) at its list prices, worked out by hand: $2 input, $10 output per million
# tokens, so a request of the fake server's default usage (1000 input, 100 output tokens) costs $0.003
REQUEST = 0.003


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
    baseline = ExperimentRecord(
        number=0,
        status="keep",
        description="baseline",
        selection=0.5,
        commit="abc",
        decision={"rule": "baseline", "noise": {"scores": [0.5, 0.52, 0.48], "seeds": [0, 1, 2], "std": 0.02}},
        summary={"training_seconds": 28.4, "num_steps": 35, "epochs": 0.41, "train_loss": 3.9, "peak_vram_mb": 0.0},
        peak_rss_mb=1234.0,
        scores={"selection": {"accuracy": 0.5, "macro_f1": 0.41}},
        trials=[{"selection": 0.5, "seed": 0}, {"selection": 0.52, "seed": 1}, {"selection": 0.48, "seed": 2}],
        training={  # what the helper's callback recorded and the harness measured
            "planned_steps": 300,
            "completed_steps": 35,
            "planned_epochs": 3,
            "epochs": 0.41,
            "final_loss": 2.1,
            "learning_rate": 4.2e-5,
            "samples_per_second": 41.2,
            "first_step_seconds": 6.3,
            "save_seconds": 0.8,
            "points": [{"step": 10, "loss": 3.9}, {"step": 20, "loss": 3.1}, {"step": 30, "loss": 2.1}],
        },
    )
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
    # the keep rule as the loop applies it: max(min_delta, z * sigma) with sigma from the baseline's 3 runs
    assert "max(0, 2 * 0.0200) = 0.0400" in system[0]["text"] and "trained 3 times" in system[0]["text"]
    assert "mean of both runs" in system[0]["text"]
    assert requests[0]["tools"][0] == EDITOR_TOOL
    assert [t["name"] for t in requests[0]["tools"][1:]] == [
        "finish_experiment",
        "read_experiment_log",
        "read_experiment_diff",
        "read_experiment_curve",
    ]
    prompt = requests[0]["messages"][0]["content"]
    assert "| exp-0001 | crash |" in prompt and "ValueError: x" in prompt and before in prompt
    assert "must score above 0.5400 (best + threshold 0.0400)" in prompt
    # the baseline's facts as the harness measured them: each run's score, the other metrics, steps of those
    # planned, epochs, the loss curve, the learning rate reached, samples/s, start-up and save seconds, peak memory
    row = "| exp-0000 | keep | 0.5000 (0.5000, 0.5200, 0.4800) | +0.0000 |  | macro_f1 0.4100 | 35/300 | 0.41/3 | "
    assert row + "3.9 3.1 2.1 | 4.20e-05 | 41.2 | 6 | 1 | 1234 RSS | baseline |" in prompt

    assert proposal.usage == {
        "model": "claude-sonnet-5-5",
        "input_tokens": 2900,
        "output_tokens": 290,
        "cache_read_input_tokens": 4500,
        "cache_creation_input_tokens": 2100,
        "cache_creation_1h_input_tokens": 0,
        "thinking_tokens": 0,
        "requests": 4,
    }
    # 2900 x $2 + 290 x $10 + 4500 x $0.10 (cache read) + 2100 x $2.50 (5-minute cache write), per million
    assert proposal.cost == pytest.approx(0.0144)
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
    assert err.value.usage["requests"] == 5 and err.value.cost == pytest.approx(5 * REQUEST)
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
        assert len(fake.requests) == 2  # 0.003 $ a request: the third would pass the limit
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
    assert price_for("claude-sonnet-5-5", table)["cache_write_1h"] == pytest.approx(2.4)  # 1.6x the 5-minute write
    assert price_for("claude-haiku-5-5-20261007", table) == table["claude-haiku-5-5"]  # a dated id
    for unknown in ("some-other-model", "claude-sonnet-9", "claude-opus-4-9", "claude-haiku"):  # never by family
        with pytest.raises(UserError, match="--agent-prices"):
            price_for(unknown, table)
    file.write_text(json.dumps({"m": {"input": 1}}))
    with pytest.raises(UserError, match="must give input, output, cache_read, cache_write"):
        load_prices(file)
    file.write_text(json.dumps({"m": {"input": 1, "output": 2, "cache_read": 0, "cache_write": 1, "tiers": [{}]}}))
    with pytest.raises(UserError, match="above_prompt_tokens"):
        load_prices(file)


@pytest.mark.parametrize(
    ("model", "published"),
    [  # (input, output, cache read, 5-minute write, 1-hour write) in $ per million tokens, as published
        ("claude-opus-5-5", (4, 20, 0.20, 5, 8)),
        ("claude-sonnet-5-5", (2, 10, 0.10, 2.5, 4)),
        ("claude-haiku-5-5", (0.10, 0.50, 0.01, 0.125, 0.20)),
        ("claude-sonnet-5", (2, 10, 0.20, 2.5, 4)),  # a family fallback priced it $3 / $15
        ("claude-opus-5", (5, 25, 0.50, 6.25, 10)),
        ("claude-opus-4-8", (5, 25, 0.50, 6.25, 10)),
        ("claude-opus-4-1-20250805", (15, 75, 1.50, 18.75, 30)),  # a family fallback priced it $5 / $25
        ("claude-opus-4-20250514", (15, 75, 1.50, 18.75, 30)),
        ("claude-opus-4-0", (15, 75, 1.50, 18.75, 30)),
        ("claude-sonnet-4-6", (3, 15, 0.30, 3.75, 6)),
        ("claude-haiku-4-5-20251001", (1, 5, 0.10, 1.25, 2)),
        ("claude-3-5-haiku-20241022", (0.80, 4, 0.08, 1, 1.6)),  # a family fallback priced it $1 / $5
        ("claude-3-haiku-20240307", (0.25, 1.25, 0.03, 0.30, 0.50)),
    ],
)
def test_each_model_id_has_its_published_prices_and_a_dated_source(model, published):
    prices = price_for(model, load_prices(None))
    keys = ("input", "output", "cache_read", "cache_write", "cache_write_1h")
    assert tuple(prices[k] for k in keys) == pytest.approx(published)
    assert prices["source"].startswith("https://") and re.fullmatch(r"\d{4}-\d{2}-\d{2}", prices["checked"])


LR_EDIT = {"old_str": "LEARNING_RATE = 5e-5 ", "new_str": "LEARNING_RATE = 2e-4 "}


def test_the_prompt_names_in_flight_work_the_preview_and_each_experiments_facts(context):
    discard = ExperimentRecord(
        number=2,
        status="discard",
        description="Cosine schedule",
        selection=0.49,
        diff='--- a/train.py\n+++ b/train.py\n-LR_SCHEDULER = "linear"\n+LR_SCHEDULER = "cosine"\n',
        decision={"gain": -0.01, "threshold": 0.04},
        summary={"training_seconds": 29.0, "num_steps": 36, "epochs": 0.42, "train_loss": 3.7, "peak_vram_mb": 812.0},
    )
    context.history.append(discard)
    context.number = 4
    context.rule = {"min_delta": 0.01, "z": 2.0, "noise_std": 0.03, "threshold": 0.06, "confirm": False}
    context.in_flight = [
        {"experiment": "exp-0003", "description": "Batch size 16", "diff": "-BATCH_SIZE = 32\n+BATCH_SIZE = 16"}
    ]
    context.preview = [{"input": "Where is my card?", "prediction": "card_arrival", "reference": "card_delivery"}]
    answers = [
        message(tool_use("read_experiment_diff", experiment=2)),
        message(tool_use("read_experiment_diff", experiment=3)),
        message(tool_use(EDITOR, command="str_replace", path="train.py", **LR_EDIT)),
        message(tool_use("finish_experiment", description="lr 2e-4")),
    ]
    with FakeAnthropic(scripted(*answers)) as fake:
        agent_for(fake).propose(context)
    system, prompt = fake.requests[0]["system"][0]["text"], fake.requests[0]["messages"][0]["content"]
    assert "max(0.01, 2 * 0.0300) = 0.0600" in system and "mean of both runs" not in system  # the loop's rule
    assert "must score above 0.5600" in prompt
    # no curve recorded (a train.py without the helper's callback): the summary's steps and average loss
    assert "| exp-0002 | discard | 0.4900 | -0.0100 | -0.0100 (0.0400) |  | 36 | 0.42 | avg 3.7000 |" in prompt
    assert "|  |  |  |  | 812 GPU | Cosine schedule |" in prompt
    assert '+LR_SCHEDULER = "cosine"' in prompt  # the latest diffs, inline
    flying = prompt.split("Being trained right now")[1]
    assert "do NOT propose" in flying and "exp-0003: Batch size 16" in flying and "+BATCH_SIZE = 16" in flying
    preview = prompt.split("fixed TRAINING rows")[1]
    assert "input: Where is my card?\n  prediction: card_arrival\n  reference: card_delivery" in preview
    diff = results(fake.requests[1])[0]
    assert diff["content"].startswith("exp-0002 (discard): Cosine schedule\n--- a/train.py") and not diff.get(
        "is_error"
    )
    missing = results(fake.requests[2])[0]
    assert missing["is_error"] and "exp-0003 is not in the ledger" in missing["content"]


def test_a_truncated_answer_is_never_run_and_asked_again(context):
    before = context.train_py.read_text()
    cut = {"old_str": "LEARNING_RATE = 5e-5 ", "new_str": "LEARNING_RATE = 9"}  # a str_replace cut mid-way
    answers = [
        message(tool_use(EDITOR, command="str_replace", path="train.py", **cut), stop_reason="max_tokens"),
        message(tool_use(EDITOR, command="str_replace", path="train.py", **LR_EDIT)),
        message(tool_use("finish_experiment", description="lr 2e-4")),
    ]
    with FakeAnthropic(scripted(*answers)) as fake:
        proposal = agent_for(fake).propose(context)
    assert proposal.description == "lr 2e-4" and proposal.usage["requests"] == 3
    assert context.train_py.read_text() == before.replace("LEARNING_RATE = 5e-5 ", "LEARNING_RATE = 2e-4 ")
    again = fake.requests[1]["messages"]
    assert len(again) == 1 and all(m["role"] != "assistant" for m in again)  # the cut-off answer is dropped
    assert "cut off at the output limit" in again[0]["content"][-1]["text"]

    # cut off twice in a row: the experiment is invalid, nothing was run
    context.train_py.write_text(before)
    cut_off = message(tool_use(EDITOR, command="str_replace", path="train.py", **cut), stop_reason="max_tokens")
    with FakeAnthropic(scripted(cut_off)) as fake, pytest.raises(InvalidProposal, match="2 answers in a row"):
        agent_for(fake).propose(context)
    assert context.train_py.read_text() == before and len(fake.requests) == 2


def test_a_full_context_window_makes_the_experiment_invalid(context):
    before = context.train_py.read_text()
    full = message(
        tool_use(EDITOR, command="str_replace", path="train.py", **LR_EDIT),
        stop_reason="model_context_window_exceeded",
    )
    with FakeAnthropic(scripted(full)) as fake, pytest.raises(InvalidProposal, match="context window") as err:
        agent_for(fake).propose(context)
    assert context.train_py.read_text() == before and len(fake.requests) == 1
    assert err.value.usage["requests"] == 1


def test_thinking_is_requested_sent_back_intact_counted_and_kept_in_the_notes(context):
    usage = {**USAGE, "output_tokens": 900, "output_tokens_details": {"thinking_tokens": 700}}
    answers = [
        message(
            thinking("The learning rate is far too low for 30 s."),
            tool_use(EDITOR, command="str_replace", path="train.py", **LR_EDIT),
            usage=usage,
        ),
        message(thinking("Done; finish."), tool_use("finish_experiment", description="lr 2e-4"), usage=usage),
    ]
    with FakeAnthropic(scripted(*answers)) as fake:
        proposal = agent_for(fake, effort="high").propose(context)
    first = fake.requests[0]
    assert first["thinking"] == {"type": "adaptive", "display": "summarized"}
    assert first["output_config"] == {"effort": "high"} and first["max_tokens"] == 16000
    sent_back = fake.requests[1]["messages"][1]["content"][0]
    assert sent_back == {
        "type": "thinking",
        "thinking": "The learning rate is far too low for 30 s.",
        "signature": "sig-fake",
    }
    assert "[thinking] The learning rate is far too low" in proposal.details["notes"]
    assert proposal.usage["thinking_tokens"] == 1400 and proposal.usage["output_tokens"] == 1800
    assert proposal.cost == pytest.approx(0.022)  # 2 x (1000 x $2 + 900 x $10): thinking is billed as output


def test_check_drops_the_options_a_model_does_not_take(monkeypatch):
    no_effort = capabilities(efforts=(), thinking_types=("adaptive", "disabled"))
    with FakeAnthropic(scripted(message_never_sent()), model_capabilities=no_effort) as fake:
        agent = agent_for(fake)
        agent.check()
        assert agent.request_options() == {"thinking": {"type": "adaptive", "display": "summarized"}}
    with FakeAnthropic(scripted(message_never_sent()), model_capabilities=capabilities(thinking_types=())) as fake:
        agent = agent_for(fake, effort="low")
        agent.check()
        assert agent.request_options() == {"output_config": {"effort": "low"}}
    with pytest.raises(UserError, match="unknown effort"):
        ClaudeAgent(effort="extreme")


def test_the_system_prompt_uses_the_one_hour_cache_when_experiments_are_far_apart(context):
    finish = [
        message(tool_use(EDITOR, command="str_replace", path="train.py", **LR_EDIT)),
        message(tool_use("finish_experiment", description="lr 2e-4")),
    ]
    for number, record in enumerate(context.history):
        record.finished_at = f"2026-11-29T08:{number * 10:02d}:00+00:00"
    context.history.append(ExperimentRecord(number=2, status="discard", description="x", selection=0.4))
    context.history[-1].finished_at = "2026-11-29T08:20:00+00:00"
    context.number = 3
    with FakeAnthropic(scripted(*finish)) as fake:
        proposal = agent_for(fake).propose(context)
    assert fake.requests[0]["system"][0]["cache_control"] == {"type": "ephemeral", "ttl": "1h"}
    assert fake.requests[0]["cache_control"] == {"type": "ephemeral"}  # the conversation: turns seconds apart
    assert proposal.details["cache_ttl"] == "1h"


def test_a_systematic_400_stops_the_run_after_five_invalid_proposals(context):
    bad = (400, {"type": "error", "error": {"type": "invalid_request_error", "message": "tools.0: bad schema"}})
    with FakeAnthropic(scripted(bad)) as fake:
        agent = agent_for(fake)
        for number in range(2, 7):
            context.number = number
            with pytest.raises(InvalidProposal, match="bad schema") as err:
                agent.propose(context)
            context.history.append(
                ExperimentRecord(number=number, status="invalid", description="invalid edit", reason=str(err.value))
            )
        context.number = 7
        with pytest.raises(AgentGaveUp, match=r"last 5 experiments \(exp-0002 to exp-0006\).*bad schema.*--resume"):
            agent.propose(context)
    assert len(fake.requests) == 5  # the sixth proposal cost nothing


def test_cost_of_a_known_usage_record_is_pinned():
    """One Sonnet 5.5 request, and one Haiku 5.5 request whose prompt is over 100K tokens (the higher tier)."""
    tokens = {
        "input_tokens": 1000,
        "output_tokens": 2000,
        "cache_read_input_tokens": 10_000,
        "cache_creation_input_tokens": 4000,
        "cache_creation_1h_input_tokens": 3000,
    }
    table = load_prices(None)
    # 1000 x $2 + 2000 x $10 + 10000 x $0.10 + 1000 x $2.50 (5 min) + 3000 x $4 (1 h), per million tokens
    assert request_cost(tokens, price_for("claude-sonnet-5-5", table)) == pytest.approx(0.0375)
    haiku = price_for("claude-haiku-5-5", table)
    # a 15K-token prompt: 1000 x $0.10 + 2000 x $0.50 + 10000 x $0.01 + 1000 x $0.125 + 3000 x $0.20
    assert request_cost(tokens, haiku) == pytest.approx(0.001925)
    long = {**tokens, "cache_read_input_tokens": 100_000}  # 105K prompt tokens: the higher tier on every token
    # 1000 x $0.50 + 2000 x $2.50 + 100000 x $0.05 + 1000 x $0.625 + 3000 x $1
    assert request_cost(long, haiku) == pytest.approx(0.014125)
    # Opus 4.1: 1000 x $15 + 2000 x $75 + 10000 x $1.50 + 1000 x $18.75 + 3000 x $30
    assert request_cost(tokens, price_for("claude-opus-4-1", table)) == pytest.approx(0.28875)
    # Haiku 3: 1000 x $0.25 + 2000 x $1.25 + 10000 x $0.03 + 1000 x $0.30 + 3000 x $0.50
    assert request_cost(tokens, price_for("claude-3-haiku-20240307", table)) == pytest.approx(0.00485)


def test_usage_summary_gives_cache_hit_rate_and_dollars_per_experiment():
    usage = {"requests": 3, "input_tokens": 1000, "output_tokens": 500, "cache_read_input_tokens": 8000}
    records = [
        ExperimentRecord(number=0, status="keep", description="baseline"),
        ExperimentRecord(number=1, status="discard", description="a", agent_usage=usage, agent_cost=0.03),
        ExperimentRecord(
            number=2,
            status="invalid",
            description="b",
            agent_usage={**usage, "cache_creation_input_tokens": 1000},
            agent_cost=0.05,
        ),
    ]
    summary = usage_summary(records)
    assert summary["experiments"] == 2 and summary["dollars"] == pytest.approx(0.08)
    assert summary["dollars_per_experiment"] == pytest.approx(0.04)
    assert summary["cache_hit_rate"] == pytest.approx(16000 / 19000)
    assert summary["requests"] == 6 and summary["output_tokens"] == 1000


@pytest.mark.parametrize(
    ("key", "model", "message"),
    [
        ("wrong-key", "claude-sonnet-5-5", "rejected the credentials"),
        (API_KEY, "claude-nonexistent-1-opus", "knows no model"),
        (None, "claude-sonnet-5-5", "needs an Anthropic API key"),
        (API_KEY, "claude-sonnet-9", "no price known for model 'claude-sonnet-9'.*--agent-prices"),
    ],
)
def test_bad_credentials_or_model_stop_the_run_before_training(tmp_path, monkeypatch, capsys, key, model, message):
    if key is None:
        monkeypatch.delenv("ANTHROPIC_API_KEY")
    else:
        monkeypatch.setenv("ANTHROPIC_API_KEY", key)
    with FakeAnthropic(scripted(message_never_sent()), models=("claude-sonnet-5-5", "claude-sonnet-9")) as fake:
        monkeypatch.setenv("ANTHROPIC_BASE_URL", fake.url)
        args = ["run", str(RECIPE), "--agent", "claude", "--agent-model", model, "--run-dir", str(tmp_path / "runs")]
        assert main([*args, "--tag", "t", "--data", str(tmp_path / "no-data"), "--model", "m"]) == 2
    assert re.search(message, capsys.readouterr().err)
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
            "cache_creation_1h_input_tokens": 0,
            "thinking_tokens": 0,
            "model": "claude-sonnet-5-5",
            "requests": 3,
        }
        assert edited.agent_cost == pytest.approx(3 * REQUEST)
        assert invalid.status == "invalid" and "--max-agent-turns 3" in invalid.reason and invalid.commit == ""
        assert invalid.agent_usage["requests"] == 3 and invalid.agent_cost == pytest.approx(3 * REQUEST)
        assert git(project, "status", "--porcelain") == ""
        # what exp-0002 was told, through the real loop: the machine, and exp-0001's curve as the harness measured it
        second = [r for r in fake.requests if len(r["messages"]) == 1][1]
        assert "- accelerator: " in second["system"][0]["text"] and "CPU cores" in second["system"][0]["text"]
        curve = edited.training
        assert curve["planned_steps"] >= curve["completed_steps"] >= 1
        assert len(curve["points"]) == curve["completed_steps"] // 10  # the recipe logs every 10 steps
        assert curve["first_step_seconds"] > 0 and curve["save_seconds"] >= 0
        assert curve["samples_per_second"] > 0 if curve["completed_steps"] > 1 else curve["samples_per_second"] is None
        row = next(line for line in second["messages"][0]["content"].splitlines() if line.startswith("| exp-0001 "))
        assert f"| {curve['completed_steps']}/{curve['planned_steps']} |" in row
        out = capsys.readouterr().out
        assert "agent cost $0.0180 over 2 proposals ($0.0090 an experiment): 6 requests" in out
        assert "cache hit rate 0%; 6000 input, 600 output" in out

        # resumed with a dollar limit already spent: the run stops cleanly without a new experiment
        sent = len(fake.requests)
        assert main(["run", "--resume", "--max-agent-dollars", "0.015", "--max-experiments", "5", *common]) == 0
        assert len(Ledger(run_dir / "c1").records()) == 3 and len(fake.requests) == sent
        assert "--max-agent-dollars 0.015" in capsys.readouterr().out


def test_finish_is_refused_while_an_earlier_call_of_the_same_answer_failed(context):
    """[good edit, failing edit, finish] in one answer: the finish is refused and the model sees both results."""
    before = context.train_py.read_text()
    bad = {"old_str": "NO SUCH LINE", "new_str": "WARMUP = 0.0 "}
    warmup = {"old_str": "WARMUP = 0.1 ", "new_str": "WARMUP = 0.0 "}
    answers = [
        message(
            tool_use(EDITOR, command="str_replace", path="train.py", **LR_EDIT),
            tool_use(EDITOR, command="str_replace", path="train.py", **bad),
            tool_use("finish_experiment", description="lr 2e-4 and no warmup"),
        ),
        message(
            tool_use(EDITOR, command="str_replace", path="train.py", **warmup),
            tool_use("finish_experiment", description="lr 2e-4 and no warmup"),
        ),
    ]
    with FakeAnthropic(scripted(*answers)) as fake:
        proposal = agent_for(fake).propose(context)
    assert len(fake.requests) == 2  # the first finish did not end the proposal
    first = results(fake.requests[1])
    assert [r.get("is_error", False) for r in first] == [False, True, True]
    assert "old_str was not found" in first[1]["content"]
    assert "finish_experiment refused" in first[2]["content"] and "str_replace" in first[2]["content"]
    after = before.replace("LEARNING_RATE = 5e-5 ", "LEARNING_RATE = 2e-4 ").replace("WARMUP = 0.1 ", "WARMUP = 0.0 ")
    assert proposal.description == "lr 2e-4 and no warmup" and context.train_py.read_text() == after


def test_a_refusal_never_runs_a_tool(context):
    """stop_reason refusal with an edit and a finish: nothing is edited, the experiment is invalid."""
    before = context.train_py.read_text()
    refused = message(
        tool_use(EDITOR, command="str_replace", path="train.py", **LR_EDIT),
        tool_use("finish_experiment", description="lr 2e-4"),
        stop_reason="refusal",
    )
    with FakeAnthropic(scripted(refused)) as fake, pytest.raises(InvalidProposal, match="refusal") as err:
        agent_for(fake).propose(context)
    assert context.train_py.read_text() == before and len(fake.requests) == 1
    assert err.value.usage["requests"] == 1


def test_the_dollar_cap_counts_the_proposals_other_workers_are_training(context):
    """Two workers: the proposal in flight is not in the ledger yet, but its dollars are spent."""
    context.in_flight = [{"experiment": "exp-0002", "description": "x", "diff": "", "agent_cost": 0.006}]
    context.number = 3
    with FakeAnthropic(scripted(message_never_sent())) as fake:
        assert agent_for(fake, max_dollars=0.006).propose(context) is None
        assert fake.requests == []


def test_prompt_caching_that_cannot_work_is_said_once(context):
    finish = [
        message(tool_use(EDITOR, command="str_replace", path="train.py", **LR_EDIT)),
        message(tool_use("finish_experiment", description="lr 2e-4")),
    ]
    original = context.train_py.read_text()
    lines: list[str] = []
    # Haiku 4.5 caches nothing shorter than 4096 tokens; the tools and system prompt are about half of that
    with FakeAnthropic(scripted(*finish)) as fake:
        agent = ClaudeAgent(base_url=fake.url, log=lines.append, model="claude-haiku-4-5")
        proposal = agent.propose(context)
    note = proposal.details["cache_note"]
    assert note.startswith("off: the cached prefix") and "minimum cacheable length (4096 tokens)" in note
    assert 1000 < proposal.details["prefix_tokens"] < 4096
    # a model whose minimum is not known: the second proposal should read the prefix from the cache, and did not
    lines.clear()
    with FakeAnthropic(editing([("LEARNING_RATE = 5e-5 ", "LEARNING_RATE = 2e-4 ")])) as fake:
        agent = ClaudeAgent(base_url=fake.url, log=lines.append)
        records = []
        for number in (2, 3, 4):
            context.train_py.write_text(original)
            context.number = number
            proposal = agent.propose(context)
            records.append(
                ExperimentRecord(number, "discard", "x", proposal=proposal.details, agent_usage=proposal.usage)
            )
    assert "cache_note" not in records[0].proposal and records[1].proposal["cache_note"].startswith("missed")
    assert sum("prompt caching missed" in line for line in lines) == 1  # said once in the log
    assert cache_line(records) == f"prompt caching {records[2].proposal['cache_note']} (2 of 3 proposals)"
    assert cache_line(records[:1]) is None
