"""The optuna agent: `# search:` spaces in train.py, rewriting only those values, a resumable study, a real run."""

from __future__ import annotations

import shutil

import pytest
from conftest import RECIPE

from hf_autoresearch.agents import default_agent, make_agent
from hf_autoresearch.agents.base import ProposalContext
from hf_autoresearch.agents.optuna_agent import STUDY_FILE, OptunaAgent
from hf_autoresearch.agents.search_space import SearchSpaceError, find_spaces, rewrite
from hf_autoresearch.cli import main
from hf_autoresearch.ledger import ExperimentRecord, Ledger
from hf_autoresearch.recipe import load_recipe

SOURCE = '''"""a train.py"""
import math

# --- knobs ---
LEARNING_RATE = 5e-5  # peak rate; search: log(1e-6, 1e-2)
BATCH_SIZE = 32  # search: choice(8, 16, 32, 64) -- powers of two
WARMUP = 0.1  # search: float(0, 0.3)
LAYERS_FROZEN = 0  # search: int(0, 6)
SCHEDULER = "linear"  # search: choice("linear", "cosine")
PLAIN = 3  # no search space here
NOTE = "# search: inside a string is not a comment"


def main():
    lr = LEARNING_RATE * 2  # a comment without a space
    return lr
'''


def test_parses_every_form_with_free_text_around_it():
    spaces = {s.name: s for s in find_spaces(SOURCE)}
    assert list(spaces) == ["LEARNING_RATE", "BATCH_SIZE", "WARMUP", "LAYERS_FROZEN", "SCHEDULER"]
    assert (spaces["LEARNING_RATE"].kind, spaces["LEARNING_RATE"].args, spaces["LEARNING_RATE"].value) == (
        "log",
        (1e-6, 1e-2),
        5e-5,
    )
    assert (spaces["BATCH_SIZE"].kind, spaces["BATCH_SIZE"].args) == ("choice", (8, 16, 32, 64))
    assert (spaces["WARMUP"].kind, spaces["WARMUP"].args) == ("float", (0, 0.3))
    assert (spaces["LAYERS_FROZEN"].kind, spaces["LAYERS_FROZEN"].args) == ("int", (0, 6))
    assert spaces["SCHEDULER"].args == ("linear", "cosine") and spaces["SCHEDULER"].value == "linear"
    assert spaces["LEARNING_RATE"].line == 5


def test_the_recipe_declares_spaces_for_its_main_knobs():
    names = {s.name for s in find_spaces((RECIPE / "train.py").read_text())}
    assert {"LEARNING_RATE", "BATCH_SIZE", "WARMUP", "WEIGHT_DECAY", "EPOCHS", "MAX_LENGTH"} <= names


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("LR = 1e-3  # search: norm(0, 1)", "unknown search space 'norm'"),
        ("LR = 1e-3  # search: log(1e-4, 1e-2", "cannot read the search space"),
        ("LR = 1e-3  # search: log(0, 1e-2)", "needs low > 0"),
        ("LR = 1e-3  # search: log(1e-2, 1e-4)", "needs finite low < high"),
        ("LR = 1e-3  # search: float(0, 1, 2)", "exactly two values"),
        ("N = 2  # search: int(0.5, 4)", "needs integers"),
        ("N = 2.5  # search: int(0, 4)", "does not fit int"),
        ("N = 9  # search: int(0, 4)", "lies outside"),
        ("N = 8  # search: choice(8)", "at least two values"),
        ("N = 8  # search: choice(8, 8)", "repeats a value"),
        ("N = 5  # search: choice(8, 16)", "lies outside"),
        ("N = 8  # search: choice(8, x)", "must be literals"),
        ("N = 8  # search: choice(8, step=16)", "positional values only"),
        ("lr = 1e-3  # search: log(1e-4, 1e-2)", "not an UPPER_CASE constant"),
        ("N = 2 + 2  # search: int(0, 6)", "not a literal value"),
        ("def f():\n    N = 2  # search: int(0, 6)", "top-level constant assignment"),
        ("N = 2  # search: int(0, 6)\nN = 3  # search: int(0, 6)", "twice"),
    ],
)
def test_malformed_spaces_are_errors_naming_the_line(line, message):
    source = "import os\n\n" + line + "\n"
    with pytest.raises(SearchSpaceError, match=message) as err:
        find_spaces(source, "recipes/x/train.py")
    assert "recipes/x/train.py:3" in str(err.value) or "recipes/x/train.py:4" in str(err.value)


def test_rewrite_changes_only_the_declared_values():
    new = rewrite(
        SOURCE,
        {"LEARNING_RATE": 0.000123456, "BATCH_SIZE": 16, "WARMUP": 0.0, "LAYERS_FROZEN": 4, "SCHEDULER": "cosine"},
    )
    before, after = SOURCE.splitlines(keepends=True), new.splitlines(keepends=True)
    changed = {i for i, (a, b) in enumerate(zip(before, after, strict=True)) if a != b}
    assert changed == {4, 5, 6, 7, 8}
    assert after[4] == "LEARNING_RATE = 0.000123  # peak rate; search: log(1e-6, 1e-2)\n"
    assert after[5] == "BATCH_SIZE = 16  # search: choice(8, 16, 32, 64) -- powers of two\n"
    assert after[6] == "WARMUP = 0.0  # search: float(0, 0.3)\n"
    assert after[7] == "LAYERS_FROZEN = 4  # search: int(0, 6)\n"
    assert after[8] == 'SCHEDULER = "cosine"  # search: choice("linear", "cosine")\n'
    assert {s.name: s.value for s in find_spaces(new)}["LEARNING_RATE"] == 0.000123
    with pytest.raises(SearchSpaceError, match="PLAIN carries no"):
        rewrite(SOURCE, {"PLAIN": 4})


def _context(tmp_path, history, number):
    worktree = tmp_path / "worktree"
    if not worktree.exists():
        shutil.copytree(RECIPE, worktree / RECIPE.name, ignore=shutil.ignore_patterns("examples", "__pycache__"))
    train_py = worktree / RECIPE.name / "train.py"
    train_py.write_text((RECIPE / "train.py").read_text())  # the loop resets to the best commit before each
    best = [r for r in history if r.status == "keep"][-1]
    return ProposalContext(
        number, worktree, train_py, load_recipe(worktree / RECIPE.name), history, best, tmp_path / "run", 30.0
    )


def _record(number, status, proposal, selection=None):
    return ExperimentRecord(number=number, status=status, description="", selection=selection, proposal=proposal)


def _load(tmp_path):
    import optuna

    return optuna.load_study(study_name="hf-autoresearch", storage=f"sqlite:///{tmp_path / 'run' / STUDY_FILE}")


def test_study_tells_outcomes_and_resumes_in_a_new_process(tmp_path):
    (tmp_path / "run").mkdir()
    history = [_record(0, "keep", {"baseline": True}, 0.50)]
    agent = OptunaAgent(seed=1)
    first = agent.propose(_context(tmp_path, history, 1))
    assert first.details["trial"] == 1 and first.description.startswith("optuna trial 1: ")
    written = (tmp_path / "worktree" / RECIPE.name / "train.py").read_text()
    values = {s.name: s.value for s in find_spaces(written)}
    for name, value in first.details["params"].items():
        assert values[name] == (pytest.approx(value, rel=1e-2) if isinstance(value, float) else value)
        assert f"\n{name} = {first.details['written'][name]}  #" in written
        assert name in first.description

    history.append(_record(1, "discard", first.details, 0.42))
    second = agent.propose(_context(tmp_path, history, 2))
    history.append(_record(2, "crash", second.details))

    # a fresh agent (a resumed run) reopens the same study, tells the crash as the worst score seen, goes on
    resumed = OptunaAgent(seed=1)
    third = resumed.propose(_context(tmp_path, history, 3))
    study = _load(tmp_path)
    assert [t.state.name for t in study.trials] == ["COMPLETE", "COMPLETE", "COMPLETE", "RUNNING"]
    assert study.trials[0].params["LEARNING_RATE"] == 5e-5 and study.trials[0].value == 0.50  # baseline first
    assert [t.value for t in study.trials[1:3]] == [0.42, 0.42]  # the crash: the worst observed score
    assert [t.user_attrs["experiment"] for t in study.trials] == [0, 1, 2, 3]
    assert third.details["trial"] == 3
    assert len({str(sorted(p.details["params"].items())) for p in (first, second, third)}) == 3

    # Ctrl-C after the ask, before the ledger recorded exp-0003: --resume proposes exp-0003 again, same values
    again = OptunaAgent(seed=1).propose(_context(tmp_path, history, 3))
    assert again.details == third.details and len(_load(tmp_path).trials) == 4


def test_two_proposals_in_flight_differ_and_are_both_told(tmp_path):
    """Issue 11: exp-0002 is asked while exp-0001 trains; neither outcome is known until both records exist."""
    (tmp_path / "run").mkdir()
    history = [_record(0, "keep", {"baseline": True}, 0.50)]
    agent = OptunaAgent(seed=4, startup_trials=1)  # TPE (not random start-up draws) from the first ask
    first = agent.propose(_context(tmp_path, history, 1))
    flying = [{"experiment": "exp-0001", "description": first.description, "diff": ""}]
    context = _context(tmp_path, history, 2)
    context.in_flight = flying
    second = agent.propose(context)
    assert first.details["written"] != second.details["written"]
    study = _load(tmp_path)
    assert [t.state.name for t in study.trials] == ["COMPLETE", "RUNNING", "RUNNING"]

    # exp-0002 finishes first (out of order); exp-0001 is still training: it stays RUNNING, nothing is lost
    history.append(_record(2, "discard", second.details, 0.47))
    context = _context(tmp_path, history, 3)
    context.in_flight = flying
    third = OptunaAgent(seed=4, startup_trials=1).propose(context)  # a resumed driver, even
    study = _load(tmp_path)
    assert [t.state.name for t in study.trials] == ["COMPLETE", "RUNNING", "COMPLETE", "RUNNING"]
    assert study.trials[2].value == 0.47

    history.insert(1, _record(1, "keep", first.details, 0.61))
    history.append(_record(3, "timeout", third.details))
    OptunaAgent(seed=4, startup_trials=1).propose(_context(tmp_path, history, 4))
    study = _load(tmp_path)
    assert [t.value for t in study.trials[:4]] == [0.50, 0.61, 0.47, 0.47]
    assert [t.user_attrs["experiment"] for t in study.trials[:4]] == [0, 1, 2, 3]
    assert [t.params for t in study.trials[1:4]] == [p.details["params"] for p in (first, second, third)]


def test_every_trial_is_told_its_first_run_score():
    from hf_autoresearch.agents.optuna_agent import first_run_score

    confirmed = _record(3, "keep", {}, 0.65)
    confirmed.trials = [{"seed": 0, "selection": 0.6}, {"seed": 1003, "selection": 0.7}]
    assert first_run_score(confirmed) == 0.6
    baseline = _record(0, "keep", {"baseline": True}, 0.5)
    baseline.trials = [{"selection": 0.52}, {"selection": 0.47}, {"selection": 0.51}]
    assert first_run_score(baseline) == 0.52
    assert first_run_score(_record(1, "discard", {}, 0.4)) == 0.4  # a record without trials: its score
    assert first_run_score(_record(2, "crash", {})) is None


SMALL = """A = 1  # search: choice(1, 2)
B = "x"  # search: choice("x", "y")
"""


def test_repeated_values_are_asked_again_never_told_and_the_space_runs_out(tmp_path):
    (tmp_path / "run").mkdir()
    history = [_record(0, "keep", {"baseline": True}, 0.50)]
    agent = OptunaAgent(seed=0, startup_trials=2)
    seen = {("1", '"x"')}
    for number in (1, 2, 3):
        context = _context(tmp_path, history, number)
        context.train_py.write_text(SMALL)
        proposal = agent.propose(context)
        pair = (proposal.details["written"]["A"], proposal.details["written"]["B"])
        assert pair not in seen
        seen.add(pair)
        history.append(_record(number, "discard", proposal.details, 0.4 + number / 100))
    context = _context(tmp_path, history, 4)
    context.train_py.write_text(SMALL)
    assert agent.propose(context) is None  # all four combinations were tried
    study = _load(tmp_path)
    told = [t for t in study.trials if t.state.name == "COMPLETE"]
    repeats = [t for t in study.trials if t.state.name == "FAIL"]
    assert [t.user_attrs["experiment"] for t in told] == [0, 1, 2, 3]
    assert repeats and all(t.user_attrs == {"repeat": True} and t.value is None for t in repeats)


def test_a_lost_study_is_rebuilt_by_the_values_each_experiment_tried(tmp_path):
    (tmp_path / "run").mkdir()
    history = [_record(0, "keep", {"baseline": True}, 0.50)]
    agent = OptunaAgent(seed=2)
    for number, status, score in ((1, "discard", 0.44), (2, "invalid", None), (3, "keep", 0.58)):
        proposal = agent.propose(_context(tmp_path, history, number))
        history.append(_record(number, status, proposal.details, score))
    # trial numbers in the ledger need not match positions: pretend repeats were asked in between
    for shift, record in enumerate(history[1:], 1):
        record.proposal["trial"] += 3 * shift
    (tmp_path / "run" / STUDY_FILE).unlink()
    rebuilt = OptunaAgent(seed=2).propose(_context(tmp_path, history, 4))
    study = _load(tmp_path)
    by_experiment = {t.user_attrs["experiment"]: t for t in study.trials}
    for record in history[1:]:
        assert by_experiment[record.number].params == record.proposal["params"]
    assert [by_experiment[n].value for n in range(4)] == [0.50, 0.44, 0.44, 0.58]  # invalid: the worst score
    assert by_experiment[4].state.name == "RUNNING" and rebuilt.details["trial"] == by_experiment[4].number


def test_invalid_streak_stops_the_agent_and_a_resumed_run_gets_a_fresh_count(tmp_path):
    from hf_autoresearch.agents import AgentGaveUp
    from hf_autoresearch.errors import UserError

    (tmp_path / "run").mkdir()
    history = [_record(0, "keep", {"baseline": True}, 0.50)]
    agent = OptunaAgent(seed=0, max_invalid_streak=2)
    for number in (1, 2):
        proposal = agent.propose(_context(tmp_path, history, number))
        history.append(_record(number, "invalid", proposal.details))
        history[-1].reason = "the harness refused the edit"
    with pytest.raises(AgentGaveUp, match="exp-0001 to exp-0002.*refused the edit.*--resume"):
        agent.propose(_context(tmp_path, history, 3))
    assert issubclass(AgentGaveUp, UserError)
    assert OptunaAgent(seed=0, max_invalid_streak=2).propose(_context(tmp_path, history, 3)) is not None


def test_default_agent_and_make_agent(monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    assert default_agent() == "optuna" and default_agent("patches/") == "replay"
    monkeypatch.setenv("ANTHROPIC_API_KEY", "k")
    assert default_agent() == "claude"
    assert isinstance(make_agent("optuna", seed=3), OptunaAgent)


@pytest.mark.slow
def test_optuna_run_end_to_end_tries_different_values(project, banking_subset, tiny_bert, tmp_path, monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)  # so optuna is the default agent
    run_dir = tmp_path / "runs"
    code = main(
        [
            "run",
            str(project / "recipes" / "intent-categorization"),
            "--tag",
            "opt",
            "--budget",
            "8",
            "--grace",
            "90",
            "--max-experiments",
            "3",
            "--data",
            str(banking_subset),
            "--model",
            str(tiny_bert),
            "--run-dir",
            str(run_dir),
        ]
    )
    assert code == 0
    records = Ledger(run_dir / "opt").records()
    assert len(records) == 4 and records[0].status == "keep"
    tried = [r.proposal["written"] for r in records[1:]]
    assert all(r.proposal["agent"] == "optuna" for r in records[1:])
    assert len({str(sorted(t.items())) for t in tried}) == 3
    for record in records[1:]:
        assert record.status in ("keep", "discard", "crash", "timeout"), record.reason
        changed = [line for line in record.diff.splitlines() if line.startswith("+") and not line.startswith("+++")]
        assert changed and all("# " in line and "search:" in line for line in changed)  # only declared constants
    assert (run_dir / "opt" / STUDY_FILE).is_file()
