"""The claude agent: one Messages API conversation an experiment, editing train.py with the text editor tool.

The model sees the recipe (program.md, task, metric, budget, data sizes), the current best train.py and the run's
history; it edits with Anthropic's text editor tool (confined to train.py), may read earlier experiments' logs,
and ends with `finish_experiment` and a one-line description. Tokens and dollars are counted per experiment.
ANTHROPIC_API_KEY and ANTHROPIC_BASE_URL are read by the SDK, as usual.
"""

from __future__ import annotations

import json
from pathlib import Path

from hf_autoresearch.agents.base import Agent, InvalidProposal, Proposal, ProposalContext
from hf_autoresearch.agents.editor import EDITOR_TOOL, ToolError, TrainPyEditor
from hf_autoresearch.agents.pricing import Usage, load_prices, price_for
from hf_autoresearch.errors import UserError
from hf_autoresearch.ledger import experiment_id

DEFAULT_MODEL = "claude-sonnet-5-5"
DEFAULT_MAX_TURNS = 30
MAX_TOKENS = 8192  # per response; a train.py edit is far shorter
MAX_RETRIES = 8  # the SDK's own backoff (0.5 s doubling to 8 s, honouring retry-after) on 408/409/429/5xx/529
LOG_TAIL_LINES = 40  # of each recent failure, shown in the prompt
RECENT_FAILURES = 3
FINISH_TOOL = {
    "name": "finish_experiment",
    "description": "End this proposal once train.py holds your edit. The harness then commits, trains and scores it.",
    "input_schema": {
        "type": "object",
        "properties": {
            "description": {
                "type": "string",
                "description": "one line: what this experiment changes and why, e.g. 'Cosine schedule, lr 2e-4'",
            }
        },
        "required": ["description"],
    },
}
LOG_TOOL = {
    "name": "read_experiment_log",
    "description": "Read the training log (stdout and stderr of train.py) of an earlier experiment; read-only.",
    "input_schema": {
        "type": "object",
        "properties": {
            "experiment": {"type": "integer", "description": "the experiment's number, e.g. 3 for exp-0003"},
            "tail_lines": {"type": "integer", "description": "how many of the last lines to return (default 200)"},
        },
        "required": ["experiment"],
    },
}
NUDGE = (
    "Continue: edit train.py with str_replace_based_edit_tool if you have not yet, then call finish_experiment "
    "with a one-line description. Only tool calls move the experiment forward."
)


class AgentError(UserError):
    """The agent cannot go on (a rejected key, an unknown model, an API that keeps failing); the run stops."""


class ClaudeAgent(Agent):
    name = "claude"

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        max_turns: int = DEFAULT_MAX_TURNS,
        max_dollars: float | None = None,
        prices: str | Path | dict | None = None,
        max_retries: int = MAX_RETRIES,
        base_url: str | None = None,
        log=print,
    ):
        import anthropic

        if max_turns < 1:
            raise UserError(f"--max-agent-turns must be at least 1, got {max_turns}")
        self.model = model
        self.max_turns = max_turns
        self.max_dollars = max_dollars
        self.prices = price_for(model, prices if isinstance(prices, dict) else load_prices(prices))
        self.log = log
        self.client = anthropic.Anthropic(max_retries=max_retries, base_url=base_url)

    # --- before any training -----------------------------------------------------------------------
    def check(self) -> None:
        """Fail now on a missing or rejected key, an unknown model or an unreachable API."""
        import anthropic

        client = self.client
        if client.api_key is None and client.auth_token is None and client.credentials is None:
            raise AgentError(
                "--agent claude needs an Anthropic API key: set ANTHROPIC_API_KEY (or use --agent optuna, which "
                "needs none)"
            )
        try:
            client.models.retrieve(self.model)
        except (anthropic.AuthenticationError, anthropic.PermissionDeniedError) as err:
            raise AgentError(
                f"the Anthropic API at {client.base_url} rejected the credentials ({err.status_code}: "
                f"{_message(err)}); check ANTHROPIC_API_KEY"
            ) from err
        except anthropic.NotFoundError as err:
            raise AgentError(f"the Anthropic API knows no model {self.model!r}; pick another --agent-model") from err
        except anthropic.APIError as err:
            raise AgentError(f"cannot reach the Anthropic API at {client.base_url}: {_message(err)}") from err

    # --- one proposal ------------------------------------------------------------------------------
    def propose(self, context: ProposalContext) -> Proposal | None:
        spent = sum(r.agent_cost for r in context.history)
        if self.max_dollars is not None and spent >= self.max_dollars:
            self.log(f"the claude agent has spent ${spent:.2f} of --max-agent-dollars {self.max_dollars:g}; stopping")
            return None
        editor = TrainPyEditor(context.train_py, context.worktree)
        usage = Usage(model=self.model)
        details: dict = {"agent": self.name, "model": self.model}
        system = [
            {"type": "text", "text": system_prompt(context, self.max_turns), "cache_control": {"type": "ephemeral"}}
        ]
        messages: list[dict] = [{"role": "user", "content": task_prompt(context)}]
        notes: list[str] = []

        def invalid(reason: str) -> InvalidProposal:
            details.update(turns=len([m for m in messages if m["role"] == "assistant"]), notes=_join(notes))
            return InvalidProposal(reason, details, usage.as_dict(), usage.cost(self.prices))

        for turn in range(1, self.max_turns + 1):
            if self.max_dollars is not None and spent + usage.cost(self.prices) >= self.max_dollars:
                raise invalid(f"--max-agent-dollars {self.max_dollars:g} reached during the proposal")
            response = self._create(system, messages, invalid)
            usage.add(response.usage)
            if response.content:  # an empty assistant turn would be rejected by the API
                messages.append({"role": "assistant", "content": [block.to_dict() for block in response.content]})
            notes += [block.text for block in response.content if block.type == "text" and block.text.strip()]
            results: list[dict] = []
            for block in response.content:
                if block.type != "tool_use":
                    continue
                try:
                    text, description = self._tool(block.name, block.input, editor, context)
                except ToolError as err:
                    self.log(f"  claude: {block.name} {_brief(block.input)} -> refused: {err}")
                    results.append(
                        {"type": "tool_result", "tool_use_id": block.id, "content": str(err), "is_error": True}
                    )
                    continue
                self.log(f"  claude: {block.name} {_brief(block.input)}")
                if description is not None:
                    details.update(turns=turn, notes=_join(notes))
                    return Proposal(description, details, usage.as_dict(), usage.cost(self.prices))
                results.append({"type": "tool_result", "tool_use_id": block.id, "content": text})
            if response.stop_reason == "refusal":
                raise invalid("the model declined to propose an edit (stop_reason refusal)")
            messages.append({"role": "user", "content": results or [{"type": "text", "text": NUDGE}]})
        raise invalid(f"the model did not call finish_experiment within --max-agent-turns {self.max_turns}")

    def _create(self, system: list[dict], messages: list[dict], invalid):
        import anthropic

        try:
            return self.client.messages.create(
                model=self.model,
                max_tokens=MAX_TOKENS,
                system=system,
                tools=[EDITOR_TOOL, FINISH_TOOL, LOG_TOOL],
                messages=messages,
                cache_control={"type": "ephemeral"},  # also cache the growing conversation between turns
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

    def _tool(self, name: str, args: dict, editor: TrainPyEditor, context: ProposalContext):
        """(result text, description or None); a ToolError becomes an `is_error` result."""
        if name == EDITOR_TOOL["name"]:
            return editor.run(args), None
        if name == LOG_TOOL["name"]:
            return read_log(context, args), None
        if name == FINISH_TOOL["name"]:
            return "", editor.finish(args.get("description"))
        raise ToolError(
            f"unknown tool {name!r}; use str_replace_based_edit_tool, read_experiment_log, finish_experiment"
        )


# --- prompts -------------------------------------------------------------------------------------------
def system_prompt(context: ProposalContext, max_turns: int) -> str:
    """The stable part (cached): the rules, the recipe summary and program.md."""
    recipe = context.recipe
    run = _run_config(context)
    budget = context.budget or run.get("budget") or recipe.budget.seconds
    grace = run.get("grace", recipe.budget.grace_seconds)
    sizes = _split_sizes(context)
    metric = recipe.metric
    min_delta = run.get("min_delta", metric.min_delta)
    program = (recipe.path / "program.md").read_text() if (recipe.path / "program.md").is_file() else ""
    return f"""You are an ML research engineer in an autonomous keep/discard loop (hf-autoresearch). You improve one
training script, `train.py`, one experiment at a time. In this experiment you make ONE focused edit of train.py
and then call finish_experiment with a one-line description. The harness then commits the edit, runs train.py
under a fixed wall-clock budget, scores the saved model with a frozen evaluation on a selection split you never
see, and keeps the commit only if its score beats the best so far; otherwise the edit is discarded (git reset).

Rules:
- Edit only train.py (path `train.py`) with str_replace_based_edit_tool: view, str_replace and insert. Any other
  path, and `create`, is refused.
- No new dependencies: only the packages train.py already uses (torch, transformers, datasets, accelerate, peft,
  numpy, the hf_autoresearch.experiment helper) and the Python standard library. No downloads.
- The budget: train.py gets {budget:g} s of wall-clock time counted from its start; it must stop and save by itself
  (keep experiment.deadline_callback(...) or check experiment.time_left()). Past {budget:g} + {grace:g} s it is
  killed and scores nothing.
- Keep the seed (experiment.seed_everything()), the data location (experiment.data_dir()) and the output location
  (experiment.output_dir()); the model must stay loadable with from_pretrained, tokenizer saved beside it.
- One idea per experiment, so its result can be attributed. Read the history: do not repeat a discarded idea
  unchanged; build on what was kept; fix what crashed. read_experiment_log shows an earlier experiment's log.
- You have at most {max_turns} tool turns. When train.py holds your edit, call finish_experiment.

The recipe:
- name: {recipe.name} ({recipe.task}): {recipe.description}
- model: {run.get("model", recipe.model.name)}
- metric: {metric.name} on the selection split, {metric.direction}; a keep beats the best by more than {min_delta:g}
- budget: {budget:g} s of training per experiment
- data: {sizes}

program.md, the recipe's instructions:

{program}"""


def task_prompt(context: ProposalContext) -> str:
    """The part that changes every experiment: the history and the current best train.py."""
    best = context.best
    metric = context.recipe.metric.name
    rows = ["| experiment | status | selection | vs best | description |", "|---|---|---|---|---|"]
    for r in context.history:
        score = "" if r.selection is None else f"{r.selection:.4f}"
        delta = "" if r.selection is None or best.selection is None else f"{r.selection - best.selection:+.4f}"
        why = f" ({r.reason.splitlines()[0][:160]})" if r.reason else ""
        rows.append(f"| {r.experiment} | {r.status} | {score} | {delta} | {' '.join(r.description.split())}{why} |")
    failures = [r for r in context.history if r.status in ("crash", "timeout")][-RECENT_FAILURES:]
    tails = "".join(
        f"\n{r.experiment} ({r.status}), last lines of its log:\n```\n{_tail(r.log_tail, LOG_TAIL_LINES)}\n```\n"
        for r in failures
    )
    score = f"selection {metric} {best.selection:.4f}"
    return f"""This is {experiment_id(context.number)}. The best so far: {best.experiment}, {score}.

History (every experiment so far, baseline first; "vs best" is the difference to the current best):

{chr(10).join(rows)}
{tails}
The current best train.py (the file you edit, path `train.py`):

```python
{context.train_py.read_text()}```

Make one focused edit, then call finish_experiment."""


def read_log(context: ProposalContext, args: dict) -> str:
    number = args.get("experiment")
    if isinstance(number, str) and number.removeprefix("exp-").isdigit():
        number = int(number.removeprefix("exp-"))
    if not isinstance(number, int) or isinstance(number, bool) or not 0 <= number < context.number:
        raise ToolError(f"experiment must be the number of an earlier experiment, 0 to {context.number - 1}")
    lines = args.get("tail_lines", 200)
    if not isinstance(lines, int) or lines < 1:
        raise ToolError("tail_lines must be a positive integer")
    folder = Path(context.run_folder) if context.run_folder else None
    path = folder / "logs" / f"{experiment_id(number)}.log" if folder else None
    if path is None or not path.is_file():
        record = next((r for r in context.history if r.number == number), None)
        why = f" (it was {record.status}: {record.reason})" if record and record.reason else ""
        raise ToolError(f"{experiment_id(number)} has no training log{why}")
    text = path.read_text(errors="replace").splitlines()
    shown = text[-min(lines, 1000) :]
    return f"{path.name}: last {len(shown)} of {len(text)} lines\n" + "\n".join(shown)


# --- helpers -------------------------------------------------------------------------------------------
def _run_config(context: ProposalContext) -> dict:
    try:
        return json.loads((Path(context.run_folder) / "run.json").read_text()) if context.run_folder else {}
    except (OSError, json.JSONDecodeError):
        return {}


def _split_sizes(context: ProposalContext) -> str:
    if not context.run_folder:
        return "see program.md"
    splits = Path(context.run_folder) / "splits"

    def rows(path: Path) -> int:
        return sum(1 for line in path.open() if line.strip()) if path.is_file() else 0

    labels = splits / "train" / "labels.json"
    n_labels = len(json.loads(labels.read_text())) if labels.is_file() else 0
    return (
        f"{rows(splits / 'train' / 'train.jsonl')} training rows"
        + (f", {n_labels} labels" if n_labels else "")
        + f"; selection {rows(splits / 'selection.jsonl')} rows, holdout {rows(splits / 'holdout.jsonl')} rows"
        " (neither is visible to train.py)"
    )


def _tail(text: str, lines: int) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


def _join(notes: list[str]) -> str:
    return "\n\n".join(notes)[-4000:]


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
