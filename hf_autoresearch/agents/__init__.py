"""Agents propose one edit of train.py per experiment: claude (Anthropic API), optuna (no LLM), replay (patches)."""

from hf_autoresearch.agents.base import Agent, InvalidProposal, Proposal, ProposalContext
from hf_autoresearch.errors import UserError

__all__ = ["Agent", "InvalidProposal", "Proposal", "ProposalContext", "make_agent"]


def make_agent(name: str, **options) -> Agent:
    """The agent called `name`, built from the CLI options that concern it."""
    if name == "replay":
        from hf_autoresearch.agents.replay import ReplayAgent

        if not options.get("patches"):
            raise UserError("--agent replay needs --patches DIR (a folder of *.patch files)")
        return ReplayAgent(options["patches"])
    raise UserError(f"unknown agent {name!r}; available: replay")
