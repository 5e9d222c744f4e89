"""What a run folder says about itself, read for model cards and reports.

The noise floor, the larger-baseline comparison and the agent's cost are written by other parts of the harness,
some of them optional; every reader here returns None when its part is absent, so cards and reports work on any
ledger, old or new.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from hf_autoresearch.ledger import ExperimentRecord, Ledger
from hf_autoresearch.workspace import git

LARGER_BASELINE_FILES = ("larger-baseline.json", "larger_baseline.json", "baseline.json")
NOISE_FILES = ("noise.json", "noise-floor.json", "noise_floor.json")


@dataclass
class RunInfo:
    folder: Path
    config: dict  # run.json
    records: list[ExperimentRecord]
    metric: str
    direction: str

    @classmethod
    def load(cls, folder: Path) -> RunInfo:
        from hf_autoresearch.errors import UserError

        folder = Path(folder)
        if not (folder / "run.json").is_file():
            raise UserError(f"{folder} holds no run.json; `hf-autoresearch status` lists the runs")
        config = json.loads((folder / "run.json").read_text())
        metric, direction = _metric(folder, config)
        return cls(folder, config, Ledger(folder).records(), metric, direction)

    @property
    def tag(self) -> str:
        return self.config["tag"]

    @property
    def recipe_name(self) -> str:
        return Path(self.config.get("recipe_rel") or self.config.get("recipe", "recipe")).name

    @property
    def kept(self) -> list[ExperimentRecord]:
        return [r for r in self.records if r.status == "keep"]

    @property
    def baseline(self) -> ExperimentRecord | None:
        return next((r for r in self.records if r.number == 0 and r.status == "keep"), None)

    @property
    def best(self) -> ExperimentRecord | None:
        return self.kept[-1] if self.kept else None

    def lineage(self, upto: int) -> list[ExperimentRecord]:
        """The keeps that led to experiment `upto`, baseline first."""
        return [r for r in self.kept if r.number <= upto]

    def train_py_at(self, commit: str) -> str:
        return git(Path(self.config["repo"]), "show", f"{commit}:{self.train_py_rel}")

    @property
    def train_py_rel(self) -> str:
        return f"{self.config['recipe_rel']}/train.py"

    def diff_from_baseline(self, record: ExperimentRecord) -> str:
        base = self.baseline
        if base is None or not record.commit or record.commit == base.commit:
            return ""
        return git(Path(self.config["repo"]), "diff", base.commit, record.commit, "--", self.train_py_rel, check=False)

    def is_better(self, a: float, b: float) -> bool:
        return a > b if self.direction == "maximize" else a < b


def _metric(folder: Path, config: dict) -> tuple[str, str]:
    """The decisive metric and its direction, from the recipe the run used (its worktree, else the user's copy)."""
    from hf_autoresearch.recipe import RecipeError, load_recipe

    for where in (folder / "worktree" / config.get("recipe_rel", "."), Path(config.get("recipe", ""))):
        try:
            recipe = load_recipe(where)
            return recipe.metric.name, recipe.metric.direction
        except (RecipeError, OSError):
            pass
    return config.get("metric", "score"), config.get("direction", "maximize")


def _number(value) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _read_json(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def noise_floor(info: RunInfo) -> dict | None:
    """{"mean", "std", "threshold", "repeats"} of the selection score of the baseline trained again, if measured."""
    found: dict = {}
    for name in NOISE_FILES:
        data = _read_json(info.folder / name)
        if data:
            found = data
            break
    if not found:
        for record in reversed(info.records):
            noise = record.decision.get("noise")
            if isinstance(noise, dict):
                found = {**record.decision, **noise}
                break
            if _number(noise) is not None:
                found = {**record.decision, "std": noise}
                break
            if any(_number(record.decision.get(k)) is not None for k in ("sigma", "std", "noise_std")):
                found = dict(record.decision)
                break
    if info.config.get("noise") and not found:
        found = info.config["noise"] if isinstance(info.config["noise"], dict) else {}
    std = next((_number(found.get(k)) for k in ("std", "sigma", "noise_std", "stdev") if k in found), None)
    if std is None:
        return None
    repeats = found.get("repeats") or found.get("n") or (len(found["scores"]) if "scores" in found else None)
    if std == 0 and (repeats or 0) <= 1:
        return None  # a single baseline run measures no spread
    base = info.baseline
    mean = _number(found.get("mean")) or (base.selection if base else None)
    z = _number(found.get("z")) or _number(info.config.get("noise_z"))
    threshold = _number(found.get("threshold"))
    if threshold is None and z is not None:
        threshold = max(float(info.config.get("min_delta") or 0.0), z * std)
    return {"mean": mean, "std": std, "threshold": threshold, "repeats": repeats, "z": z}


def larger_baseline(info: RunInfo) -> dict | None:
    """{"model", "selection", "holdout", "params_M", "train_seconds"} of the larger model run beside this run."""
    data = None
    if isinstance(info.config.get("larger_baseline"), dict):
        data = info.config["larger_baseline"]
    for name in LARGER_BASELINE_FILES:
        data = data or _read_json(info.folder / name)
    if not data or data.get("status", "ok") != "ok":
        return None
    scores = data.get("scores") if isinstance(data.get("scores"), dict) else {}

    def score(split: str) -> float | None:
        value = data.get(split)
        if isinstance(value, dict):
            value = value.get(info.metric)
        if value is None and isinstance(scores.get(split), dict):
            value = scores[split].get(info.metric)
        return _number(value)

    result = {
        "model": str(data.get("model") or data.get("name") or "larger baseline"),
        "selection": score("selection"),
        "holdout": score("holdout"),
        "params_M": _number(data.get("params_M") or data.get("num_params_M")),
        "train_seconds": _number(data.get("train_seconds")),
    }
    return result if result["selection"] is not None or result["holdout"] is not None else None


COST_KEYS = ("agent_cost_usd", "cost_usd", "agent_cost", "dollars", "cost")


def agent_cost(record: ExperimentRecord) -> float | None:
    """Dollars the agent spent on this experiment, wherever the agent recorded it."""
    places = [vars(record), record.proposal, record.proposal.get("usage"), getattr(record, "usage", None)]
    places.append(getattr(record, "agent", None))
    for place in places:
        if not isinstance(place, dict):
            continue
        for key in COST_KEYS:
            value = place.get(key)
            if isinstance(value, dict):
                value = value.get("usd") or value.get("dollars")
            if _number(value) is not None:
                return float(value)
    return None


def total_agent_cost(records: list[ExperimentRecord]) -> float | None:
    """The run's agent spend, or None when no agent recorded any (a replay or optuna run records zeros)."""
    costs = [c for c in (agent_cost(r) for r in records) if c is not None]
    used = any(getattr(r, "agent_usage", None) or r.proposal.get("usage") for r in records)
    return sum(costs) if costs and (used or any(costs)) else None


def short(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"
