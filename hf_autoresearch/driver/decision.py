"""The keep/discard rule: beat the best by more than the noise.

The noise floor is the spread of the selection score when the baseline is trained again with other seeds. A
candidate is kept only if its gain over the best is larger than max(min_delta, z * sigma); a would-be keep is
trained once more with a fresh seed and kept only if the mean of both runs still clears the threshold.
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass


@dataclass
class NoiseFloor:
    scores: list[float]  # selection score of each baseline run
    seeds: list[int]

    @property
    def mean(self) -> float:
        return statistics.fmean(self.scores)

    @property
    def std(self) -> float:
        """Sample standard deviation; 0 with a single run (then only min_delta guards the decision)."""
        return statistics.stdev(self.scores) if len(self.scores) > 1 else 0.0

    def to_dict(self) -> dict:
        return {**asdict(self), "mean": self.mean, "std": self.std}

    @classmethod
    def from_dict(cls, data: dict) -> NoiseFloor:
        return cls(scores=list(data["scores"]), seeds=list(data["seeds"]))


@dataclass
class DecisionRule:
    direction: str  # maximize or minimize
    min_delta: float
    z: float
    noise: NoiseFloor

    @property
    def threshold(self) -> float:
        return max(self.min_delta, self.z * self.noise.std)

    def gain(self, score: float, best: float) -> float:
        """How much better `score` is than `best`, positive when it is better whatever the direction."""
        return score - best if self.direction == "maximize" else best - score

    def decide(self, score: float, best: float, best_experiment: int, stage: str) -> tuple[bool, dict]:
        """(clears the threshold?, the numbers of the decision, for the ledger)."""
        gain = self.gain(score, best)
        clears = gain > self.threshold
        return clears, {
            "rule": "gain > max(min_delta, z * noise_std)",
            "stage": stage,
            "score": score,
            "best": best,
            "best_experiment": best_experiment,
            "gain": gain,
            "threshold": self.threshold,
            "min_delta": self.min_delta,
            "z": self.z,
            "noise_std": self.noise.std,
            "direction": self.direction,
        }


def rule_for(run, records) -> DecisionRule:
    """The run's rule: its options and the noise floor its baseline measured."""
    baseline = next(r for r in records if r.decision.get("rule") == "baseline")
    return DecisionRule(
        direction=run.recipe.metric.direction,
        min_delta=run.config.min_delta,
        z=run.config.noise_z,
        noise=NoiseFloor.from_dict(baseline.decision["noise"]),
    )
