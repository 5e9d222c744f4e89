"""Optional experiment tracking: `--tracker trackio` logs every experiment to a local trackio project.

One trackio run per autoresearch run (named by its tag, resumed with it), one step per experiment: the scores of
each split, the outcome, the timings, the agent's cost and the numeric knobs the agent proposed. View it with
`trackio show --project hf-autoresearch-<recipe>`.
"""

from __future__ import annotations

from hf_autoresearch.errors import UserError
from hf_autoresearch.ledger import ExperimentRecord

TRACKERS = ("trackio",)


def _numbers(prefix: str, values: dict) -> dict:
    return {
        f"{prefix}/{k}": float(v)
        for k, v in (values or {}).items()
        if isinstance(v, int | float) and not isinstance(v, bool)
    }


def experiment_metrics(record: ExperimentRecord, best: float | None) -> dict:
    metrics: dict = {"status": record.status, "kept": 1.0 if record.status == "keep" else 0.0}
    if record.selection is not None:
        metrics["selection"] = record.selection
    if record.holdout is not None:
        metrics["holdout"] = record.holdout
    if best is not None:
        metrics["best_selection"] = best
    for split, scores in record.scores.items():
        metrics.update(_numbers(split, scores))
    metrics.update(_numbers("time", {**record.timings, "train": record.train_seconds, "total": record.total_seconds}))
    metrics.update(_numbers("config", record.proposal.get("params") or record.proposal))
    if record.agent_usage:  # an agent with an API bill (replay and optuna record none)
        metrics["agent_cost_usd"] = record.agent_cost
    return metrics


class TrackioTracker:
    """A loop callback; trackio is imported when the tracker is made, so a missing install fails before the run."""

    def __init__(self, project: str | None = None):
        try:
            import trackio
        except ImportError as err:
            raise UserError(
                "--tracker trackio needs trackio: pip install 'hf-autoresearch[trackio]' (or pip install trackio)"
            ) from err
        self.trackio = trackio
        self.project = project
        self._run = None
        self._best: float | None = None

    def _start(self, run) -> None:
        from dataclasses import asdict

        self.project = self.project or f"hf-autoresearch-{run.recipe.name}"
        best = run.ledger.best()
        self._best = best.selection if best else None
        config = {**asdict(run.config), "metric": run.recipe.metric.name, "direction": run.recipe.metric.direction}
        self._run = self.trackio.init(
            project=self.project,
            name=run.config.tag,
            config=config,
            resume="allow",
            embed=False,
            auto_log_gpu=False,
            auto_log_cpu=False,
        )

    def on_record(self, run, record: ExperimentRecord) -> None:
        if self._run is None:
            self._start(run)
        if record.status == "keep" and record.selection is not None:
            self._best = record.selection
        self._run.log(experiment_metrics(record, self._best), step=record.number)

    def close(self) -> None:
        if self._run is not None:
            self._run.finish()
            self._run = None


def make_tracker(name: str | None):
    if not name:
        return None
    if name == "trackio":
        return TrackioTracker()
    raise UserError(f"unknown --tracker {name!r}; choose one of {', '.join(TRACKERS)}")
