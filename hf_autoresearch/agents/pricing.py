"""Token usage and its cost in dollars, from a price table per model that a JSON file can override.

Prices are dollars per million tokens, priced request by request. The defaults for the 5-5 models are Anthropic's
list prices as published in its model overviews (checked Nov 2026): Opus 5.5 $4 / $20, Sonnet 5.5 $2 / $10,
Haiku 5.5 $0.10 / $0.50 for prompts up to 100K tokens and $0.50 / $2.50 above (a whole request, output included,
pays the higher tier). Other models of a family get the family's older list prices. Cache writes cost more than
input (1.25x for the 5-minute cache, 2x for the 1-hour cache), cache reads less.

`--agent-prices FILE` overrides entries: it maps a model id (or a family name) to its prices, e.g.

    {"claude-sonnet-5-5": {"input": 2, "output": 10, "cache_read": 0.1, "cache_write": 2.5, "cache_write_1h": 4},
     "claude-haiku-5-5": {"input": 0.1, "output": 0.5, "cache_read": 0.01, "cache_write": 0.125,
                          "tiers": [{"above_prompt_tokens": 100000, "input": 0.5, "output": 2.5,
                                     "cache_read": 0.05, "cache_write": 0.625}]}}

`cache_write_1h` defaults to 1.6x `cache_write` (2x input); a tier's missing prices default to the base's.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from hf_autoresearch.errors import UserError

PRICE_KEYS = ("input", "output", "cache_read", "cache_write")  # required
OPTIONAL_KEYS = ("cache_write_1h", "tiers")
TIER_KEYS = ("above_prompt_tokens", *PRICE_KEYS, "cache_write_1h")
DEFAULT_PRICES: dict[str, dict] = {
    "claude-opus-5-5": {"input": 4.0, "output": 20.0, "cache_read": 0.2, "cache_write": 5.0, "cache_write_1h": 8.0},
    "claude-sonnet-5-5": {"input": 2.0, "output": 10.0, "cache_read": 0.2, "cache_write": 2.5, "cache_write_1h": 4.0},
    "claude-haiku-5-5": {
        "input": 0.1,
        "output": 0.5,
        "cache_read": 0.01,
        "cache_write": 0.125,
        "cache_write_1h": 0.2,
        "tiers": [
            {
                "above_prompt_tokens": 100_000,
                "input": 0.5,
                "output": 2.5,
                "cache_read": 0.05,
                "cache_write": 0.625,
                "cache_write_1h": 1.0,
            }
        ],
    },
    # older models of each family (Opus 4.5 to 5, Sonnet 4 to 4.6, Haiku 4.5)
    "opus": {"input": 5.0, "output": 25.0, "cache_read": 0.5, "cache_write": 6.25, "cache_write_1h": 10.0},
    "sonnet": {"input": 3.0, "output": 15.0, "cache_read": 0.3, "cache_write": 3.75, "cache_write_1h": 6.0},
    "haiku": {"input": 1.0, "output": 5.0, "cache_read": 0.1, "cache_write": 1.25, "cache_write_1h": 2.0},
}


def load_prices(path: str | Path | None) -> dict[str, dict]:
    """The default table, overridden entry by entry by the JSON file at `path`."""
    table = {name: _complete(prices) for name, prices in DEFAULT_PRICES.items()}
    if not path:
        return table
    file = Path(path)
    try:
        extra = json.loads(file.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise UserError(f"--agent-prices {file}: cannot read it as JSON ({err})") from err
    if not isinstance(extra, dict):
        raise UserError(f"--agent-prices {file}: must map model ids to {{{', '.join(PRICE_KEYS)}}} prices")
    for model, prices in extra.items():
        table[model] = _complete(_checked(prices, f"--agent-prices {file}: {model!r}"))
    return table


def _checked(prices, where: str) -> dict:
    if not isinstance(prices, dict) or not set(PRICE_KEYS) <= set(prices) <= {*PRICE_KEYS, *OPTIONAL_KEYS}:
        raise UserError(
            f"{where} must give {', '.join(PRICE_KEYS)} (dollars per million tokens), optionally cache_write_1h "
            f"and tiers, got {prices!r}"
        )
    numbers = {k: v for k, v in prices.items() if k != "tiers"}
    if not all(_number(v) for v in numbers.values()):
        raise UserError(f"{where}: prices must be numbers >= 0")
    tiers = prices.get("tiers", [])

    def valid(tier) -> bool:
        return isinstance(tier, dict) and "above_prompt_tokens" in tier and set(tier) <= set(TIER_KEYS)

    if not isinstance(tiers, list) or not all(valid(t) and all(map(_number, t.values())) for t in tiers):
        raise UserError(
            f"{where}: tiers must be a list of {{above_prompt_tokens: N, and any of {', '.join(TIER_KEYS[1:])}}} "
            "with numbers >= 0"
        )
    return prices


def _number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value >= 0


def _complete(prices: dict) -> dict:
    """Floats everywhere, cache_write_1h filled in, tiers sorted and filled from the base prices."""
    base = {k: float(prices[k]) for k in PRICE_KEYS}
    base["cache_write_1h"] = float(prices.get("cache_write_1h", 1.6 * base["cache_write"]))
    tiers = []
    for tier in sorted(prices.get("tiers", []), key=lambda t: t["above_prompt_tokens"]):
        filled = {**base, **{k: float(v) for k, v in tier.items() if k != "above_prompt_tokens"}}
        if "cache_write" in tier and "cache_write_1h" not in tier:
            filled["cache_write_1h"] = 1.6 * filled["cache_write"]
        tiers.append({"above_prompt_tokens": int(tier["above_prompt_tokens"]), **filled})
    return {**base, "tiers": tiers}


def price_for(model: str, table: dict[str, dict]) -> dict:
    """The prices of `model`: its exact entry, else the longest id it starts with (a dated id), else its family."""
    if model in table:
        return table[model]
    prefixes = [name for name in table if model.startswith(name)]
    if prefixes:
        return table[max(prefixes, key=len)]
    for family, prices in table.items():
        if family in model:
            return prices
    raise UserError(
        f"no price known for model {model!r}; give one with --agent-prices FILE "
        f'(JSON: {{"{model}": {{"input": 3, "output": 15, "cache_read": 0.3, "cache_write": 3.75}}}})'
    )


def prompt_tokens(tokens: dict) -> int:
    """Every token of a request's prompt: uncached input, cache reads and cache writes."""
    return tokens.get("input_tokens", 0) + tokens.get("cache_read_input_tokens", 0) + _written(tokens)


def _written(tokens: dict) -> int:
    return tokens.get("cache_creation_input_tokens", 0)


def request_cost(tokens: dict, prices: dict) -> float:
    """Dollars for ONE request's usage (input_tokens, output_tokens, cache_read_input_tokens,
    cache_creation_input_tokens, and of those cache_creation_1h_input_tokens), at the tier its prompt length picks."""
    tier = prices
    for candidate in prices.get("tiers", []):
        if prompt_tokens(tokens) > candidate["above_prompt_tokens"]:
            tier = candidate
    one_hour = tokens.get("cache_creation_1h_input_tokens", 0)
    return (
        tokens.get("input_tokens", 0) * tier["input"]
        + tokens.get("output_tokens", 0) * tier["output"]
        + tokens.get("cache_read_input_tokens", 0) * tier["cache_read"]
        + (_written(tokens) - one_hour) * tier["cache_write"]
        + one_hour * tier["cache_write_1h"]
    ) / 1e6


@dataclass
class Usage:
    """Tokens and dollars summed over one proposal's API calls, each call priced on its own."""

    model: str = ""
    input_tokens: int = 0
    output_tokens: int = 0  # thinking included: it is billed as output
    cache_read_input_tokens: int = 0
    cache_creation_input_tokens: int = 0
    cache_creation_1h_input_tokens: int = 0  # the part of cache_creation_input_tokens written to the 1-hour cache
    thinking_tokens: int = 0  # the part of output_tokens spent on reasoning
    requests: int = 0
    prices: dict = field(default_factory=dict, repr=False)
    dollars: float = field(default=0.0, repr=False)

    def add(self, usage) -> dict:
        """Add the `usage` of one Messages API response; returns that request's tokens."""
        creation = getattr(usage, "cache_creation", None)
        details = getattr(usage, "output_tokens_details", None)
        tokens = {
            "input_tokens": usage.input_tokens or 0,
            "output_tokens": usage.output_tokens or 0,
            "cache_read_input_tokens": getattr(usage, "cache_read_input_tokens", None) or 0,
            "cache_creation_input_tokens": getattr(usage, "cache_creation_input_tokens", None) or 0,
            "cache_creation_1h_input_tokens": getattr(creation, "ephemeral_1h_input_tokens", None) or 0,
            "thinking_tokens": getattr(details, "thinking_tokens", None) or 0,
        }
        for key, value in tokens.items():
            setattr(self, key, getattr(self, key) + value)
        self.requests += 1
        if self.prices:
            self.dollars += request_cost(tokens, self.prices)
        return tokens

    @property
    def cost(self) -> float:
        return self.dollars

    def as_dict(self) -> dict:
        data = asdict(self)
        del data["prices"], data["dollars"]
        return data


def usage_summary(records) -> dict:
    """The agent's API usage over a run's records: tokens, cache hit rate, dollars and dollars per experiment.

    cache_hit_rate is the share of prompt tokens read from the cache; experiments counts the proposals that
    called the API (the baseline and agents without an API count nothing).
    """
    keys = (
        "requests",
        "input_tokens",
        "output_tokens",
        "thinking_tokens",
        "cache_read_input_tokens",
        "cache_creation_input_tokens",
    )
    total = dict.fromkeys(keys, 0)
    experiments = 0
    for record in records:
        usage = record.agent_usage or {}
        if not usage.get("requests"):
            continue
        experiments += 1
        for key in keys:
            value = usage.get(key, 0)
            total[key] += value if isinstance(value, int) else 0
    dollars = sum(r.agent_cost or 0.0 for r in records)
    prompt = prompt_tokens(total)
    return {
        **total,
        "cache_hit_rate": total["cache_read_input_tokens"] / prompt if prompt else 0.0,
        "dollars": dollars,
        "experiments": experiments,
        "dollars_per_experiment": dollars / experiments if experiments else 0.0,
    }


def usage_line(records) -> str:
    """One line for `status`: dollars, dollars per experiment, cache hit rate, tokens by kind."""
    s = usage_summary(records)
    thinking = f" ({s['thinking_tokens']} thinking)" if s["thinking_tokens"] else ""
    return (
        f"agent cost ${s['dollars']:.4f} over {s['experiments']} proposals (${s['dollars_per_experiment']:.4f} an "
        f"experiment): {s['requests']} requests, cache hit rate {s['cache_hit_rate']:.0%}; {s['input_tokens']} "
        f"input, {s['output_tokens']} output{thinking}, {s['cache_read_input_tokens']} cache-read, "
        f"{s['cache_creation_input_tokens']} cache-write tokens"
    )
