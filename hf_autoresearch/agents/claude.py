"""The claude agent: one Messages API conversation an experiment, editing train.py with the text editor tool.

The model sees the recipe, the keep rule and the run (see prompts.py); it edits with Anthropic's text editor tool
(confined to train.py), may read earlier experiments' logs and diffs, and ends with `finish_experiment` and a
one-line description. Tokens and dollars are counted per request (pricing.py); the model's text and thinking
summaries go to the ledger's `notes`. ANTHROPIC_API_KEY and ANTHROPIC_BASE_URL are read by the SDK, as usual.

What it says is what trains: the tool calls of one answer run in order, and `finish_experiment` is refused (an
error result the model reads) while an earlier call of the same answer failed, so a half-applied edit is never
trained under a description that claims all of it. What stops it: a response cut off at max_tokens is never
executed (it is asked again, shorter; twice in a row makes the experiment invalid), a full context window makes it
invalid, and so does a refusal (checked before any of its tool calls runs), `--max-agent-dollars` stops
the run, and so do `max_invalid_streak` invalid experiments in a row (AgentGaveUp, resumable).
"""

from __future__ import annotations

import json
import statistics
from datetime import datetime
from pathlib import Path

from hf_autoresearch.agents.base import DEFAULT_MAX_INVALID_STREAK, Agent, InvalidProposal, Proposal, ProposalContext
from hf_autoresearch.agents.editor import ToolError, TrainPyEditor
from hf_autoresearch.agents.pricing import Usage, load_prices, min_cacheable_tokens, price_for
from hf_autoresearch.agents.prompts import system_prompt, task_prompt
from hf_autoresearch.agents.tools import FINISH_TOOL, TOOLS, run_tool
from hf_autoresearch.errors import UserError

DEFAULT_MODEL = "claude-sonnet-5-5"
DEFAULT_MAX_TURNS = 30
DEFAULT_EFFORT = "medium"  # output_config.effort; a train.py edit rarely needs more, and thinking is billed
EFFORTS = ("low", "medium", "high", "xhigh", "max")
THINKING = ("adaptive", "between_tools", "disabled")  # or an int: manual thinking with that budget_tokens
MAX_TOKENS = 16_000  # per response, thinking included; the SDK asks for streaming above ~21K
MAX_TRUNCATED = 2  # responses in a row cut off at max_tokens before the experiment is invalid
MAX_RETRIES = 8  # the SDK's own backoff (0.5 s doubling to 8 s, honouring retry-after) on 408/409/429/5xx/529
CACHE_5M_SECONDS = 300  # experiments further apart than this reuse the system prompt from the 1-hour cache
NUDGE = (
    "Continue: edit train.py with str_replace_based_edit_tool if you have not yet, then call finish_experiment "
    "with a one-line description. Only tool calls move the experiment forward."
)
TRUNCATED = (
    "Your last answer was cut off at the output limit ({limit} tokens), so none of its tool calls were run and "
    "train.py is unchanged by it. Answer again, shorter: one tool call at a time, small str_replace edits."
)


class AgentError(UserError):
    """The agent cannot go on (a rejected key, an unknown model, an API that keeps failing); the run stops."""


class ClaudeAgent(Agent):
    name = "claude"
    uses_preview = True  # the loop computes the best model's predictions on training rows for it
    uses_machine = True  # ... and probes the machine a trial trains on

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        max_turns: int = DEFAULT_MAX_TURNS,
        max_dollars: float | None = None,
        prices: str | Path | dict | None = None,
        max_retries: int = MAX_RETRIES,
        base_url: str | None = None,
        effort: str | None = DEFAULT_EFFORT,
        thinking: str | int | None = "adaptive",
        max_tokens: int = MAX_TOKENS,
        max_invalid_streak: int | None = DEFAULT_MAX_INVALID_STREAK,
        log=print,
    ):
        import anthropic

        if max_turns < 1:
            raise UserError(f"--max-agent-turns must be at least 1, got {max_turns}")
        if effort is not None and effort not in EFFORTS:
            raise UserError(f"unknown effort {effort!r}; use one of {', '.join(EFFORTS)}")
        if thinking is not None and thinking not in THINKING and not (isinstance(thinking, int) and thinking >= 1024):
            raise UserError(f"thinking must be one of {', '.join(THINKING)} or a budget of at least 1024 tokens")
        if isinstance(thinking, int) and thinking >= max_tokens:
            raise UserError(f"a thinking budget ({thinking}) must be below max_tokens ({max_tokens})")
        self.model = model
        self.max_turns = max_turns
        self.max_dollars = max_dollars
        try:  # a model with no price is refused by check(), after the API said whether it knows the model at all
            self.prices, self._unpriced = (
                price_for(model, prices if isinstance(prices, dict) else load_prices(prices)),
                None,
            )
        except UserError as err:
            self.prices, self._unpriced = {}, err
        self.effort = effort
        self.thinking = thinking
        self.max_tokens = max_tokens
        self.max_invalid_streak = max_invalid_streak
        self.log = log
        self.client = anthropic.Anthropic(max_retries=max_retries, base_url=base_url)
        self._proposals = 0  # proposals that reached the API, by this object
        self._cache_noted = False  # a prompt caching problem is logged once

    # --- before any training -----------------------------------------------------------------------
    def check(self) -> None:
        """Fail now on a missing or rejected key, an unknown model or an unreachable API; learn what it accepts."""
        import anthropic

        client = self.client
        if client.api_key is None and client.auth_token is None and client.credentials is None:
            raise AgentError(
                "--agent claude needs an Anthropic API key: set ANTHROPIC_API_KEY (or use --agent optuna, which "
                "needs none)"
            )
        try:
            info = client.models.retrieve(self.model)
        except (anthropic.AuthenticationError, anthropic.PermissionDeniedError) as err:
            raise AgentError(
                f"the Anthropic API at {client.base_url} rejected the credentials ({err.status_code}: "
                f"{_message(err)}); check ANTHROPIC_API_KEY"
            ) from err
        except anthropic.NotFoundError as err:
            raise AgentError(f"the Anthropic API knows no model {self.model!r}; pick another --agent-model") from err
        except anthropic.APIError as err:
            raise AgentError(f"cannot reach the Anthropic API at {client.base_url}: {_message(err)}") from err
        if self._unpriced is not None:
            raise self._unpriced
        capabilities = getattr(info, "capabilities", None)
        if capabilities is not None:  # send only what this model takes, instead of a 400 on every request
            if self.effort and not getattr(getattr(capabilities.effort, self.effort, None), "supported", False):
                self.log(f"  {self.model} takes no effort {self.effort!r}; using its default")
                self.effort = None
            types = capabilities.thinking.types if capabilities.thinking.supported else None
            kind = "enabled" if isinstance(self.thinking, int) else self.thinking
            if kind and not (types and getattr(getattr(types, kind, None), "supported", False)):
                self.log(f"  {self.model} takes no thinking {kind!r}; using its default")
                self.thinking = None

    # --- one proposal ------------------------------------------------------------------------------
    def propose(self, context: ProposalContext) -> Proposal | None:
        if self._unpriced is not None:  # never spend what cannot be counted
            raise self._unpriced
        # what the recorded experiments cost, and the proposals other workers are training now (not recorded yet)
        spent = sum(r.agent_cost for r in context.history) + sum(e.get("agent_cost") or 0.0 for e in context.in_flight)
        if self.max_dollars is not None and spent >= self.max_dollars:
            self.log(f"the claude agent has spent ${spent:.2f} of --max-agent-dollars {self.max_dollars:g}; stopping")
            return None
        self.give_up_if_stuck(context)
        editor = TrainPyEditor(context.train_py, context.worktree)
        usage = Usage(model=self.model, prices=self.prices)
        ttl = cache_ttl(context)
        details: dict = {"agent": self.name, "model": self.model, "cache_ttl": ttl}
        cache = {"type": "ephemeral", "ttl": ttl} if ttl != "5m" else {"type": "ephemeral"}
        system = [{"type": "text", "text": system_prompt(context, self.max_turns), "cache_control": cache}]
        details["prefix_tokens"] = prefix = estimate_tokens(json.dumps(TOOLS) + system[0]["text"])
        messages: list[dict] = [{"role": "user", "content": task_prompt(context)}]
        notes: list[str] = []
        truncated = 0

        def invalid(reason: str) -> InvalidProposal:
            details.update(turns=len([m for m in messages if m["role"] == "assistant"]), notes=_join(notes))
            return InvalidProposal(reason, details, usage.as_dict(), usage.cost)

        for turn in range(1, self.max_turns + 1):
            if self.max_dollars is not None and spent + usage.cost >= self.max_dollars:
                raise invalid(f"--max-agent-dollars {self.max_dollars:g} reached during the proposal")
            response = self._create(system, messages, invalid)
            tokens = usage.add(response.usage)
            if turn == 1:
                self._check_cache(details, prefix, tokens)
            notes += _notes(response.content)
            if response.stop_reason == "model_context_window_exceeded":
                raise invalid("the conversation filled the model's context window; its last tool calls were not run")
            if response.stop_reason == "max_tokens":  # a tool call in a cut-off answer may be cut off too: never run
                truncated += 1
                self.log(f"  claude: answer cut off at max_tokens {self.max_tokens} ({truncated} in a row)")
                if truncated >= MAX_TRUNCATED:
                    raise invalid(f"{truncated} answers in a row were cut off at max_tokens {self.max_tokens}")
                messages[-1]["content"] = _as_blocks(messages[-1]["content"]) + [
                    {"type": "text", "text": TRUNCATED.format(limit=self.max_tokens)}
                ]
                continue
            truncated = 0
            if response.stop_reason == "refusal":  # before any tool runs: a declined answer edits nothing
                raise invalid(
                    "the model declined to propose an edit (stop_reason refusal); none of its tool calls was run"
                )
            if response.content:  # an empty assistant turn would be rejected by the API
                messages.append({"role": "assistant", "content": [block.to_dict() for block in response.content]})
            results: list[dict] = []
            failed: list[str] = []  # the tool calls of this answer that failed: a finish must wait for their fix
            for block in response.content:
                if block.type != "tool_use":
                    continue
                try:
                    if block.name == FINISH_TOOL["name"] and failed:
                        raise ToolError(
                            f"finish_experiment refused: {len(failed)} earlier tool call(s) of this answer failed "
                            f"({'; '.join(failed)}), so train.py may not hold what you describe. Read the errors, "
                            "fix the edit, then call finish_experiment again"
                        )
                    text, description = run_tool(block.name, block.input, editor, context)
                except ToolError as err:
                    self.log(f"  claude: {block.name} {_brief(block.input)} -> refused: {err}")
                    failed.append(f"{block.name} {_brief(block.input)}".strip())
                    results.append(
                        {"type": "tool_result", "tool_use_id": block.id, "content": str(err), "is_error": True}
                    )
                    continue
                self.log(f"  claude: {block.name} {_brief(block.input)}")
                if description is not None:
                    details.update(turns=turn, notes=_join(notes))
                    return Proposal(description, details, usage.as_dict(), usage.cost)
                results.append({"type": "tool_result", "tool_use_id": block.id, "content": text})
            messages.append({"role": "user", "content": results or [{"type": "text", "text": NUDGE}]})
        raise invalid(f"the model did not call finish_experiment within --max-agent-turns {self.max_turns}")

    def _check_cache(self, details: dict, prefix: int, tokens: dict) -> None:
        """Note (in the details, and once in the log) when the cached prefix (tools and system prompt) is not cached:
        shorter than the model's minimum cacheable length, it is billed as plain input in every proposal."""
        details["prefix_cache_read"] = tokens["cache_read_input_tokens"]
        minimum = min_cacheable_tokens(self.model)
        note = None
        if minimum is not None and prefix < minimum:
            note = (
                f"off: the cached prefix (tools and system prompt, ~{prefix} tokens) is shorter than {self.model}'s "
                f"minimum cacheable length ({minimum} tokens), so every proposal pays it at the input price"
            )
        elif self._proposals and not tokens["cache_read_input_tokens"]:  # an earlier proposal should have cached it
            note = (
                f"missed: the cached prefix (tools and system prompt, ~{prefix} tokens) was not read from the cache "
                f"at the start of this proposal; it may be shorter than {self.model}'s minimum cacheable length, or "
                "the cache expired between proposals"
            )
        self._proposals += 1
        if note is None:
            return
        details["cache_note"] = note
        if not self._cache_noted:
            self._cache_noted = True
            self.log(f"  claude: prompt caching {note}")

    def request_options(self) -> dict:
        """The thinking and effort options sent with every request (none when the model's default is wanted)."""
        options: dict = {}
        if isinstance(self.thinking, int):
            options["thinking"] = {"type": "enabled", "budget_tokens": self.thinking, "display": "summarized"}
        elif self.thinking in ("adaptive",):
            options["thinking"] = {"type": "adaptive", "display": "summarized"}  # summaries go to the notes
        elif self.thinking:
            options["thinking"] = {"type": self.thinking}
        if self.effort:
            options["output_config"] = {"effort": self.effort}
        return options

    def _create(self, system: list[dict], messages: list[dict], invalid):
        import anthropic

        try:
            return self.client.messages.create(
                model=self.model,
                max_tokens=self.max_tokens,
                system=system,
                tools=TOOLS,
                messages=messages,
                cache_control={"type": "ephemeral"},  # also cache the growing conversation between turns
                **self.request_options(),
            )
        except (anthropic.AuthenticationError, anthropic.PermissionDeniedError) as err:
            raise AgentError(f"the Anthropic API rejected the credentials: {_message(err)}") from err
        except anthropic.BadRequestError as err:  # e.g. a prompt grown too long: this experiment is lost, not the run
            raise invalid(f"the Anthropic API rejected the request: {_message(err)}") from err
        except anthropic.APIError as err:  # still failing after the SDK's retries with backoff
            raise AgentError(
                f"the Anthropic API kept failing after {self.client.max_retries} retries ({_message(err)}); nothing "
                "was recorded for this experiment: continue later with --resume"
            ) from err


def estimate_tokens(text: str) -> int:
    """A rough token count (about 4 characters a token for English and code), for notes, never for billing."""
    return len(text) // 4


def cache_ttl(context: ProposalContext) -> str:
    """The system prompt's cache TTL: 1h when proposals are more than 5 minutes apart (the 5-minute cache would
    expire between them), else 5m.

    Measured from when the latest experiments finished; before there are two gaps to measure, from the budget.
    """
    times = sorted(_time(r.finished_at) for r in context.history if r.finished_at)[-6:]
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    if len(gaps) >= 2:
        return "1h" if statistics.median(gaps) > CACHE_5M_SECONDS else "5m"
    budget = context.budget or context.recipe.budget.seconds
    return "1h" if budget >= CACHE_5M_SECONDS else "5m"


def _time(stamp: str) -> float:
    try:
        return datetime.fromisoformat(stamp).timestamp()
    except ValueError:
        return 0.0


def _notes(content) -> list[str]:
    """The model's reasoning as returned: text blocks, and thinking summaries (redacted thinking has none)."""
    found = []
    for block in content:
        if block.type == "text" and block.text.strip():
            found.append(block.text.strip())
        elif block.type == "thinking" and (block.thinking or "").strip():
            found.append("[thinking] " + block.thinking.strip())
    return found


def _as_blocks(content) -> list[dict]:
    return [{"type": "text", "text": content}] if isinstance(content, str) else list(content)


def _join(notes: list[str]) -> str:
    return "\n\n".join(notes)[-8000:]


def _brief(args: dict) -> str:
    if not isinstance(args, dict):
        return ""
    shown = {k: v for k, v in args.items() if k in ("command", "path", "experiment", "description")}
    return " ".join(f"{k}={str(v)[:80]!r}" for k, v in shown.items())


def _message(err) -> str:
    body = getattr(err, "body", None)
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return str(body["error"].get("message", err))
    return str(getattr(err, "message", err))
