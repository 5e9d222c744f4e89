"""Parallel experiments: several in flight at once, recorded out of order, the keep rule with a stale parent
(re-apply and confirm on the current best, or discard a conflict), slots' shares of the machine, and a killed driver
whose in-flight experiments a --resume runs again."""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import git, make_patch
from runs import FakeExecutor, record_baseline, run_loop, start_run

from hf_autoresearch.agents.replay import ReplayAgent
from hf_autoresearch.driver import slots
from hf_autoresearch.errors import UserError
from hf_autoresearch.executors.local import slot_shares
from hf_autoresearch.executors.runner import owned_processes
from hf_autoresearch.ledger import Ledger

pytestmark = pytest.mark.usefixtures("no_sampling_floor")  # 20 selection rows: a floor above every fake gain

FAKE_LINES = """
FAKE_SCORES = [0.50, 0.52, 0.48]  # baseline runs: std 0.02, so a keep must gain more than 0.04
FAKE_SECONDS = 0.3  # every trial

FAKE_GAIN_A = 0.0
FAKE_DELAY_A = 0.0

FAKE_GAIN_B = 0.0
FAKE_DELAY_B = 0.0
FAKE_CAP_B = 1.0

FAKE_GAIN_C = 0.0
FAKE_DELAY_C = 0.0
"""


@pytest.fixture
def recipe(project):
    """The intent recipe with fake score lines (tests/runs.py's FakeExecutor reads them), committed."""
    recipe = project / "recipes" / "intent-categorization"
    train = recipe / "train.py"
    train.write_text(train.read_text() + FAKE_LINES)
    git(project, "-c", "user.name=u", "-c", "user.email=u@x", "commit", "-qam", "fake scores")
    return recipe


def fake_patch(recipe: Path, folder: Path, name: str, subject: str, **lines: float) -> Path:
    """A patch setting FAKE_<KEY> lines, e.g. GAIN_A=0.2, DELAY_A=1.0."""
    text = (recipe / "train.py").read_text()
    old = {key: re.search(rf"^FAKE_{key} = .*\n", text, re.MULTILINE).group(0) for key in lines}
    edits = [(old[key], f"FAKE_{key} = {value}\n") for key, value in lines.items()]
    return make_patch(recipe, subject, edits, folder / name)


def start(recipe, banking_subset, tmp_path, tag, **options):
    options = {"baseline_repeats": 3, "budget": 10, **options}
    return start_run(recipe, tmp_path / "runs", tag, data=str(banking_subset), **options)


def kept_chain(project: Path, branch: str) -> list[str]:
    """The branch's commits from the newest, each with exactly one parent (linear history)."""
    lines = git(project, "rev-list", "--parents", branch).splitlines()
    assert all(len(line.split()) <= 2 for line in lines), "the branch has a merge commit"
    return [line.split()[0] for line in lines]


def test_two_workers_overlap_finish_out_of_order_and_keep_the_branch_linear(recipe, banking_subset, tmp_path):
    patches = tmp_path / "patches"
    fake_patch(recipe, patches, "1.patch", "slow real gain", GAIN_A=0.2, DELAY_A=1.5)
    fake_patch(recipe, patches, "2.patch", "fast, no gain", DELAY_B=0.1)
    fake_patch(recipe, patches, "3.patch", "fast, no gain either", DELAY_C=0.1)
    run = start(recipe, banking_subset, tmp_path, "par")
    executor = FakeExecutor(tmp_path / "models", workers=2)
    run_loop(run, ReplayAgent(patches), executor)

    records = Ledger(run.folder).records()
    assert [r.number for r in records] == [0, 2, 3, 1]  # decided out of order: the slow keep last
    assert {r.number: r.status for r in records} == {0: "keep", 1: "keep", 2: "discard", 3: "discard"}
    assert sorted(r.proposal.get("patch") for r in records[1:]) == ["1.patch", "2.patch", "3.patch"]
    rows = (run.folder / "results.tsv").read_text().splitlines()[1:]
    assert [row.split("\t")[0] for row in rows] == ["exp-0000", "exp-0001", "exp-0002", "exp-0003"]

    # experiments overlapped in time: exp-0002 and exp-0003 ran while exp-0001's first run trained
    trials = {r.number: r.trials for r in records}
    slow = trials[1][0]
    for number in (2, 3):
        assert slow["started_at"] < trials[number][0]["finished_at"] < slow["finished_at"]
    assert executor.most_running == 2
    # the baseline's three repeats used both slots too
    base = sorted(trials[0], key=lambda t: t["started_at"])
    assert base[1]["started_at"] < base[0]["finished_at"]

    # the branch holds the baseline and the keep, one after the other; the discards are on refs only
    base_record, keep = records[0], records[3]
    assert kept_chain(Path(run.config.repo), "autoresearch/par")[:2] == [keep.commit, base_record.commit]
    assert keep.parent == base_record.commit
    refs = git(Path(run.config.repo), "for-each-ref", "--format=%(refname)", "refs/autoresearch/par")
    assert refs.split() == [f"refs/autoresearch/par/exp-000{n}" for n in (1, 2, 3)]
    assert not list((run.folder / "pending").iterdir())
    assert not (run.folder / slots.SLOTS_FILE).exists()  # written while it ran, gone when it ended


def test_a_stale_candidate_is_reapplied_onto_the_new_best_or_discarded_on_conflict(recipe, banking_subset, tmp_path):
    patches = tmp_path / "patches"
    fake_patch(recipe, patches, "1.patch", "A: fast gain", GAIN_A=0.2, DELAY_A=0.2)
    fake_patch(recipe, patches, "2.patch", "B: slow gain on another line", GAIN_B=0.1, DELAY_B=2.0)
    fake_patch(recipe, patches, "3.patch", "C: slow gain on A's line", GAIN_A=0.3, DELAY_C=2.0)
    run = start(recipe, banking_subset, tmp_path, "stale")
    run_loop(run, ReplayAgent(patches), FakeExecutor(tmp_path / "models", workers=3))

    by_number = {r.number: r for r in Ledger(run.folder).records()}
    base, a, b, c = (by_number[n] for n in range(4))
    assert a.status == "keep" and a.parent == base.commit
    # B was proposed on the baseline, beat it, then found A kept: re-applied onto A and trained again there
    assert b.status == "keep", b.reason
    assert b.decision["proposed"]["parent"] == base.commit and b.parent == a.commit
    assert b.commit != b.decision["proposed"]["commit"]
    assert [t["kind"] for t in b.trials] == ["first run"] + ["re-applied"] * 3 + ["re-measure"] * 3
    assert all(t["commit"] == b.commit for t in b.trials[1:])
    # the re-applied runs alone decide (A's gain and B's), against A's re-measured bar; the re-measure runs score it
    assert b.decision["decision_mean"] == pytest.approx((0.52 + 0.48 + 0.48) / 3 + 0.2 + 0.1)  # runs 1, 2, 3
    assert b.decision["best"] == pytest.approx(0.48 + 0.2) and b.selection == pytest.approx(0.48 + 0.2 + 0.1)
    assert b.decision["best_experiment"] == 1 and b.decision["stage"] == "re-applied onto exp-0001"
    repo = Path(run.config.repo)
    both = git(repo, "show", f"{b.commit}:recipes/intent-categorization/train.py")
    assert "FAKE_GAIN_A = 0.2" in both and "FAKE_GAIN_B = 0.1" in both
    # C changed the line A changed: it cannot be re-applied
    assert c.status == "discard" and c.reason == "conflicts with exp-0001"
    assert kept_chain(repo, "autoresearch/stale")[:3] == [b.commit, a.commit, base.commit]


def test_a_candidate_that_only_beats_a_stale_parent_is_not_kept(recipe, banking_subset, tmp_path):
    """B gains 0.1 over the baseline; re-applied on top of A it must clear the threshold against A, and does not
    when the two gains do not add up (B caps the score at 0.65, below A's 0.8)."""
    patches = tmp_path / "patches"
    fake_patch(recipe, patches, "1.patch", "A: fast big gain", GAIN_A=0.3, DELAY_A=0.1)
    fake_patch(recipe, patches, "2.patch", "B: slow, cancels A on top of it", GAIN_B=0.1, DELAY_B=1.5, CAP_B=0.65)
    run = start(recipe, banking_subset, tmp_path, "cancel", confirm=False)
    run_loop(run, ReplayAgent(patches), FakeExecutor(tmp_path / "models", workers=2))
    by_number = {r.number: r for r in Ledger(run.folder).records()}
    a, b = by_number[1], by_number[2]
    # --no-confirm: one deciding run when its parent is still the best (then the keep's three re-measure runs)
    assert a.status == "keep" and [t["kind"] for t in a.trials] == ["first run"] + ["re-measure"] * 3
    # --no-confirm still trains a re-applied commit once: the kept commit must be the one that was trained
    assert b.status == "discard" and [t["kind"] for t in b.trials] == ["first run", "re-applied"]
    assert "does not clear the threshold" in b.reason


def test_no_decision_is_taken_against_a_best_whose_keep_is_still_being_recorded(recipe, banking_subset, tmp_path):
    """A is decided a keep and scored on the holdout (slowly); B, proposed on the same parent, clears meanwhile.
    B must wait and then be judged on top of A (re-applied), not kept on the old best beside A."""
    patches = tmp_path / "patches"
    fake_patch(recipe, patches, "1.patch", "A", GAIN_A=0.2, DELAY_A=0.1)
    fake_patch(recipe, patches, "2.patch", "B", GAIN_B=0.2, DELAY_B=0.8)
    run = start(recipe, banking_subset, tmp_path, "barrier", baseline_repeats=1, confirm=False)
    run_loop(run, ReplayAgent(patches), FakeExecutor(tmp_path / "models", workers=2, holdout_seconds=1.5))
    by_number = {r.number: r for r in Ledger(run.folder).records()}
    a, b = by_number[1], by_number[2]
    assert a.status == "keep" and b.status == "keep"
    assert b.parent == a.commit and b.decision["best_experiment"] == 1  # judged on top of A
    assert [t["kind"] for t in b.trials] == ["first run", "re-applied", "re-measure"]
    assert b.trials[0]["finished_at"] < a.trials[0]["finished_at"] + 1.5  # B was ready while A was recorded


def test_slot_shares_split_gpus_and_cpu_threads(monkeypatch):
    monkeypatch.setattr(os, "cpu_count", lambda: 16)
    assert slot_shares(1, 1, [], 16) == [{"cpu_threads": None}]  # one slot on the whole machine: the default pool
    assert slot_shares(1, 1, [], 8) == [{"cpu_threads": 8}]  # pinned to 8 of the 16 cores (taskset, a cpuset)
    assert slot_shares(2, 1, [], 8) == [{"cpu_threads": 4}, {"cpu_threads": 4}]
    assert slot_shares(4, 1, [], 2) == [{"cpu_threads": 1}] * 4  # never zero threads
    shares = slot_shares(2, 2, ["0", "1", "2", "3"], 16)
    assert [s["cuda_devices"] for s in shares] == ["0,1", "2,3"]
    assert all(s["num_processes"] == 2 and s["cpu_threads"] == 8 for s in shares)
    assert [s["cuda_devices"] for s in slot_shares(2, 1, ["4", "6"], 4)] == ["4", "6"]  # CUDA_VISIBLE_DEVICES names
    with pytest.raises(UserError, match="needs 4 GPUs"):
        slot_shares(2, 2, ["0", "1"], 8)


# --- real processes ---------------------------------------------------------------------------------------------
SLEEPY = Path(__file__).with_name("sleepy_train.py")


def run_folder_owner(folder: Path) -> str:
    """The owner id the run's processes carry (executor.run_owner), from its folder."""
    return f"{folder.name}@{hashlib.sha1(str(folder.resolve()).encode()).hexdigest()[:10]}"


def wait_for(condition, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.3)


@pytest.mark.slow
def test_a_killed_driver_leaves_nothing_running_and_resume_reruns_what_was_in_flight(
    project, banking_subset, tiny_bert, tmp_path
):
    """SIGKILL while two experiments train: their processes die (the reaper), the ledger holds only what was
    decided, and --resume runs both again under the same numbers; nothing is lost or recorded twice."""
    recipe = project / "recipes" / "intent-categorization"
    (recipe / "train.py").write_text(SLEEPY.read_text())
    git(project, "-c", "user.name=u", "-c", "user.email=u@x", "commit", "-qam", "sleepy train.py")
    patches = tmp_path / "patches"
    for i in (1, 2):
        make_patch(recipe, f"sleep long {i}", [("SLEEP = 2.0", f"SLEEP = 60.{i}")], patches / f"{i}.patch")
    options = {"patches": str(patches), "workers": 2, "budget": 40, "grace": 20, "min_delta": 1.0}  # no keeps
    run = start_run(recipe, tmp_path / "runs", "killed", data=str(banking_subset), model=str(tiny_bert), **options)
    record_baseline(run)  # the baseline is not what this is about: start with two experiments at once
    folder, owner = run.folder, run_folder_owner(run.folder)
    resume = [sys.executable, "-m", "hf_autoresearch.cli", "run", "--resume", "--tag", "killed"]
    resume += ["--run-dir", str(folder.parent), "--max-experiments", "2"]
    driver = subprocess.Popen(resume, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        logs = [folder / "logs" / f"exp-000{n}.log" for n in (1, 2)]
        wait_for(lambda: all(log.is_file() for log in logs), 120, "two trainings")
        wait_for(lambda: len(owned_processes(owner)) >= 4, 30, "both launchers and scripts")
    finally:
        driver.send_signal(signal.SIGKILL)
        driver.wait()
    wait_for(lambda: not owned_processes(owner), 30, "the reaper to kill the run's processes")
    assert [r.number for r in Ledger(folder).records()] == [0]
    assert sorted(p.name for p in (folder / "pending").iterdir()) == ["exp-0001.json", "exp-0002.json"]

    done = subprocess.run([*resume, "--budget", "6"], capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "exp-0001: was in flight when the last session ended" in done.stdout
    records = Ledger(folder).records()
    assert sorted(r.number for r in records) == [0, 1, 2]
    assert sorted(r.proposal["patch"] for r in records[1:]) == ["1.patch", "2.patch"]
    assert all(r.status == "discard" and len(r.trials) == 1 for r in records[1:]), [r.reason for r in records]
    assert _overlap(records[1].trials[0], records[2].trials[0])  # two at a time, on the two slots
    assert {records[1].trials[0]["slot"], records[2].trials[0]["slot"]} == {"local-0", "local-1"}
    assert records[1].summary["threads"] == str(max(1, os.cpu_count() // 2))  # each slot's share of the CPU
    assert not list((folder / "pending").iterdir())
    assert not owned_processes(owner)


def _overlap(a: dict, b: dict) -> bool:
    return a["started_at"] < b["finished_at"] and b["started_at"] < a["finished_at"]


def test_the_slots_view_shows_a_live_run_only(tmp_path):
    started = time.time() - 20
    running = {"slot": "local-0", "experiment": 7, "run": 1, "kind": "confirmation", "phase": "training"}
    slots.write(tmp_path, [{**running, "started": started}, {"slot": "local-1"}], budget=60)
    first, second = slots.lines(tmp_path)
    assert first.startswith("local-0  exp-0007 run 2 (confirmation)  training 0:2") and "0:3" in first  # ~40 s left
    assert second == "local-1  idle"
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    data = json.loads((tmp_path / slots.SLOTS_FILE).read_text())
    (tmp_path / slots.SLOTS_FILE).write_text(json.dumps({**data, "pid": int(gone.stdout)}))
    assert slots.lines(tmp_path) == []  # its writer is gone: the run is not running


def test_impossible_slots_fail_before_anything_is_prepared(recipe, tmp_path, capsys):
    from hf_autoresearch.cli import main

    patches = tmp_path / "patches"
    fake_patch(recipe, patches, "1.patch", "A", GAIN_A=0.1)
    args = ["run", str(recipe), "--tag", "none", "--patches", str(patches), "--run-dir", str(tmp_path / "runs")]
    assert main([*args, "--workers", "0"]) == 2
    assert "--workers and --gpus-per-experiment must be at least 1" in capsys.readouterr().err
    assert not (tmp_path / "runs" / "none").exists()


class EditedScoresHigher(FakeExecutor):
    """Any train.py other than the baseline's scores 0.3 more; experiment 2's first run trains slowly, so that
    experiment 1 is kept while it trains."""

    def __init__(self, folder, baseline: str, **kwargs):
        super().__init__(folder, **kwargs)
        self.baseline = baseline

    def _train(self, spec):
        if spec.number == 2 and spec.index == 0:
            time.sleep(1.5)
        result = super()._train(spec)
        if spec.train_py != self.baseline:
            result.selection += 0.3
            result.scores["selection"]["accuracy"] = result.selection
        return result


def test_a_stale_optuna_trial_is_judged_as_its_configuration_on_the_new_best(recipe, banking_subset, tmp_path):
    """Every optuna trial rewrites every `# search:` line, so a cherry-pick of a trial made on the baseline onto
    another kept trial always conflicts. The trial is its values: they are written onto the current best."""
    from hf_autoresearch.agents.optuna_agent import OptunaAgent

    run = start(recipe, banking_subset, tmp_path, "optuna2", agent="optuna", workers=2)
    baseline = (recipe / "train.py").read_text()
    run_loop(
        run,
        OptunaAgent(seed=3),
        EditedScoresHigher(tmp_path / "models", baseline, workers=2),
        max_experiments=2,
    )
    by_number = {r.number: r for r in Ledger(run.folder).records()}
    first, stale = by_number[1], by_number[2]
    assert "conflicts" not in stale.reason
    assert first.status == "keep" and stale.decision["proposed"]["parent"] == by_number[0].commit
    assert stale.trials[0]["selection"] > by_number[0].selection + 0.2  # it cleared its first run on the baseline
    assert [t["kind"] for t in stale.trials] == ["first run"] + ["re-applied"] * 3
    assert stale.parent == first.commit and stale.decision["best_experiment"] == 1
    # the re-applied commit is the best's train.py with the stale trial's values, and nothing else of its own
    from hf_autoresearch.agents.search_space import find_spaces, format_value

    written = git(Path(run.config.repo), "show", f"{stale.commit}:recipes/intent-categorization/train.py")
    spaces = {s.name: s for s in find_spaces(written)}
    assert {n: format_value(spaces[n], spaces[n].value) for n in spaces} == stale.proposal["written"]
    best_py = git(Path(run.config.repo), "show", f"{first.commit}:recipes/intent-categorization/train.py")
    changed = [a for a, b in zip(best_py.splitlines(), written.splitlines(), strict=True) if a != b]
    assert changed and all("search:" in line for line in changed)
