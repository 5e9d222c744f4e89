"""How one experiment is judged: which trials it trains, the keep decision (decision.py), and what a keep records.

The baseline trains K times with seeds seed, seed + 1, ... (their mean is the first score to beat, their spread the
first noise measure). A candidate trains once, with a seed of its own, and its first run is screened against the
parent it was proposed on; if it does not clear the screen it is discarded. Then it is judged against the best *of
the moment*, which other experiments may have moved meanwhile:
- the best is still its parent: it trains CONFIRM_RUNS more times and is kept only if the mean of all its runs passes
  the final test against the best's bar;
- the best has moved: its change is re-applied onto the current best (the agent's own rewrite when it has one, e.g.
  an optuna trial's values written onto the best; else a 3-way cherry-pick, and a change that no longer applies is
  discarded, "conflicts with exp-NNNN"), that commit trains 1 + CONFIRM_RUNS times and must pass the final test
  against the current best. If the best moves again meanwhile, this repeats (at most MAX_REAPPLY times).
A keep is then re-measured: K more runs with fresh seeds, whose mean becomes its selection score (the next bar).
Every model of the kept commit is scored on the holdout, for the record only; the best on selection is shipped.

Each judgement is a generator that the loop drives (loop.py, inflight.py): it yields what it needs and gets the
answer back, so several experiments can be judged at once while each one reads top to bottom here:

    results = yield [Train(spec), ...]     trainings (each with its selection score), all at once
    result = yield Train(spec)             one training
    results = yield [Remeasure(spec), ...] a keep's re-measure runs (the best waits for them, like for a holdout)
    results = yield [Holdout(result), ...] holdout scores of a keep
    best = yield BEST                      the current best; while a keep is being recorded, the answer waits
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Generator
from dataclasses import dataclass, field

from hf_autoresearch.driver.decision import CONFIRM_RUNS, KeepRule, NoiseFloor, seed_for
from hf_autoresearch.executors.trial import TrialResult, TrialSpec
from hf_autoresearch.ledger import ExperimentRecord

MAX_REAPPLY = 3  # re-applies onto a moving best before a candidate is given up


@dataclass
class Train:
    spec: TrialSpec


@dataclass
class Remeasure(Train):
    """A run of a commit already decided a keep: like a holdout request, nothing is compared with the best until
    the keep is recorded."""


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
    seeds = [seed_for(config.seed, 0, i) for i in range(config.baseline_repeats)]
    log(f"{record.experiment}: training the baseline {len(seeds)}x (seeds {', '.join(map(str, seeds))})")
    specs = [_spec(run, record, i, seed, train_py, record.commit, "baseline") for i, seed in enumerate(seeds)]
    runs = yield [Train(spec) for spec in specs]
    if not _note_runs(record, runs, runs):
        return Outcome(record, None, runs)
    noise = NoiseFloor([r.selection for r in runs], seeds)
    log(f"  noise floor over {len(seeds)} baseline runs: mean {noise.mean:.4f}, std {noise.std:.4f}")
    record.status = "keep"
    record.decision = {"rule": "baseline", "noise": noise.to_dict(), "direction": run.recipe.metric.direction}
    return (yield from _holdout(record, runs, runs, log))


def judge_candidate(
    run,
    record: ExperimentRecord,
    train_py: str,
    parent: ExperimentRecord,
    rule: KeepRule,
    reapply: Reapply,
    log,
) -> Judgement:
    """`record.commit` is the proposal, made on `parent` (the best then, `record.parent`); a re-apply changes both.

    The first run is screened against the parent (like with like: did it help where it was tried?); with --no-confirm
    its test is final. Confirmation runs follow; the mean of every run of the commit that would be kept is tested
    against the best of the moment. A keep is then re-measured (_keep)."""
    config = run.config
    commit, base = record.commit, record.parent
    proposed = {"commit": commit, "parent": base}
    record.seed = seed_for(config.seed, record.number, 0)
    log(f"{record.experiment}: training {record.description!r} for up to {config.budget:.0f} s")
    first = yield Train(_spec(run, record, 0, record.seed, train_py, commit, "first run"))
    runs, scored = [first], [first]  # scored: the runs of `commit`, the candidate as it would be kept
    if not _note_runs(record, runs, scored):
        return Outcome(record, None, runs)
    decided = not config.confirm  # True once a final test has passed against the best it is on
    if not _decide(record, rule, scored, parent, "first run" if decided else "screen"):
        record.reason = "" if decided else "the first run does not clear the screen: no confirmation runs spent"
        return _discard(record, runs)
    best = yield BEST
    for _ in range(MAX_REAPPLY + 1):
        if best.commit != base:  # kept meanwhile: what counts is this change on top of the current best
            reapplied = reapply(record, best)
            if isinstance(reapplied, str):
                record.reason = reapplied
                return _discard(record, runs)
            commit, train_py = reapplied
            base, scored, decided = best.commit, [], False
            record.commit, record.parent = commit, base  # what is trained now, and kept if it clears
            record.decision["proposed"] = proposed  # the agent's commit and the best it was made on
            kind, count = "re-applied", 1 + CONFIRM_RUNS if config.confirm else 1
            log(f"{record.experiment}: the best is now {best.experiment}; re-applied onto it as {commit[:8]}")
        elif decided:
            return (yield from _keep(run, record, runs, scored, train_py, commit, log))
        else:
            kind, count = "confirmation", CONFIRM_RUNS
            log(
                f"  {record.experiment}: first run {record.decision['gain']:+.4f} > screen "
                f"{record.decision['threshold']:.4f}: {count} confirmation runs"
            )
        seeds = [seed_for(config.seed, record.number, len(runs) + i) for i in range(count)]
        specs = [_spec(run, record, len(runs) + i, seed, train_py, commit, kind) for i, seed in enumerate(seeds)]
        trials = yield [Train(spec) for spec in specs]
        runs += trials
        scored += trials
        if not _note_runs(record, runs, scored):  # a confirmation that fails confirms nothing
            record.reason = f"{kind} run {record.status}: {record.reason}"
            return _discard(record, runs)
        best = yield BEST
        if best.commit == base:
            stage = "mean with confirmation runs" if kind == "confirmation" else f"re-applied onto {best.experiment}"
            if not _decide(record, rule, scored, best, stage):
                record.reason = (
                    f"did not confirm: the mean of its {len(scored)} runs is within the noise"
                    if kind == "confirmation"
                    else f"re-applied onto {best.experiment}, it does not clear the threshold"
                )
                return _discard(record, runs)
            decided = True
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


def _decide(record: ExperimentRecord, rule: KeepRule, scored: list[TrialResult], best, stage: str) -> bool:
    """Test the mean of `scored` against `best`'s bar; the decision's numbers go to the record."""
    record.selection = statistics.fmean(r.selection for r in scored)
    proposed = record.decision.get("proposed")
    clears, record.decision = rule.decide(record.selection, len(scored), best, stage)
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


def _keep(run, record: ExperimentRecord, runs: list, scored: list, train_py: str, commit: str, log) -> Judgement:
    """Decided a keep: train the kept commit K more times with seeds that decided nothing. Their mean is the score
    the next candidates must beat (the bar, free of the winner's curse) and their spread is noise at this level."""
    config, count = run.config, run.config.baseline_repeats
    log(f"  {record.experiment}: kept; re-measuring it {count}x with fresh seeds (its score to beat, its noise)")
    seeds = [seed_for(config.seed, record.number, len(runs) + i) for i in range(count)]
    specs = [_spec(run, record, len(runs) + i, seed, train_py, commit, "re-measure") for i, seed in enumerate(seeds)]
    fresh = yield [Remeasure(spec) for spec in specs]
    runs = runs + fresh
    deciding = statistics.fmean(r.selection for r in scored)
    if not _note_runs(record, runs, scored):  # decided: a re-measure run that fails does not undo the keep
        record.reason = f"a re-measure run ended in {record.status}: {record.reason}"
    record.status = "keep"
    measured = [r for r in fresh if r.status == "ok" and r.selection is not None]
    record.decision["decision_mean"] = deciding
    if measured:
        _aggregate(record, measured, "selection")
        record.decision["selection_is"] = f"mean of {len(measured)} re-measure runs (no decision selected them)"
    else:
        record.selection = deciding
        record.decision["selection_is"] = "mean of the deciding runs (every re-measure run failed): biased upward"
        record.reason = "every re-measure run failed; the score to beat is the deciding runs' mean"
    return (yield from _holdout(record, runs, scored + measured, log))


def _holdout(record: ExperimentRecord, runs: list[TrialResult], models: list[TrialResult], log) -> Judgement:
    """Score every model of the kept commit on the holdout, for the record only. The one shipped is the best on the
    selection split: seed luck is real model quality, though not the edit's merit (the bar judges the code). The
    record's holdout is that model's own; the mean over the models is kept beside it, labelled as such."""
    log(f"  {record.experiment}: evaluating on holdout")
    record.status = "keep"
    before = sum(r.eval_seconds for r in models)
    models = yield [Holdout(r) for r in models]
    record.timings["eval_holdout"] = sum(r.eval_seconds for r in models) - before
    by_index = {r.spec.index: r for r in models}  # a remote executor answers with new objects
    runs = [by_index.get(r.spec.index, r) for r in runs]
    record.trials = [r.to_dict() for r in runs]
    sign = -1 if record.decision.get("direction") == "minimize" else 1
    shipped = max(models, key=lambda r: sign * r.selection)
    record.decision["shipped"] = {
        "run": shipped.spec.index,
        "seed": shipped.spec.seed,
        "kind": shipped.spec.kind,
        "selection": shipped.selection,
        "holdout": shipped.holdout,
        "why": f"the best on the selection split of the {len(models)} models of this commit",
    }
    failed = next((r for r in models if r.holdout is None), None)
    if failed is not None:  # the decision is made; a failed report must not undo it
        record.reason = f"holdout evaluation failed: {failed.reason}"
    else:
        record.scores["holdout"] = dict(shipped.scores.get("holdout", {}))
        record.holdout = shipped.holdout
        record.decision["holdout_mean"] = {"value": statistics.fmean(r.holdout for r in models), "models": len(models)}
    return Outcome(record, shipped, runs)


def _aggregate(record: ExperimentRecord, runs: list[TrialResult], split: str) -> None:
    """The experiment's score on `split`: the mean over its runs, metric by metric."""
    scores = [r.scores[split] for r in runs]
    record.scores[split] = {
        key: statistics.fmean(s[key] for s in scores)
        for key in scores[0]
        if all(isinstance(s.get(key), int | float) and not isinstance(s.get(key), bool) for s in scores)
    }
    setattr(record, split, statistics.fmean(getattr(r, split) for r in runs))
