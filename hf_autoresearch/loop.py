"""The keep/discard loop: propose, check, commit, train and evaluate, keep or reset, record. One ledger row an
experiment; the judging is in assess.py, the rule in decision.py, the run's folder and start in campaign.py.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Protocol

from hf_autoresearch.agents import Agent, InvalidProposal, ProposalContext
from hf_autoresearch.assess import Outcome, assess_baseline, assess_candidate
from hf_autoresearch.campaign import Campaign, RunError
from hf_autoresearch.decision import rule_for
from hf_autoresearch.ledger import ExperimentRecord, experiment_id
from hf_autoresearch.options import now


class LoopCallback(Protocol):
    """What Hub pushes, the live progress line and trackers hear; each method is optional."""

    def on_phase(self, loop: Loop, number: int, phase: str) -> None: ...  # agent / training / evaluation

    def on_record(self, loop: Loop, record: ExperimentRecord) -> None: ...  # after the ledger has it


class Loop:
    def __init__(self, campaign: Campaign, agent: Agent, executor, log=print):
        self.campaign, self.agent, self.executor, self.log = campaign, agent, executor, log
        self.callbacks: list[LoopCallback] = []

    # what callbacks read
    folder = property(lambda self: self.campaign.folder)
    config = property(lambda self: self.campaign.config)
    recipe = property(lambda self: self.campaign.recipe)
    ledger = property(lambda self: self.campaign.ledger)

    def run(self, max_experiments: int | None = None, hours: float | None = None) -> None:
        """The baseline if it is missing, then experiments until a limit is reached or the agent is done."""
        started = time.monotonic()
        recover_models(self.campaign)
        if self.ledger.best() is None:
            self.baseline()
        while True:
            done = sum(r.number > 0 for r in self.ledger.records())
            if max_experiments is not None and done >= max_experiments:
                return self.log(f"reached --max-experiments {max_experiments}")
            if hours is not None and time.monotonic() - started > hours * 3600:
                return self.log(f"reached --hours {hours}")
            if self.step() is None:
                return self.log("the agent has nothing more to propose")

    def baseline(self) -> ExperimentRecord:
        """exp-0000: the recipe as written. A baseline that fails is not recorded: --resume tries it again."""
        workspace = self.campaign.workspace
        record = ExperimentRecord(0, "crash", "baseline", commit=workspace.head(), seed=self.config.seed)
        record.proposal = {"baseline": True}
        self._notify("on_phase", 0, "training")
        outcome = assess_baseline(self.campaign, self.executor, record, workspace.train_py.read_text(), self.log)
        if outcome.record.status != "keep":
            raise RunError(
                f"the baseline exp-0000 ended in {record.status} ({record.reason}); see "
                f"{self.campaign.log_path(0)}. Fix the cause (a longer --budget or --grace, the data, the model) "
                "and add --resume to try the baseline again"
            )
        return self._record(outcome)

    def step(self) -> ExperimentRecord | None:
        """One experiment: None when the agent has nothing left. Ctrl-C leaves no trace: --resume redoes it."""
        started = time.monotonic()
        workspace, best = self.campaign.workspace, self.ledger.best()
        number = self.ledger.next_number()
        try:
            self.log(f"{experiment_id(number)}: asking the {self.agent.name} agent")
            self._notify("on_phase", number, "agent")
            try:
                proposal = self.agent.propose(self._context(number, best))
            except InvalidProposal as err:
                record = ExperimentRecord(number, "invalid", "invalid edit", parent=best.commit, reason=str(err))
                record.proposal, record.agent_usage, record.agent_cost = err.details, err.usage, err.cost
                return self._invalid(record, started)
            if proposal is None:
                workspace.reset(best.commit)
                return None
            record = ExperimentRecord(number, "crash", proposal.description, parent=best.commit, seed=self.config.seed)
            record.proposal, record.agent_usage, record.agent_cost = proposal.details, proposal.usage, proposal.cost
            record.timings["agent"] = time.monotonic() - started
            problem = workspace.check_edit()
            if problem:
                record.reason = problem
                return self._invalid(record, started)
            record.diff, record.diffstat = workspace.diff()
            record.commit = workspace.commit(f"{record.experiment}: {proposal.description}")
            self._notify("on_phase", number, "training")
            rule = rule_for(self.campaign, self.ledger.records())
            outcome = assess_candidate(
                self.campaign, self.executor, record, workspace.train_py.read_text(), best, rule, self.log
            )
            if outcome.record.status != "keep":
                workspace.reset(best.commit)
            record.total_seconds = time.monotonic() - started
            return self._record(outcome)
        except BaseException:
            workspace.reset(best.commit)
            raise

    def _context(self, number: int, best: ExperimentRecord) -> ProposalContext:
        workspace = self.campaign.workspace
        return ProposalContext(
            number,
            workspace.worktree,
            workspace.train_py,
            self.recipe,
            self.ledger.records(),
            best,
            run_folder=self.folder,
            budget=self.config.budget,
        )

    def _invalid(self, record: ExperimentRecord, started: float) -> ExperimentRecord:
        record.status = "invalid"
        record.diff, record.diffstat = self.campaign.workspace.diff()
        self.campaign.workspace.reset(record.parent)
        record.description = record.description or record.proposal.get("patch", "") or "invalid edit"
        record.total_seconds = time.monotonic() - started
        record.timings.setdefault("agent", record.total_seconds)
        return self._record(Outcome(record, None))

    def _record(self, outcome: Outcome) -> ExperimentRecord:
        """Append to the ledger, then put a kept model in place (staged first, so a death in between loses nothing)."""
        record = outcome.record
        known = sum(record.timings.get(k) or 0.0 for k in ("agent", "process", "eval_selection", "eval_holdout"))
        record.total_seconds = record.total_seconds or known
        record.timings["bookkeeping"] = max(0.0, record.total_seconds - known)
        record.finished_at = now()
        staged = _staging(self.campaign, record.number)
        if outcome.model is not None:
            shutil.rmtree(staged, ignore_errors=True)
            staged.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(outcome.model), staged)
        self.ledger.append(record)
        if outcome.model is not None:
            _install(self.campaign, record.number)
        self._announce(record)
        self._notify("on_record", record)
        return record

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


def _staging(campaign: Campaign, number: int) -> Path:
    return campaign.model_dir(number).with_name(f".{experiment_id(number)}.staged")


def _install(campaign: Campaign, number: int) -> None:
    """Rename the staged model into models/exp-NNNN, replacing a stale folder of an interrupted attempt."""
    final = campaign.model_dir(number)
    if final.exists():
        shutil.rmtree(final)
    _staging(campaign, number).rename(final)


def recover_models(campaign: Campaign) -> None:
    """After a crash: install staged models of keeps the ledger has; drop those of experiments it lacks."""
    models = campaign.folder / "models"
    if not models.is_dir():
        return
    kept = {r.number for r in campaign.ledger.records() if r.status == "keep"}
    for staged in models.glob(".exp-*.staged"):
        number = int(staged.name[5:9])
        if number in kept:
            _install(campaign, number)
        else:
            shutil.rmtree(staged, ignore_errors=True)
