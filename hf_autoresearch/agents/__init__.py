"""Agents propose one edit of train.py per experiment: claude (Anthropic API), optuna (no LLM), replay (patches)."""

from hf_autoresearch.agents.base import (
    DEFAULT_MAX_INVALID_STREAK,
    Agent,
    AgentGaveUp,
    InvalidProposal,
    Proposal,
    ProposalContext,
    check_invalid_streak,
)
from hf_autoresearch.errors import UserError

__all__ = [
    "AGENTS",
    "Agent",
    "AgentGaveUp",
    "InvalidProposal",
    "Proposal",
    "ProposalContext",
    "check_invalid_streak",
    "default_agent",
    "make_agent",
]

AGENTS = ("claude", "optuna", "replay")


def default_agent(patches: str | None = None) -> str:
    """replay when patches are given, else claude when ANTHROPIC_API_KEY is set, else optuna (needs no key)."""
    import os

    if patches:
        return "replay"
    return "claude" if os.environ.get("ANTHROPIC_API_KEY") else "optuna"


def make_agent(name: str, **options) -> Agent:
    """The agent called `name`, built from the CLI options that concern it (None means the default).

    Every agent: max_invalid_streak (stop the run after that many invalid proposals in a row; 0 never stops).
    optuna: seed, sampler ("tpe" | "random"), startup_trials. claude: agent_model, max_agent_turns,
    max_agent_dollars, agent_prices, effort, thinking, log. replay: patches.
    """
    streak = options.get("max_invalid_streak")
    streak = DEFAULT_MAX_INVALID_STREAK if streak is None else streak
    if streak < 0:
        raise UserError(f"--max-invalid-streak must be 0 (never stop) or more, got {streak}")
    if name == "replay":
        from hf_autoresearch.agents.replay import ReplayAgent

        if not options.get("patches"):
            raise UserError("--agent replay needs --patches DIR (a folder of *.patch files)")
        return ReplayAgent(options["patches"], max_invalid_streak=streak)
    if name == "optuna":
        from hf_autoresearch.agents.optuna_agent import DEFAULT_STARTUP_TRIALS, OptunaAgent

        return OptunaAgent(
            seed=options.get("seed") or 0,
            sampler=options.get("sampler") or "tpe",
            startup_trials=options.get("startup_trials") or DEFAULT_STARTUP_TRIALS,
            max_invalid_streak=streak,
        )
    if name == "claude":
        from hf_autoresearch.agents.claude import DEFAULT_EFFORT, DEFAULT_MAX_TURNS, DEFAULT_MODEL, ClaudeAgent

        return ClaudeAgent(
            model=options.get("agent_model") or DEFAULT_MODEL,
            max_turns=options.get("max_agent_turns") or DEFAULT_MAX_TURNS,
            max_dollars=options.get("max_agent_dollars"),
            prices=options.get("agent_prices"),
            effort=options.get("effort") or DEFAULT_EFFORT,  # the documented defaults, also when the CLI gives none
            thinking=options.get("thinking") or "adaptive",
            max_invalid_streak=streak,
            **({"log": options["log"]} if options.get("log") else {}),
        )
    raise UserError(f"unknown agent {name!r}; available: {', '.join(AGENTS)}")
