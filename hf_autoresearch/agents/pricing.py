"""Token usage and its cost in dollars, from a price table per exact model id that a JSON file can override.

Prices are dollars per million tokens (MTok), priced request by request. Every entry of DEFAULT_PRICES names its
`source` and the date it was `checked`; docs/agent-context.md lists them. A model id is looked up exactly (a dated
id such as `claude-opus-4-1-20250805` by its undated name); an id with no entry is an error that names
`--agent-prices`, never a guess by family: within a family the prices differ by a factor of up to 20 (Haiku 3 at
$0.25 / $1.25, Haiku 4.5 at $1 / $5). Cache writes cost more than input (1.25x for the 5-minute cache, 2x for the
1-hour cache), cache reads less. Haiku 5.5 has a price tier: a request whose prompt is over 100K tokens pays the
higher prices on every token, output included.

`--agent-prices FILE` adds or overrides entries: it maps a model id to its prices, e.g.

    {"claude-sonnet-5-5": {"input": 2, "output": 10, "cache_read": 0.1, "cache_write": 2.5, "cache_write_1h": 4},
     "claude-haiku-5-5": {"input": 0.1, "output": 0.5, "cache_read": 0.01, "cache_write": 0.125,
                          "tiers": [{"above_prompt_tokens": 100000, "input": 0.5, "output": 2.5,
                                     "cache_read": 0.05, "cache_write": 0.625}]}}

`cache_write_1h` defaults to 1.6x `cache_write` (2x input); a tier's missing prices default to the base's; an entry
may carry `source` and `checked` strings.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

from hf_autoresearch.errors import UserError

PRICE_KEYS = ("input", "output", "cache_read", "cache_write")  # required
OPTIONAL_KEYS = ("cache_write_1h", "tiers", "source", "checked")
TEXT_KEYS = ("source", "checked")
TIER_KEYS = ("above_prompt_tokens", *PRICE_KEYS, "cache_write_1h")

PRICING_PAGE = "https://platform.claude.com/docs/en/about-claude/pricing"
OLD_PRICING_PAGE = "https://docs.anthropic.com/en/docs/about-claude/pricing"
OPUS_5_PAGE = "https://platform.claude.com/docs/about-claude/models/whats-new-opus-5"
SONNET_5_5_PAGE = "https://platform.claude.com/docs/zh-CN/models/sonnet-5-5/overview"
SONNET_5_PAGE = "https://platform.claude.com/docs/zh-CN/models/sonnet-5/overview"
CHECKED = "2026-12-07"


def _entry(input_, output, cache_read, source: str, tiers: list | None = None, **extra) -> dict:
    """List prices with the usual cache multipliers (5-minute write 1.25x input, 1-hour write 2x)."""
    prices = {
        "input": input_,
        "output": output,
        "cache_read": cache_read,
        "cache_write": extra.get("cache_write", input_ * 1.25),
        "cache_write_1h": extra.get("cache_write_1h", input_ * 2),
        "source": source,
        "checked": CHECKED,
    }
    return {**prices, "tiers": tiers} if tiers else prices


_OPUS_4_5_TO_5 = (5.0, 25.0, 0.5)
_OPUS_4_0_TO_4_1 = (15.0, 75.0, 1.5)
_SONNET_3_7_TO_4_6 = (3.0, 15.0, 0.3)
DEFAULT_PRICES: dict[str, dict] = {
    # the 5.5 generation; Sonnet 5.5's cache read was $0.20 at release (its overview page) and is $0.10 since
    # 2026-10-07 (0.05x input, like Opus 5.5): see docs/agent-context.md for what could and could not be verified
    "claude-opus-5-5": _entry(4.0, 20.0, 0.2, f"{OPUS_5_PAGE} (lineup $4 / $20); {PRICING_PAGE} (cache)"),
    "claude-sonnet-5-5": _entry(
        2.0,
        10.0,
        0.1,
        f"{SONNET_5_5_PAGE} ($2 / $10, cache writes $2.50 / $4); cache read $0.10 since 2026-10-07 ({PRICING_PAGE}"
        ", as reported by price trackers; the page itself could not be read here)",
    ),
    "claude-haiku-5-5": _entry(
        0.1,
        0.5,
        0.01,
        f"{OPUS_5_PAGE} (lineup: from $0.10 / $0.50); {PRICING_PAGE} (tier above 100K prompt tokens)",
        tiers=[
            {
                "above_prompt_tokens": 100_000,
                "input": 0.5,
                "output": 2.5,
                "cache_read": 0.05,
                "cache_write": 0.625,
                "cache_write_1h": 1.0,
            }
        ],
    ),
    "claude-opus-5": _entry(*_OPUS_4_5_TO_5, OPUS_5_PAGE),
    "claude-sonnet-5": _entry(2.0, 10.0, 0.2, SONNET_5_PAGE),
    **{f"claude-opus-4-{minor}": _entry(*_OPUS_4_5_TO_5, PRICING_PAGE) for minor in (8, 7, 6, 5)},
    "claude-opus-4-1": _entry(*_OPUS_4_0_TO_4_1, PRICING_PAGE),
    "claude-opus-4": _entry(*_OPUS_4_0_TO_4_1, PRICING_PAGE),
    "claude-sonnet-4-6": _entry(*_SONNET_3_7_TO_4_6, PRICING_PAGE),
    "claude-sonnet-4-5": _entry(*_SONNET_3_7_TO_4_6, PRICING_PAGE),
    "claude-sonnet-4": _entry(*_SONNET_3_7_TO_4_6, OLD_PRICING_PAGE),
    "claude-3-7-sonnet": _entry(*_SONNET_3_7_TO_4_6, OLD_PRICING_PAGE),
    "claude-haiku-4-5": _entry(1.0, 5.0, 0.1, PRICING_PAGE),
    "claude-3-5-haiku": _entry(0.8, 4.0, 0.08, OLD_PRICING_PAGE, cache_write=1.0, cache_write_1h=1.6),
    "claude-3-haiku": _entry(0.25, 1.25, 0.03, OLD_PRICING_PAGE, cache_write=0.3, cache_write_1h=0.5),
}
ALIASES = {  # Anthropic's alias ids for the same models
    "claude-opus-4-0": "claude-opus-4",
    "claude-sonnet-4-0": "claude-sonnet-4",
    "claude-3-7-sonnet-latest": "claude-3-7-sonnet",
    "claude-3-5-haiku-latest": "claude-3-5-haiku",
}
DATED = re.compile(r"-\d{8}$")  # claude-opus-4-1-20250805: a snapshot of claude-opus-4-1

# The shortest prefix the API caches (a shorter one is billed as plain input, silently). From the prompt caching
# page (https://platform.claude.com/docs/en/build-with-claude/prompt-caching, as quoted in public threads, checked
# 2026-12-07); no figure for the 5.5 models was found, so for them the agent watches the usage instead.
MIN_CACHEABLE_TOKENS = {
    "claude-opus-5": 512,
    "claude-sonnet-5": 1024,
    "claude-opus-4-8": 1024,
    "claude-opus-4-7": 2048,
    "claude-opus-4-6": 4096,
    "claude-opus-4-5": 4096,
    "claude-sonnet-4-6": 1024,
    "claude-sonnet-4-5": 1024,
    "claude-opus-4-1": 1024,
    "claude-opus-4": 1024,
    "claude-sonnet-4": 1024,
    "claude-3-7-sonnet": 1024,
    "claude-haiku-4-5": 4096,
    "claude-3-5-haiku": 2048,
    "claude-3-haiku": 2048,
}


def model_key(model: str, table: dict) -> str | None:
    """The entry of `table` for `model`: its exact id, its alias, or (a dated snapshot) its undated id."""
    for name in (model, DATED.sub("", model)):
        for key in (name, ALIASES.get(name)):
            if key and key in table:
                return key
    return None


def min_cacheable_tokens(model: str) -> int | None:
    """The model's minimum cacheable prefix in tokens, where it is known."""
    key = model_key(model, MIN_CACHEABLE_TOKENS)
    return MIN_CACHEABLE_TOKENS[key] if key else None


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
    numbers = {k: v for k, v in prices.items() if k not in ("tiers", *TEXT_KEYS)}
    if not all(_number(v) for v in numbers.values()):
        raise UserError(f"{where}: prices must be numbers >= 0")
    if not all(isinstance(prices.get(k, ""), str) for k in TEXT_KEYS):
        raise UserError(f"{where}: source and checked must be strings")
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
    return {**base, "tiers": tiers, **{k: prices[k] for k in TEXT_KEYS if k in prices}}


def price_for(model: str, table: dict[str, dict]) -> dict:
    """The prices of `model`: its exact entry (or its alias's, or its undated id's); else a UserError."""
    key = model_key(model, table)
    if key is not None:
        return table[key]
    raise UserError(
        f"no price known for model {model!r} (prices are per exact model id, never guessed from the family); give "
        f'them with --agent-prices FILE, JSON like {{"{model}": {{"input": 3, "output": 15, "cache_read": 0.3, '
        '"cache_write": 3.75}} in dollars per million tokens'
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


def cache_line(records) -> str | None:
    """One line for `status` when prompt caching did not work (the claude agent notes it per proposal), else None."""
    noted = [r for r in records if (r.proposal or {}).get("cache_note")]
    if not noted:
        return None
    asked = sum(1 for r in records if (r.agent_usage or {}).get("requests"))
    return f"prompt caching {noted[-1].proposal['cache_note']} ({len(noted)} of {asked} proposals)"
