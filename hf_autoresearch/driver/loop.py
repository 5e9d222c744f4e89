"""The keep/discard loop, with several experiments in flight: propose, commit, judge, record.

One thread, the driver, does everything but training. Whenever a slot is free it resets the run's worktree to the
current best, asks the agent for an edit, commits it (on a ref of its own, not on the branch) and starts judging it
(assess.py); the trainings run on the executor's slots (inflight.py drives the judgements). Outcomes are recorded
as they are decided, in any order: the driver alone appends to the ledger and moves the branch `autoresearch/<tag>`,
which only ever fast-forwards to a kept commit. With one worker this is the classic one-experiment-at-a-time loop.
"""

from __future__ import annotations

import fcntl
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol

from hf_autoresearch.agents import Agent, InvalidProposal, ProposalContext
from hf_autoresearch.driver import kept_models, slots
from hf_autoresearch.driver.assess import Outcome, judge_baseline, judge_candidate
from hf_autoresearch.driver.decision import rule_for
from hf_autoresearch.driver.inflight import InFlight
from hf_autoresearch.driver.pending import Pending, reapply
from hf_autoresearch.driver.preview import preview_for
from hf_autoresearch.driver.run import Run, RunError
from hf_autoresearch.ledger import UNDECIDED, ExperimentRecord, experiment_id
from hf_autoresearch.options import now
from hf_autoresearch.workspace import git

POLL_SECONDS = 1.0  # how often the slots view is refreshed while waiting for trials


class LoopCallback(Protocol):
    """What Hub pushes, the live progress line and trackers hear; each method is optional."""

    def on_phase(self, loop: Loop, number: int, phase: str) -> None: ...  # agent / training

    def on_record(self, loop: Loop, record: ExperimentRecord) -> None: ...  # after the ledger has it


class Loop:
    def __init__(self, run: Run, agent: Agent, executor, log=print):
        self.run, self.agent, self.executor, self.log = run, agent, executor, log
        self.callbacks: list[LoopCallback] = []
        self.workspace = run.workspace
        self.pending = Pending(run.folder, run.workspace, run.config.tag)
        self.inflight = InFlight(executor, lambda: self.best, self._record, log)
        self.best: ExperimentRecord | None = None
        self.records: list[ExperimentRecord] = []  # the ledger as the driver wrote it
        self.rule = None
        self.agent_done = False
        self.resuming: set[int] = set()  # re-runs of a killed session: new proposals wait until they are recorded
        self.started: dict[int, float] = {}  # experiment -> when it was proposed (monotonic)
        self._shown: list[dict] | None = None
        self._machine_facts: dict | None = None

    # what callbacks read
    folder = property(lambda self: self.run.folder)
    config = property(lambda self: self.run.config)
    recipe = property(lambda self: self.run.recipe)
    ledger = property(lambda self: self.run.ledger)

    def run_experiments(self, max_experiments: int | None = None, hours: float | None = None) -> None:
        """The baseline if it is missing, then experiments until a limit is reached or the agent is done; the
        experiments still in flight then finish and are recorded."""
        started = time.monotonic()
        with _driver_lock(self.folder), _detached(self.workspace, self.config.branch):
            kept_models.recover(self.run.folder, self.run.ledger.kept_numbers())
            self.records = self.ledger.records()  # the driver is the ledger's one writer: it keeps it in memory
            self.best = self.ledger.best()
            if self.best is None:
                self._baseline()
            self.workspace.fast_forward(self.config.branch, self.best.commit)  # a session killed in between
            self.rule = rule_for(self.run, self.records)
            self._resume_in_flight()
            try:
                self.log(self._cycle(max_experiments, hours, started))
            finally:
                slots.clear(self.folder)

    def _cycle(self, max_experiments: int | None, hours: float | None, started: float) -> str:
        """Propose whenever a slot is free, until a limit; then let what is in flight finish. Why it stopped."""
        stop = None
        while True:
            self.inflight.collect()  # finished trials move their judgements on; decided experiments are recorded
            stop = stop or self._stop_reason(max_experiments, hours, started)
            if stop is None and not self.resuming and self.inflight.busy() < self.executor.workers:
                self._propose()
            elif not self.inflight:
                return stop or "nothing left in flight"
            else:
                self._show_slots()
                self.inflight.wait(POLL_SECONDS)

    def _stop_reason(self, max_experiments: int | None, hours: float | None, started: float) -> str | None:
        done = sum(r.number > 0 for r in self.records) + sum(n > 0 for n in self.inflight.numbers())
        if max_experiments is not None and done >= max_experiments:
            return f"reached --max-experiments {max_experiments}"
        if hours is not None and time.monotonic() - started > hours * 3600:
            return f"reached --hours {hours}"
        if self.agent_done:
            return "the agent has nothing more to propose"
        return None

    def _baseline(self) -> None:
        """exp-0000: the recipe as written. A baseline that fails is not recorded: --resume tries it again."""
        record = ExperimentRecord(0, UNDECIDED, "baseline", commit=self.workspace.head(), seed=self.config.seed)
        record.proposal = {"baseline": True}
        self.started[0] = time.monotonic()
        self._notify("on_phase", 0, "training")
        train_py = self.workspace.train_py.read_text()
        self.inflight.start(record, judge_baseline(self.run, record, train_py, self.log))
        while self.inflight:
            self._show_slots()
            self.inflight.wait(POLL_SECONDS)
            self.inflight.collect()

    def _resume_in_flight(self) -> None:
        """Judge again what a killed session had in flight (same numbers, same commits)."""
        for record in self.pending.load({r.number for r in self.records}):
            self.log(f"{record.experiment}: was in flight when the last session ended; running it again")
            self.resuming.add(record.number)
            self._start(record, self.pending.train_py_at(record.commit), time.monotonic())

    def _propose(self) -> None:
        """Ask the agent for one edit on top of the current best and start judging it."""
        started, best, workspace = time.monotonic(), self.best, self.workspace
        taken = [r.number for r in self.records] + self.inflight.numbers() + self.pending.numbers()
        number = max(taken) + 1
        try:
            workspace.reset(best.commit)
            self.log(f"{experiment_id(number)}: asking the {self.agent.name} agent")
            self._notify("on_phase", number, "agent")
            self.started[number] = started
            try:
                proposal = self.agent.propose(self._context(number, best))
            except InvalidProposal as err:
                record = ExperimentRecord(number, "invalid", "invalid edit", parent=best.commit, reason=str(err))
                record.proposal, record.agent_usage, record.agent_cost = err.details, err.usage, err.cost
                return self._invalid(record)
            if proposal is None:
                workspace.reset(best.commit)
                self.agent_done = True
                return
            seed = self.config.seed
            record = ExperimentRecord(number, UNDECIDED, proposal.description, parent=best.commit, seed=seed)
            record.proposal, record.agent_usage, record.agent_cost = proposal.details, proposal.usage, proposal.cost
            record.timings["agent"] = time.monotonic() - started
            problem = workspace.check_edit()
            if problem:
                record.reason = problem
                return self._invalid(record)
            record.diff, record.diffstat = workspace.diff()
            train_py = workspace.train_py.read_text()
            # HEAD is detached: the commit does not move the branch
            record.commit = workspace.commit(f"{record.experiment}: {proposal.description}")
            workspace.reset(best.commit)
        except BaseException:
            workspace.reset(best.commit)
            raise
        self.pending.add(record)
        self._start(record, train_py, started)

    def _start(self, record: ExperimentRecord, train_py: str, started: float) -> None:
        self.started[record.number] = started
        self._notify("on_phase", record.number, "training")
        parent = next(r for r in self.records if r.status == "keep" and r.commit == record.parent)
        judgement = judge_candidate(self.run, record, train_py, parent, self.rule, self._reapply, self.log)
        self.inflight.start(record, judgement)

    def _reapply(self, record: ExperimentRecord, best: ExperimentRecord):
        kept = [r for r in self.records if r.status == "keep"]
        since = next((i + 1 for i, r in enumerate(kept) if r.commit == record.parent), 0)
        rewrite = getattr(self.agent, "reapply", None)  # an agent whose proposal is a whole configuration
        return reapply(self.workspace, record, best, kept[since:], rewrite)

    def _context(self, number: int, best: ExperimentRecord) -> ProposalContext:
        workspace = self.workspace
        return ProposalContext(
            number,
            workspace.worktree,
            workspace.train_py,
            self.recipe,
            list(self.records),
            best,
            run_folder=self.folder,
            budget=self.config.budget,
            rule=self._rule_facts(),
            preview=self._preview(best),
            machine=self._machine(),
            in_flight=[  # so the agent does not propose what is being tried already
                {
                    "experiment": job.record.experiment,
                    "description": job.record.description,
                    "diff": job.record.diff,
                    "agent_cost": job.record.agent_cost,  # spent already: the agent's dollar cap counts it
                }
                for number_, job in sorted(self.inflight.jobs.items())
                if number_ > 0
            ],
        )

    def _machine(self) -> dict:
        """The machine a trial trains on, probed once a session (executors/machine.py), for the agents that read it."""
        if not getattr(self.agent, "uses_machine", False):
            return {}
        if self._machine_facts is None:
            from hf_autoresearch.executors.machine import describe

            self._machine_facts = describe(self.executor)
        return self._machine_facts

    def _rule_facts(self) -> dict:
        """The keep rule as it stands for a candidate on the current best, for the agent's prompt."""
        return self.rule.facts(self.best)

    def _preview(self, best: ExperimentRecord) -> list[dict]:
        """The best model's predictions on fixed training rows, made once per keep (preview.py), for the agents
        that read them."""
        if not getattr(self.agent, "uses_preview", False):
            return []
        return preview_for(self.run, best, self.log)

    def _invalid(self, record: ExperimentRecord) -> None:
        record.status = "invalid"
        record.diff, record.diffstat = self.workspace.diff()
        self.workspace.reset(record.parent)
        record.description = record.description or record.proposal.get("patch", "") or "invalid edit"
        record.timings.setdefault("agent", time.monotonic() - self.started[record.number])
        self._record(Outcome(record))

    def _record(self, outcome: Outcome) -> None:
        """Append to the ledger, then move the branch and put a kept model in place (staged first, so a death in
        between loses nothing). Called by the driver only, as each experiment is decided."""
        record = outcome.record
        if record.number == 0 and record.status != "keep":
            self._release(outcome)
            raise RunError(
                f"the baseline exp-0000 ended in {record.status} ({record.reason}); see "
                f"{self.run.log_path(0)}. Fix the cause (a longer --budget or --grace, the data, the model) "
                "and add --resume to try the baseline again"
            )
        record.total_seconds = time.monotonic() - self.started.pop(record.number, time.monotonic())
        known = sum(record.timings.get(k) or 0.0 for k in ("agent", "process", "eval_selection", "eval_holdout"))
        record.timings["bookkeeping"] = max(0.0, record.total_seconds - known)
        record.finished_at = now()
        model = self.executor.model(outcome.kept) if outcome.kept is not None else None
        if model is not None:
            kept_models.stage(self.run.folder, record.number, model)
        if record.status == "keep" and self.best is not None and record.parent != self.best.commit:  # see assess.py
            raise RuntimeError(f"{record.experiment} was judged on {record.parent[:8]}, not on the best")
        self.ledger.append(record)
        self.records.append(record)
        if self.rule is not None:
            self.rule.observe(record)  # its repeated runs join the noise pool
        if record.status == "keep":
            self.workspace.fast_forward(self.config.branch, record.commit)
            self.best = record
            if model is not None:
                kept_models.install(self.run.folder, record.number)
        self.pending.remove(record.number)
        self.resuming.discard(record.number)
        self._release(outcome)
        self._announce(record)
        self._notify("on_record", record)

    def _release(self, outcome: Outcome) -> None:
        for trial in outcome.runs:
            self.executor.discard(trial)

    def _show_slots(self) -> None:
        current = self.executor.slots()
        if current != self._shown:
            slots.write(self.folder, current, self.config.budget)
            self._shown = current

    def _notify(self, event: str, *args) -> None:
        """Tell the callbacks; one that fails is reported and never stops the run."""
        for callback in self.callbacks:
            method = getattr(callback, event, None)
            if method is None:
                continue
            try:
                method(self, *args)
            except Exception as err:
                self.log(f"warning: {type(callback).__name__}.{event} failed: {type(err).__name__}: {err}")

    def _announce(self, record: ExperimentRecord) -> None:
        score = "" if record.selection is None else f" selection {record.selection:.4f}"
        hold = "" if record.holdout is None else f" holdout {record.holdout:.4f}"
        why = f" ({record.reason.splitlines()[0]})" if record.reason else ""
        self.log(f"{record.experiment}: {record.status}{score}{hold} in {record.total_seconds:.0f} s{why}")


@contextmanager
def _driver_lock(folder: Path):
    """One driver a run: a second `run --resume` of a run that is still running stops at once."""
    with (Path(folder) / "driver.lock").open("w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunError(f"run {Path(folder).name} is already running in another process") from None
        yield


@contextmanager
def _detached(workspace, branch: str):
    """Proposals are committed on a detached HEAD; the branch moves only by fast-forward to a keep. Afterwards the
    worktree is on the branch again, at its tip."""
    git(workspace.worktree, "checkout", "-q", "--detach")
    try:
        yield
    finally:
        git(workspace.worktree, "reset", "-q", "--hard", f"refs/heads/{branch}", check=False)
        git(workspace.worktree, "checkout", "-q", branch, check=False)
