"""Agents propose one edit of train.py per experiment: claude (Anthropic API), optuna (no LLM), replay (patches)."""

from hf_autoresearch.agents.base import Agent, InvalidProposal, Proposal, ProposalContext
from hf_autoresearch.errors import UserError

__all__ = ["AGENTS", "Agent", "InvalidProposal", "Proposal", "ProposalContext", "default_agent", "make_agent"]

AGENTS = ("claude", "optuna", "replay")


def default_agent(patches: str | None = None) -> str:
    """replay when patches are given, else claude when ANTHROPIC_API_KEY is set, else optuna (needs no key)."""
    import os

    if patches:
        return "replay"
    return "claude" if os.environ.get("ANTHROPIC_API_KEY") else "optuna"


def make_agent(name: str, **options) -> Agent:
    """The agent called `name`, built from the CLI options that concern it."""
    if name == "replay":
        from hf_autoresearch.agents.replay import ReplayAgent

        if not options.get("patches"):
            raise UserError("--agent replay needs --patches DIR (a folder of *.patch files)")
        return ReplayAgent(options["patches"])
    if name == "optuna":
        from hf_autoresearch.agents.optuna_agent import OptunaAgent

        return OptunaAgent(seed=options.get("seed") or 0, sampler=options.get("sampler") or "tpe")
    if name == "claude":
        from hf_autoresearch.agents.claude import DEFAULT_MAX_TURNS, DEFAULT_MODEL, ClaudeAgent

        return ClaudeAgent(
            model=options.get("agent_model") or DEFAULT_MODEL,
            max_turns=options.get("max_agent_turns") or DEFAULT_MAX_TURNS,
            max_dollars=options.get("max_agent_dollars"),
            prices=options.get("agent_prices"),
            **({"log": options["log"]} if options.get("log") else {}),
        )
    raise UserError(f"unknown agent {name!r}; available: {', '.join(AGENTS)}")
