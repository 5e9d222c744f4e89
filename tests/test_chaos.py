"""Fault injection (scripts/chaos.py): the harness SIGKILLed at every phase loses nothing, counts nothing twice and
leaves no process behind. The slow test runs the script's ten-kill schedule; the fast ones check the checker (so the
slow test can fail) and the start that a kill cut between its worktree and its branch."""

from __future__ import annotations

import importlib.util
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT, git
from runs import start_run

from hf_autoresearch.driver.run import resume
from hf_autoresearch.ledger import ExperimentRecord, Ledger


def load_chaos():
    sys.path.insert(0, str(ROOT / "scripts"))  # as when it runs as a script: its helper modules sit beside it
    spec = importlib.util.spec_from_file_location("chaos", ROOT / "scripts" / "chaos.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["chaos"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


chaos = load_chaos()


def commit(repo: Path, message: str) -> str:
    (repo / "train.py").write_text(message)
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=u", "-c", "user.email=u@x", "commit", "-qm", message)
    return git(repo, "rev-parse", "HEAD")


@pytest.fixture
def finished_run(tmp_path):
    """A run as the harness leaves it: exp-0000 and exp-0002 kept (on the branch, with models), exp-0001 discarded."""
    repo = tmp_path / "repo"
    git(tmp_path, "init", "-q", "-b", "main", str(repo))
    first = commit(repo, "baseline")
    git(repo, "checkout", "-q", "-b", "autoresearch/chaos")
    second = commit(repo, "exp-0002")
    folder = tmp_path / "runs" / "chaos"
    ledger = Ledger(folder)
    for number, status, sha in ((0, "keep", first), (1, "discard", second), (2, "keep", second)):
        ledger.append(ExperimentRecord(number, status, f"e{number}", commit=sha))
        if status == "keep":
            (folder / "models" / f"exp-{number:04d}").mkdir(parents=True)
            (folder / "models" / f"exp-{number:04d}" / "config.json").write_text("{}")
    return folder, repo, first


def test_the_checker_passes_a_finished_run(finished_run):
    folder, repo, _ = finished_run
    checker = chaos.Checker(folder, repo)
    checker.check("end", strict=True, tsv_may_lag=False)
    assert (checker.lost, checker.duplicated, checker.problems) == (set(), set(), [])


def test_the_checker_finds_lost_duplicated_and_half_done_states(finished_run):
    folder, repo, first = finished_run
    checker = chaos.Checker(folder, repo)
    checker.check("before")
    lines = (folder / "ledger.jsonl").read_text().splitlines(keepends=True)

    (folder / "ledger.jsonl").write_text("".join(lines[:2]))  # exp-0002 vanished
    checker.check("one line lost")
    assert any("exp-0002 left the ledger" in lost for lost in checker.lost)

    (folder / "ledger.jsonl").write_text("".join(lines + lines[1:2]))  # exp-0001 twice
    checker.check("a line twice")
    assert any("exp-0001 is 2 times" in d for d in checker.duplicated)

    (folder / "ledger.jsonl").write_text("".join([lines[0], lines[2]]))  # 0 and 2: a gap
    checker.check("a gap")
    assert any("not contiguous" in p for p in checker.problems)

    (folder / "ledger.jsonl").write_text("".join(lines))
    shutil.rmtree(folder / "models" / "exp-0002")
    (folder / "models" / "exp-0000" / "output").mkdir()  # a stale folder's model nested inside it
    git(repo, "reset", "-q", "--hard", first)  # the branch lost the keep exp-0002
    (folder / "results.tsv").write_text("experiment\tcommit\tstatus\n")
    checker.check("end", strict=True, tsv_may_lag=False)
    assert any("exp-0002 has no model folder" in lost for lost in checker.lost)
    assert any("is not on autoresearch/chaos" in lost for lost in checker.lost)
    assert any("nested inside exp-0000" in p for p in checker.problems)
    assert any("branch head" in p for p in checker.problems)
    assert any("results.tsv disagrees" in p for p in checker.problems)


def test_the_checker_finds_a_torn_line_left_at_the_end_and_a_staged_model(finished_run):
    folder, repo, _ = finished_run
    with (folder / "ledger.jsonl").open("a") as f:
        f.write('{"number": 3, "sta')
    (folder / "models" / "exp-0002").rename(folder / "models" / ".exp-0002.staged")
    checker = chaos.Checker(folder, repo)
    checker.check("after a kill")  # both are what a kill may leave: the next session repairs them
    assert (checker.lost, checker.problems) == (set(), [])
    checker.check("end", strict=True, tsv_may_lag=False)
    assert any("torn line" in p for p in checker.problems)
    assert any("staged model folder" in p for p in checker.problems)


def test_the_checker_finds_a_process_left_behind(finished_run):
    folder, repo, _ = finished_run
    mark = "test-" + os.urandom(4).hex()
    left = subprocess.Popen(["sleep", "30"], env={**os.environ, chaos.MARK: mark})
    try:
        checker = chaos.Checker(folder, repo)
        time.sleep(0.2)
        checker.check_orphans(mark, None, "end")
        assert list(checker.orphans) == [left.pid]
    finally:
        left.kill()
        left.wait()


def test_a_start_killed_between_its_worktree_and_its_branch_is_redone_on_resume(project, banking_subset, tmp_path):
    """SIGKILL skips Workspace.create's undo: a detached worktree without the branch is left. Resume makes both."""
    run = start_run(project / "recipes" / "intent-categorization", tmp_path / "runs", "cut", data=str(banking_subset))
    worktree = run.folder / "worktree"
    git(project, "worktree", "remove", "--force", str(worktree))
    git(project, "branch", "-D", "autoresearch/cut")
    git(project, "worktree", "add", "-q", "--detach", str(worktree), "HEAD")  # what the kill left
    resumed = resume(tmp_path / "runs", "cut", log=lambda *_: None)
    assert git(resumed.workspace.worktree, "symbolic-ref", "HEAD") == "refs/heads/autoresearch/cut"
    assert resumed.workspace.train_py.is_file()


def test_resume_installs_a_staged_keep_before_anything_reads_the_models(project, banking_subset, tmp_path):
    """A kill between a keep's ledger row and the rename of its model: the resumed run has the model in place when
    resume returns, before the Hub catch-up pushes that `run` starts next (they read models/exp-NNNN)."""
    run = start_run(project / "recipes" / "intent-categorization", tmp_path / "runs", "t", data=str(banking_subset))
    Ledger(run.folder).append(ExperimentRecord(0, "keep", "baseline", commit=run.workspace.head(), selection=0.5))
    staged = run.folder / "models" / ".exp-0000.staged"
    staged.mkdir(parents=True)
    (staged / "config.json").write_text("{}")
    resumed = resume(tmp_path / "runs", "t", log=lambda *_: None)
    assert (resumed.model_dir(0) / "config.json").is_file() and not staged.exists()


def test_a_landed_commit_under_a_later_push_is_tagged_not_made_again(project, tmp_path):
    """exp-0001's commit lands and the session dies before its tag; the next session pushes exp-0000 first (its push
    had failed), on top of it, then finds exp-0001's commit below the head instead of committing it twice."""
    from fake_run import fake_run
    from hub_server import FakeHub

    from hf_autoresearch.hub import HubPublisher, pushed

    outcomes = [dict(status="keep", description="baseline", selection=0.3, holdout=0.2)]
    outcomes.append(dict(status="keep", description="higher", selection=0.5, holdout=0.4, lr=3))
    folder = fake_run(project, tmp_path / "runs", "t1", outcomes)
    keeps = [r for r in Ledger(folder).records() if r.status == "keep"]
    with FakeHub() as hub:
        first = HubPublisher(folder, "user/intent", endpoint=hub.endpoint, token=hub.token, retries=1)
        first.prepare()
        hub.lose_commit_answers = 1  # the commit lands; the session dies without its answer
        assert first.push(keeps[1]) is None and pushed(folder) == {}
        second = HubPublisher(folder, "user/intent", endpoint=hub.endpoint, token=hub.token, retry_wait=0.01)
        second.prepare()
        assert [e["number"] for e in second.push_missing()] == [0, 1]
        repo = hub.repos["user/intent"]
        messages = [c.message[:8] for c in repo.history("autoresearch/t1")]
        assert sorted(m for m in messages if m.startswith("exp-")) == ["exp-0000", "exp-0001"]
        assert repo.commits[repo.tags["t1-exp-0001"]].message.startswith("exp-0001")


def test_a_start_stopped_by_bad_data_leaves_no_run(project, tmp_path):
    """A UserError during the start removes run.json (and the empty folder): the same command works once fixed."""
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "train.csv").write_text("text,label\na,x\nb,y\n")  # too few rows to carve a holdout from
    with pytest.raises(Exception, match="train needs at least 2 rows and test at least 1"):
        start_run(project / "recipes" / "intent-categorization", tmp_path / "runs", "t", data=str(tmp_path / "data"))
    assert not (tmp_path / "runs" / "t").exists()
    assert git(project, "branch", "--list", "autoresearch/*") == ""


@pytest.mark.slow
def test_ten_kills_at_every_phase_lose_nothing(banking77, tmp_path):
    """The script's --quick schedule: kills in the start's git worktree, start-up, training, after the ledger append,
    after the Hub commit, after the agent's edit, after the git commit, in training and evaluation, and half-way
    through a ledger line; the run (baseline + 1 experiment, pushed to a local Hub) must come out whole."""
    schedule = chaos.quick_schedule(random.Random(0), push=True)
    result = chaos.run_chaos(tmp_path / "chaos", max_experiments=1, push=True, schedule=schedule)
    print(chaos.report(result))
    assert len(result.kills) == 10 and result.resumes >= 10
    assert {"git", "ledger", "push", "agent", "training"} <= set(result.phases())
    assert result.runs and all(r.experiments == r.max_experiments >= 1 for r in result.runs)
    assert result.problems == []
    assert (result.lost, result.duplicated, result.orphans) == ([], [], [])
