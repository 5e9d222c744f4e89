"""How one experiment is judged: which trials it trains, the keep decision, and the holdout of a keep.

The baseline trains K times with harness-chosen seeds (its mean is the score to beat, its spread the noise floor).
A candidate trains once on the best it was proposed on (its parent) and must beat that parent's score by more than
the threshold; if not, it is discarded. Then it is judged against the best *of the moment*, which other experiments
may have moved meanwhile:
- the best is still its parent: it trains once more with a fresh seed (the confirmation) and is kept only if the
  mean of both runs still clears the threshold;
- the best has moved: its change is re-applied onto the current best (a 3-way cherry-pick; a change that no longer
  applies is discarded, "conflicts with exp-NNNN") and that commit is trained; it is kept only if that run clears the
  threshold against the current best. If the best moves again meanwhile, this repeats (at most MAX_REAPPLY times).
Only a keep is scored on the holdout, for the record.

Each judgement is a generator that the loop drives (loop.py, inflight.py): it yields what it needs and gets the
answer back, so several experiments can be judged at once while each one reads top to bottom here:

    results = yield [Train(spec), ...]     trainings (each with its selection score), all at once
    result = yield Train(spec)             one training
    results = yield [Holdout(result), ...] holdout scores of a keep
    best = yield BEST                      the current best; while a keep is being recorded, the answer waits
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Generator
from dataclasses import dataclass, field

from hf_autoresearch.driver.decision import DecisionRule, NoiseFloor
from hf_autoresearch.executors.trial import TrialResult, TrialSpec
from hf_autoresearch.ledger import ExperimentRecord

CONFIRM_SEED_OFFSET = 1000  # run i > 0 of experiment n trains with seed + 1000 * i + n
MAX_REAPPLY = 3  # re-applies onto a moving best before a candidate is given up


@dataclass
class Train:
    spec: TrialSpec


@dataclass
class Holdout:
    result: TrialResult


class CurrentBest:
    """Ask the loop for the best experiment now."""


BEST = CurrentBest()


@dataclass
class Outcome:
    record: ExperimentRecord
    kept: TrialResult | None = None  # the run whose model is kept (a keep), else None
    runs: list[TrialResult] = field(default_factory=list)  # every run, so the loop can free their models


Judgement = Generator[object, object, Outcome]
# (record, best) -> (commit, train.py text) re-applied onto the best, or why that failed
Reapply = Callable[[ExperimentRecord, ExperimentRecord], "tuple[str, str] | str"]


def judge_baseline(run, record: ExperimentRecord, train_py: str, log) -> Judgement:
    config = run.config
    seeds = [config.seed + i for i in range(config.baseline_repeats)]
    log(f"{record.experiment}: training the baseline {len(seeds)}x (seeds {', '.join(map(str, seeds))})")
    specs = [_spec(run, record, i, seed, train_py, record.commit, "baseline") for i, seed in enumerate(seeds)]
    runs = yield [Train(spec) for spec in specs]
    if not _note_runs(record, runs, runs):
        return Outcome(record, None, runs)
    noise = NoiseFloor([r.selection for r in runs], seeds)
    log(f"  noise floor over {len(seeds)} baseline runs: mean {noise.mean:.4f}, std {noise.std:.4f}")
    record.status = "keep"
    record.decision = {"rule": "baseline", "noise": noise.to_dict(), "direction": run.recipe.metric.direction}
    return (yield from _keep(record, runs, runs, log))


def judge_candidate(
    run,
    record: ExperimentRecord,
    train_py: str,
    parent: ExperimentRecord,
    rule: DecisionRule,
    reapply: Reapply,
    log,
) -> Judgement:
    """`record.commit` is the proposal, made on `parent` (the best then, `record.parent`); a re-apply changes both."""
    config = run.config
    commit, base = record.commit, record.parent
    proposed = {"commit": commit, "parent": base}
    log(f"{record.experiment}: training {record.description!r} for up to {config.budget:.0f} s")
    first = yield Train(_spec(run, record, 0, config.seed, train_py, commit, "first run"))
    runs, scored = [first], [first]  # scored: the runs of `commit`, the candidate as it would be kept
    if not _note_runs(record, runs, scored):
        return Outcome(record, None, runs)
    if not _decide(record, rule, scored, parent, "first run"):  # like with like: did it help where it was tried?
        return _discard(record, runs)
    best = yield BEST
    confirmed = not config.confirm
    for _ in range(MAX_REAPPLY + 1):
        if best.commit != base:  # kept meanwhile: what counts is this change on top of the current best
            reapplied = reapply(record, best)
            if isinstance(reapplied, str):
                record.reason = reapplied
                return _discard(record, runs)
            commit, train_py = reapplied
            base, scored, confirmed = best.commit, [], False
            record.commit, record.parent = commit, base  # what is trained now, and kept if it clears
            record.decision["proposed"] = proposed  # the agent's commit and the best it was made on
            kind = "re-applied"
            log(f"{record.experiment}: the best is now {best.experiment}; re-applied onto it as {commit[:8]}")
        elif confirmed:
            return (yield from _keep(record, runs, scored, log))
        else:
            kind = "confirmation"
            log(
                f"  {record.experiment}: gain {record.decision['gain']:+.4f} > {record.decision['threshold']:.4f}: "
                "confirming with a fresh seed"
            )
        seed = config.seed + CONFIRM_SEED_OFFSET * len(runs) + record.number
        trial = yield Train(_spec(run, record, len(runs), seed, train_py, commit, kind))
        runs.append(trial)
        scored.append(trial)
        if not _note_runs(record, runs, scored):  # a confirmation that fails confirms nothing
            record.reason = f"{kind} run {record.status}: {record.reason}"
            return _discard(record, runs)
        best = yield BEST
        if best.commit == base:
            stage = "mean with confirmation run" if len(scored) > 1 else f"re-applied onto {best.experiment}"
            if not _decide(record, rule, scored, best, stage):
                record.reason = (
                    "did not confirm: the mean of both runs is within the noise"
                    if len(scored) > 1
                    else f"re-applied onto {best.experiment}, it does not clear the threshold"
                )
                return _discard(record, runs)
            confirmed = True
    record.reason = f"the best moved {MAX_REAPPLY} times while it was being confirmed"
    return _discard(record, runs)


def _spec(run, record, index: int, seed: int, train_py: str, commit: str, kind: str) -> TrialSpec:
    return TrialSpec(
        record.number,
        index,
        seed,
        train_py,
        run.log_path(record.number, index),
        record.description,
        commit=commit,
        kind=kind,
    )


def _decide(record: ExperimentRecord, rule: DecisionRule, scored: list[TrialResult], best, stage: str) -> bool:
    """Compare the mean of `scored` with `best`; the decision's numbers go to the record."""
    record.selection = statistics.fmean(r.selection for r in scored)
    proposed = record.decision.get("proposed")
    clears, record.decision = rule.decide(record.selection, best.selection, best.number, stage)
    if proposed is not None:
        record.decision["proposed"] = proposed
    return clears


def _discard(record: ExperimentRecord, runs: list[TrialResult]) -> Outcome:
    record.status = "discard"
    return Outcome(record, None, runs)


def _note_runs(record: ExperimentRecord, runs: list[TrialResult], scored: list[TrialResult]) -> bool:
    """Copy what the runs say into the record; False (and the record a crash or timeout) if one failed."""
    main = scored[0] if scored else runs[0]
    record.trials = [r.to_dict() for r in runs]
    record.summary, record.train_seconds, record.peak_rss_mb = main.summary, main.process_seconds, main.peak_rss_mb
    record.training = main.training
    record.timings.update(
        process=sum(r.process_seconds for r in runs),
        eval_selection=sum(r.eval_seconds for r in runs),
        train_loop=main.summary.get("training_seconds"),
    )
    failed = next((r for r in runs if r.status != "ok"), None)
    record.log_tail = (failed or main).log_tail
    if failed is None:
        _aggregate(record, scored, "selection")
        return True
    record.status, record.reason = failed.status, failed.reason
    return False


def _keep(record: ExperimentRecord, runs: list[TrialResult], scored: list[TrialResult], log) -> Judgement:
    """Score every run of the kept commit on the holdout, for the record only; the first one's model is kept."""
    log(f"  {record.experiment}: evaluating on holdout")
    record.status = "keep"
    before = sum(r.eval_seconds for r in scored)
    scored = yield [Holdout(r) for r in scored]
    record.timings["eval_holdout"] = sum(r.eval_seconds for r in scored) - before
    by_index = {r.spec.index: r for r in scored}  # a remote executor answers with new objects
    runs = [by_index.get(r.spec.index, r) for r in runs]
    record.trials = [r.to_dict() for r in runs]
    failed = next((r for r in scored if r.holdout is None), None)
    if failed is not None:  # the decision is made; a failed report must not undo it
        record.reason = f"holdout evaluation failed: {failed.reason}"
    else:
        _aggregate(record, scored, "holdout")
    return Outcome(record, scored[0], runs)


def _aggregate(record: ExperimentRecord, runs: list[TrialResult], split: str) -> None:
    """The experiment's score on `split`: the mean over its runs, metric by metric."""
    scores = [r.scores[split] for r in runs]
    record.scores[split] = {
        key: statistics.fmean(s[key] for s in scores)
        for key in scores[0]
        if all(isinstance(s.get(key), int | float) and not isinstance(s.get(key), bool) for s in scores)
    }
    setattr(record, split, statistics.fmean(getattr(r, split) for r in runs))
