"""The agent protocol: one small base class, the same for every way of proposing an edit."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path

from hf_autoresearch.errors import UserError
from hf_autoresearch.ledger import ExperimentRecord, experiment_id
from hf_autoresearch.recipe import Recipe

DEFAULT_MAX_INVALID_STREAK = 5  # invalid proposals in a row before the run stops (resumable)


@dataclass
class ProposalContext:
    number: int  # the experiment being proposed
    worktree: Path  # the run's git worktree, reset to the best commit
    train_py: Path  # the recipe's train.py inside the worktree: the only file an agent may change
    recipe: Recipe
    history: list[ExperimentRecord]  # every finished experiment so far, baseline first
    best: ExperimentRecord
    run_folder: Path | None = None  # <run-dir>/<tag>: logs/exp-NNNN.log, splits/, a place for the agent's state
    budget: float | None = None  # the run's training seconds per experiment (the recipe's unless overridden)
    # the keep rule as it is: {"min_delta", "z", "noise_std", "threshold", "confirm", "direction"}; {} when unknown
    rule: dict = field(default_factory=dict)
    # experiments other workers are training now: [{"experiment": "exp-0007", "description": str, "diff": str}]
    in_flight: list[dict] = field(default_factory=list)
    # the current best model on a few fixed TRAINING rows: [{"input": str, "prediction": str, "reference": str}]
    preview: list[dict] = field(default_factory=list)
    # the machine a trial trains on (executors/machine.py): device, GPUs, bf16, CPU cores and threads, RAM, workers
    machine: dict = field(default_factory=dict)


@dataclass
class Proposal:
    description: str  # one line: what this experiment tries
    details: dict = field(default_factory=dict)  # stored in the ledger as `proposal`; agents resume from it
    usage: dict = field(default_factory=dict)  # what proposing cost in tokens (ledger `agent_usage`)
    cost: float = 0.0  # ... and in dollars (ledger `agent_cost`)


class InvalidProposal(Exception):
    """The agent tried and failed to make a usable edit; the experiment is recorded `invalid`."""

    def __init__(self, reason: str, details: dict | None = None, usage: dict | None = None, cost: float = 0.0):
        super().__init__(reason)
        self.details = details or {}
        self.usage = usage or {}
        self.cost = cost


class AgentGaveUp(UserError):
    """Too many invalid proposals in a row: the run stops cleanly (resumable) instead of paying for more."""


def invalid_streak(history: list[ExperimentRecord], since: int = 0) -> list[ExperimentRecord]:
    """The invalid experiments at the end of `history` (in experiment order), counting from number `since` on."""
    streak: list[ExperimentRecord] = []
    for record in sorted((r for r in history if r.number >= since), key=lambda r: r.number, reverse=True):
        if record.status != "invalid":
            break
        streak.append(record)
    return streak[::-1]


def check_invalid_streak(history: list[ExperimentRecord], limit: int | None, since: int = 0) -> None:
    """Raise AgentGaveUp when the last `limit` experiments (numbered `since` or later) were all invalid.

    A systematic failure (an API answering 400 to every request, a model that never finishes) would otherwise
    make every remaining experiment invalid and bill each one. `limit` None or 0 turns the check off.
    """
    if not limit:
        return
    streak = invalid_streak(history, since)
    if len(streak) < limit:
        return
    first, last = streak[0], streak[-1]
    reason = " ".join(last.reason.split())[:300]
    raise AgentGaveUp(
        f"the agent gave up: the last {len(streak)} experiments ({experiment_id(first.number)} to "
        f"{experiment_id(last.number)}) were all invalid; the last one because: {reason}. Fix the cause, then "
        "continue with --resume (a resumed run gets a fresh count)"
    )


class Agent(ABC):
    """Proposes the next experiment by editing `context.train_py` in place.

    Contract:
    - `propose` edits only `context.train_py`; the harness rejects (status `invalid`) an edit that changes any
      other file, changes nothing, or does not compile, and resets the worktree either way.
    - It returns a `Proposal`, returns None when it has nothing left to propose (the loop then stops), or raises
      `InvalidProposal` when an attempt failed (recorded `invalid`; the loop goes on).
    - It raises a `UserError` (e.g. `AgentGaveUp` after `max_invalid_streak` invalid experiments in a row, counted
      from the first experiment this agent object proposed) when the run must stop; `--resume` continues it.
    - Its state must be recoverable from `context.history` (the `proposal` details of earlier experiments), so a
      resumed run continues where it stopped.
    - It may be asked again while earlier proposals are still training (`context.in_flight`): it must not propose
      the same thing twice.
    """

    name: str = "agent"
    max_invalid_streak: int | None = DEFAULT_MAX_INVALID_STREAK
    _first_number: int | None = None

    @abstractmethod
    def propose(self, context: ProposalContext) -> Proposal | None: ...

    def check(self) -> None:
        """Raise a UserError now, before any training, if the agent cannot work (e.g. a rejected API key)."""
        return None

    def give_up_if_stuck(self, context: ProposalContext) -> None:
        """Every agent's `propose` calls this first: AgentGaveUp after `max_invalid_streak` invalid in a row."""
        if self._first_number is None:
            self._first_number = context.number
        check_invalid_streak(context.history, self.max_invalid_streak, since=self._first_number)
