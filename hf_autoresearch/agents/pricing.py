"""Token usage and its cost in dollars, from a price table per model that a JSON file can override.

Prices are dollars per million tokens. The defaults are Anthropic's list prices per model family as known when
this was written (cache writes at 1.25x input for the 5-minute cache, cache reads at 0.1x input); pass
`--agent-prices FILE` when they change or for a model outside these families. FILE maps a model id or a family
name to its prices, e.g. {"claude-sonnet-5-5": {"input": 3, "output": 15, "cache_read": 0.3, "cache_write": 3.75}}.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from hf_autoresearch.errors import UserError

PRICE_KEYS = ("input", "output", "cache_read", "cache_write")
DEFAULT_PRICES: dict[str, dict[str, float]] = {
    "opus": {"input": 5.0, "output": 25.0, "cache_read": 0.5, "cache_write": 6.25},
    "sonnet": {"input": 3.0, "output": 15.0, "cache_read": 0.3, "cache_write": 3.75},
    "haiku": {"input": 1.0, "output": 5.0, "cache_read": 0.1, "cache_write": 1.25},
}


def load_prices(path: str | Path | None) -> dict[str, dict[str, float]]:
    """The default table, overridden entry by entry by the JSON file at `path`."""
    table = {name: dict(prices) for name, prices in DEFAULT_PRICES.items()}
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
        if not isinstance(prices, dict) or set(prices) != set(PRICE_KEYS):
            raise UserError(
                f"--agent-prices {file}: {model!r} must give exactly {', '.join(PRICE_KEYS)} (dollars per million "
                f"tokens), got {prices!r}"
            )
        if not all(isinstance(v, int | float) and not isinstance(v, bool) and v >= 0 for v in prices.values()):
            raise UserError(f"--agent-prices {file}: the prices of {model!r} must be numbers >= 0")
        table[model] = {k: float(v) for k, v in prices.items()}
    return table


def price_for(model: str, table: dict[str, dict[str, float]]) -> dict[str, float]:
    """The prices of `model`: its exact entry, else the first family name it contains."""
    if model in table:
        return table[model]
    for family, prices in table.items():
        if family in model:
            return prices
    raise UserError(
        f"no price known for model {model!r}; give one with --agent-prices FILE "
        f'(JSON: {{"{model}": {{"input": 3, "output": 15, "cache_read": 0.3, "cache_write": 3.75}}}})'
    )


@dataclass
class Usage:
    """Tokens summed over one proposal's API calls."""

    model: str = ""
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_input_tokens: int = 0
    cache_creation_input_tokens: int = 0
    requests: int = 0

    def add(self, usage) -> None:
        """Add the `usage` of one Messages API response."""
        self.input_tokens += usage.input_tokens or 0
        self.output_tokens += usage.output_tokens or 0
        self.cache_read_input_tokens += getattr(usage, "cache_read_input_tokens", None) or 0
        self.cache_creation_input_tokens += getattr(usage, "cache_creation_input_tokens", None) or 0
        self.requests += 1

    def cost(self, prices: dict[str, float]) -> float:
        return (
            self.input_tokens * prices["input"]
            + self.output_tokens * prices["output"]
            + self.cache_read_input_tokens * prices["cache_read"]
            + self.cache_creation_input_tokens * prices["cache_write"]
        ) / 1e6

    def as_dict(self) -> dict:
        return asdict(self)
