"""How one experiment is judged: which trials it trains, the keep decision, and the holdout of a keep.

The baseline trains K times with harness-chosen seeds (its mean is the score to beat, its spread the noise floor).
A candidate trains once; if its gain clears the threshold it trains once more with a fresh seed (the confirmation)
and is kept only if the mean of both runs still clears it. Only a keep is scored on the holdout, for the record.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path

from hf_autoresearch.decision import DecisionRule, NoiseFloor
from hf_autoresearch.ledger import ExperimentRecord
from hf_autoresearch.trial import TrialResult, TrialSpec

CONFIRM_SEED_OFFSET = 1000


@dataclass
class Outcome:
    record: ExperimentRecord
    model: Path | None  # the first run's saved model when the experiment is kept


def assess_baseline(campaign, executor, record: ExperimentRecord, train_py: str, log) -> Outcome:
    config = campaign.config
    seeds = [config.seed + i for i in range(config.baseline_repeats)]
    log(f"{record.experiment}: training the baseline {len(seeds)}x (seeds {', '.join(map(str, seeds))})")
    runs = [executor.submit(_spec(campaign, record, i, seed, train_py)) for i, seed in enumerate(seeds)]
    runs = [future.result() for future in runs]
    if not _record_runs(record, runs):
        return Outcome(record, None)
    noise = NoiseFloor([r.selection for r in runs], seeds)
    log(f"  noise floor over {len(seeds)} baseline runs: mean {noise.mean:.4f}, std {noise.std:.4f}")
    record.status = "keep"
    record.decision = {"rule": "baseline", "noise": noise.to_dict(), "direction": campaign.recipe.metric.direction}
    return _keep(campaign, executor, record, runs, log)


def assess_candidate(campaign, executor, record, train_py: str, best: ExperimentRecord, rule: DecisionRule, log):
    config = campaign.config
    log(f"{record.experiment}: training {record.description!r} for up to {config.budget:.0f} s")
    first = executor.submit(_spec(campaign, record, 0, config.seed, train_py)).result()
    runs = [first]
    if not _record_runs(record, runs):
        return Outcome(record, None)
    clears, decision = rule.decide(first.selection, best.selection, best.number, "first run")
    if clears and config.confirm:
        log(f"  gain {decision['gain']:+.4f} > threshold {decision['threshold']:.4f}: confirming with a fresh seed")
        seed = config.seed + CONFIRM_SEED_OFFSET + record.number
        runs.append(executor.submit(_spec(campaign, record, 1, seed, train_py)).result())
        if not _record_runs(record, runs):  # a confirmation that fails confirms nothing
            record.reason = f"confirmation run {record.status}: {record.reason}"
            record.status, record.decision = "discard", decision
            _release(executor, runs)
            return Outcome(record, None)
        mean = statistics.fmean(r.selection for r in runs)
        clears, decision = rule.decide(mean, best.selection, best.number, "mean with confirmation run")
        if not clears:
            record.reason = "did not confirm: the mean of both runs is within the noise"
    record.decision = decision
    record.status = "keep" if clears else "discard"
    if not clears:
        _release(executor, runs)
        return Outcome(record, None)
    return _keep(campaign, executor, record, runs, log)


def _spec(campaign, record: ExperimentRecord, index: int, seed: int, train_py: str) -> TrialSpec:
    return TrialSpec(record.number, index, seed, train_py, campaign.log_path(record.number, index), record.description)


def _record_runs(record: ExperimentRecord, runs: list[TrialResult]) -> bool:
    """Copy what the runs say into the record; False (and the record a crash or timeout) if one failed."""
    first = runs[0]
    record.trials = [r.to_dict() for r in runs]
    record.summary, record.train_seconds, record.peak_rss_mb = first.summary, first.process_seconds, first.peak_rss_mb
    record.timings.update(
        process=sum(r.process_seconds for r in runs),
        eval_selection=sum(r.eval_seconds for r in runs),
        train_loop=first.summary.get("training_seconds"),
    )
    failed = next((r for r in runs if r.status != "ok"), None)
    record.log_tail = (failed or first).log_tail
    if failed is None:
        _aggregate(record, runs, "selection")
        return True
    record.status, record.reason = failed.status, failed.reason
    return False


def _keep(campaign, executor, record: ExperimentRecord, runs: list[TrialResult], log) -> Outcome:
    """Score every run of a keep on the holdout, for the record only; the first run's model is the one kept."""
    log("  evaluating on holdout")
    before = sum(r.eval_seconds for r in runs)
    runs = [future.result() for future in [executor.score_holdout(r) for r in runs]]
    record.timings["eval_holdout"] = sum(r.eval_seconds for r in runs) - before
    record.trials = [r.to_dict() for r in runs]
    failed = next((r for r in runs if r.holdout is None), None)
    if failed is not None:  # the decision is made; a failed report must not undo it
        record.reason = f"holdout evaluation failed: {failed.reason}"
    else:
        _aggregate(record, runs, "holdout")
    _release(executor, runs[1:])
    return Outcome(record, runs[0].model_dir)


def _aggregate(record: ExperimentRecord, runs: list[TrialResult], split: str) -> None:
    """The experiment's score on `split`: the mean over its runs, metric by metric."""
    scores = [r.scores[split] for r in runs]
    record.scores[split] = {
        key: statistics.fmean(s[key] for s in scores)
        for key in scores[0]
        if all(isinstance(s.get(key), int | float) and not isinstance(s.get(key), bool) for s in scores)
    }
    setattr(record, split, statistics.fmean(getattr(r, split) for r in runs))


def _release(executor, runs: list[TrialResult]) -> None:
    for run in runs:
        executor.discard(run)
