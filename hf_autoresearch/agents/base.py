"""The agent protocol: one small base class, the same for every way of proposing an edit."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path

from hf_autoresearch.ledger import ExperimentRecord
from hf_autoresearch.recipe import Recipe


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


class Agent(ABC):
    """Proposes the next experiment by editing `context.train_py` in place.

    Contract:
    - `propose` edits only `context.train_py`; the harness rejects (status `invalid`) an edit that changes any
      other file, changes nothing, or does not compile, and resets the worktree either way.
    - It returns a `Proposal`, returns None when it has nothing left to propose (the loop then stops), or raises
      `InvalidProposal` when an attempt failed (recorded `invalid`; the loop goes on).
    - Its state must be recoverable from `context.history` (the `proposal` details of earlier experiments), so a
      resumed run continues where it stopped.
    """

    name: str = "agent"

    @abstractmethod
    def propose(self, context: ProposalContext) -> Proposal | None: ...

    def check(self) -> None:
        """Raise a UserError now, before any training, if the agent cannot work (e.g. a rejected API key)."""
        return None
