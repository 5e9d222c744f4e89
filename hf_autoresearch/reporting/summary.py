"""The run summary, computed once from a run folder and rendered by `status`, `report` and the model card.

It reads only what the harness writes: run.json, ledger.jsonl, the baseline record's `decision["noise"]`
(decision.NoiseFloor.to_dict), larger-baseline.json (larger_model.score_larger_model) and the safetensors headers
of the kept model folder. The recipe in the run's worktree supplies the metric (and the task, for a run.json
written before it held one).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from hf_autoresearch.driver.decision import NoiseFloor
from hf_autoresearch.errors import UserError
from hf_autoresearch.ledger import STATUSES, ExperimentRecord, Ledger
from hf_autoresearch.options import RunConfig
from hf_autoresearch.reporting.larger_baseline import LargerBaseline, count_parameters
from hf_autoresearch.workspace import git

SPLITS = ("selection", "holdout")


def short(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def format_params(count: int | None) -> str:
    """22.7M, 1.7B, 16.2K; "?" when unknown."""
    if not count:
        return "?"
    for size, unit in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if count >= size:
            return f"{count / size:.1f}{unit}"
    return str(count)


def relative_gain(best: float | None, base: float | None, direction: str) -> float | None:
    """How much better `best` is than `base`, as a fraction of |base| (positive: `best` wins)."""
    if best is None or base is None or base == 0:
        return None
    return (best - base) / abs(base) if direction == "maximize" else (base - best) / abs(base)


def signed_gain(value: float | None, ref: float | None, direction: str) -> float | None:
    """value - ref, positive when `value` is better whatever the direction."""
    if value is None or ref is None:
        return None
    return value - ref if direction == "maximize" else ref - value


@dataclass
class RunSummary:
    """Best against baseline against larger baseline, the gains, the noise floor, counts, rate and cost of one run."""

    folder: Path
    config: RunConfig  # run.json
    records: list[ExperimentRecord]
    task: str | None  # the recipe's task name (run.json "task", else the worktree's recipe.toml)
    metric: str
    direction: str  # maximize or minimize
    baseline: ExperimentRecord | None  # the first keep: the recipe as written
    best: ExperimentRecord | None  # the last keep
    noise: NoiseFloor | None  # the baseline trained with several seeds; None when it ran once
    noise_z: float
    min_delta: float
    larger: LargerBaseline | None
    params: int | None  # parameters of the best keep's saved model
    agent_cost: float | None  # dollars; None when no agent recorded any usage (replay, optuna)
    agent_tokens: dict[str, int] = field(default_factory=dict)  # input_tokens, output_tokens, ..., requests

    @classmethod
    def load(cls, folder: Path) -> RunSummary:
        folder = Path(folder)
        if not (folder / "run.json").is_file():
            raise UserError(f"{folder} holds no run.json; `hf-autoresearch status` lists the runs")
        config = RunConfig.load(folder)
        records = Ledger(folder).records()
        facts = _recipe_facts(folder, config)
        kept = [r for r in records if r.status == "keep"]
        baseline, best = (kept[0], kept[-1]) if kept else (None, None)
        noise = None
        if baseline is not None and isinstance(baseline.decision.get("noise"), dict):
            noise = NoiseFloor.from_dict(baseline.decision["noise"])
            noise = noise if len(noise.scores) > 1 else None  # one run measures no spread
        tokens: dict[str, int] = {}
        for r in records:
            for key, value in r.agent_usage.items():
                if isinstance(value, int):
                    tokens[key] = tokens.get(key, 0) + value
        return cls(
            folder=folder,
            config=config,
            records=records,
            task=config.task or facts["task"],  # run.json of version 1 holds no task
            metric=facts["metric"],
            direction=facts["direction"],
            baseline=baseline,
            best=best,
            noise=noise,
            noise_z=float(facts["noise_z"] if config.noise_z is None else config.noise_z),
            min_delta=float(facts["min_delta"] if config.min_delta is None else config.min_delta),
            larger=LargerBaseline.read(folder),
            params=count_parameters(folder / "models" / best.experiment) if best else None,
            agent_cost=sum(r.agent_cost for r in records) if tokens else None,
            agent_tokens=tokens,
        )

    # --- the run --------------------------------------------------------------------------------------
    @property
    def tag(self) -> str:
        return self.config.tag

    @property
    def recipe_name(self) -> str:
        return Path(self.config.recipe_rel).name

    @property
    def train_py_rel(self) -> str:
        return f"{self.config.recipe_rel}/train.py"

    @property
    def kept(self) -> list[ExperimentRecord]:
        return [r for r in self.records if r.status == "keep"]

    @property
    def experiments(self) -> list[ExperimentRecord]:
        """The experiments after the baseline (the agent's), in order."""
        if self.baseline is None:
            return [r for r in self.records if r.number > 0]
        return [r for r in self.records if r.number > self.baseline.number]

    @property
    def counts(self) -> dict[str, int]:
        """Experiments after the baseline by status, every status present (0 when none)."""
        return {s: sum(r.status == s for r in self.experiments) for s in STATUSES}

    @property
    def keep_rate(self) -> float | None:
        return self.counts["keep"] / len(self.experiments) if self.experiments else None

    @property
    def hours(self) -> float:
        """Hours spent in experiments (agent, training, evaluation, bookkeeping), baseline included."""
        return sum(r.total_seconds for r in self.records) / 3600

    @property
    def experiments_per_hour(self) -> float | None:
        return len(self.records) / self.hours if self.hours > 0 else None

    @property
    def cost_per_keep(self) -> float | None:
        keeps = self.counts["keep"]
        return self.agent_cost / keeps if self.agent_cost is not None and keeps else None

    # --- the decision rule ------------------------------------------------------------------------------
    @property
    def last_test(self) -> dict | None:
        """The latest final decision of the t-test rule (docs/keep-rule.md); None in a run made before it."""
        for record in reversed(self.records):
            d = record.decision
            if d.get("rule") == "t-test" and d.get("stage") != "screen":
                return d
        return None

    @property
    def threshold(self) -> float:
        """What a keep had to gain over the best: the latest final test's needed gain, else (a run made before the
        t-test rule) the old rule's max(min_delta, z * the baseline's std)."""
        test = self.last_test
        if test is not None:
            return float(test["threshold"])
        return max(self.min_delta, self.noise_z * (self.noise.std if self.noise is not None else 0.0))

    def rule_line(self) -> str:
        """The keep rule in one line, for status, the report and the model card."""
        test = self.last_test
        if test is None:
            return f"keeps had to gain more than {self.threshold:.4f} (z {self.noise_z:g} times the baseline's std)"
        return (
            f"keeps are a one-sided t-test at a false-keep rate of {test['false_keep_rate']:g}; noise sigma "
            f"{test['sigma']:.4f} ({test['sigma_source']}, {test['df']} degrees of freedom); the latest test needed a "
            f"gain of {test['threshold']:.4f}"
        )

    # --- gains ----------------------------------------------------------------------------------------
    def gain(self, split: str, record: ExperimentRecord | None = None) -> float | None:
        """`record` (default: the best) minus the baseline on `split`, positive when better; None for the baseline."""
        record = record or self.best
        if record is None or self.baseline is None or record is self.baseline:
            return None
        return signed_gain(getattr(record, split), getattr(self.baseline, split), self.direction)

    @property
    def gap(self) -> float | None:
        """Selection gain minus holdout gain: the part of the gain that may be overfitting the selection split."""
        selection, holdout = self.gain("selection"), self.gain("holdout")
        return None if selection is None or holdout is None else selection - holdout

    @property
    def holdout_disagrees(self) -> bool:
        """The selection score improved and the holdout did not."""
        selection, holdout = self.gain("selection"), self.gain("holdout")
        return selection is not None and holdout is not None and selection > 0 >= holdout

    def vs_larger(self, split: str, record: ExperimentRecord | None = None) -> float | None:
        """How much better `record` (default: the best) is than the larger baseline, relative to it."""
        record = record or self.best
        if record is None or self.larger is None or not self.larger.ok:
            return None
        return relative_gain(getattr(record, split), getattr(self.larger, split), self.direction)

    @staticmethod
    def holdout_label(record: ExperimentRecord) -> str:
        """What a record's holdout score is: the shipped model's own, or (older records) a mean of several models."""
        if "shipped" in record.decision:
            return "shipped model"
        models = sum(1 for t in record.trials if isinstance(t, dict) and t.get("holdout") is not None)
        return f"mean of {models} models" if models > 1 else "one model"

    def params_of(self, record: ExperimentRecord) -> int | None:
        if self.best is not None and record.number == self.best.number:
            return self.params
        return count_parameters(self.folder / "models" / record.experiment)

    # --- git ------------------------------------------------------------------------------------------
    def lineage(self, upto: int) -> list[ExperimentRecord]:
        """The keeps that led to experiment `upto`, baseline first."""
        return [r for r in self.kept if r.number <= upto]

    def train_py_at(self, commit: str) -> str:
        return git(Path(self.config.repo), "show", f"{commit}:{self.train_py_rel}")

    def diff_from_baseline(self, record: ExperimentRecord) -> str:
        base = self.baseline
        if base is None or not record.commit or record.commit == base.commit:
            return ""
        return git(Path(self.config.repo), "diff", base.commit, record.commit, "--", self.train_py_rel, check=False)


def _recipe_facts(folder: Path, config: RunConfig) -> dict:
    """task, metric, direction, noise_z and min_delta of the recipe the run used: its worktree copy, else the user's.

    The metric is the recipe's; noise_z and min_delta are the recipe's when run.json leaves them to it.
    """
    from hf_autoresearch.recipe import RecipeError, load_recipe

    places = [folder / "worktree" / config.recipe_rel, Path(config.recipe)]
    for place in places:
        try:
            recipe = load_recipe(place)
        except (RecipeError, OSError):
            continue
        m = recipe.metric
        return dict(task=recipe.task, metric=m.name, direction=m.direction, noise_z=m.noise_z, min_delta=m.min_delta)
    # a recipe this version no longer validates: its raw TOML still names the task and the metric
    for place in places:
        try:
            raw = tomllib.loads((place / "recipe.toml").read_text())
        except (OSError, tomllib.TOMLDecodeError):
            continue
        m = raw.get("metric", {})
        return dict(
            task=raw.get("task"),
            metric=m.get("name", "score"),
            direction=m.get("direction", "maximize"),
            noise_z=m.get("noise_z", 2.0),
            min_delta=m.get("min_delta", 0.0),
        )
    return dict(task=None, metric="score", direction="maximize", noise_z=2.0, min_delta=0.0)
