"""The optuna agent: no LLM, no API key. It samples the `# search:` constants of train.py with TPE.

One experiment is one optuna trial: ask, rewrite the constants, train; the outcome is told on a later propose,
once the experiment's record is in the ledger. The study lives in <run>/optuna.db (SQLite), so `--resume`
continues it; the ledger stays the source of truth: a trial is tied to its experiment by the `experiment` user
attribute and told from `context.history`, and a lost study is rebuilt from the values each experiment tried.

What the study is told, so that TPE learns from every experiment the same way:
- a scored experiment: its FIRST training run's selection score (never the mean over a confirmation run or the
  baseline's repeats, so every trial carries the same kind of number);
- a crash, a timeout or an invalid edit: the worst score observed so far (a documented penalty: TPE drops FAIL
  trials from its model, so a region that crashes would otherwise be proposed again and again);
- an experiment still training (on another worker, with --workers > 1): nothing; its trial stays RUNNING and TPE's
  constant liar keeps the next asks away from it;
- an ask whose values were already tried: FAIL, never trained nor told a score; it is asked again, and as a FAIL
  it does not count as a start-up trial.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from hf_autoresearch.agents.base import DEFAULT_MAX_INVALID_STREAK, Agent, InvalidProposal, Proposal, ProposalContext
from hf_autoresearch.agents.search_space import SearchSpaceError, Space, find_spaces, format_value, rewrite
from hf_autoresearch.errors import UserError
from hf_autoresearch.ledger import ExperimentRecord

STUDY_FILE = "optuna.db"
STUDY_NAME = "hf-autoresearch"
SAMPLERS = ("tpe", "random")
SCORED = ("keep", "discard")  # statuses that carry a selection score
FAILED = ("crash", "timeout", "invalid")  # told as the worst observed score
MAX_ASKS = 50  # asks in a row that land on already-tried values before the space counts as exhausted
TPE_REPEATS = 5  # TPE asks that land on tried values before a random draw takes over (a small discrete space)
DEFAULT_STARTUP_TRIALS = 3  # random trials (the baseline included) before TPE models the results


class OptunaAgent(Agent):
    """Each proposal rewrites every declared constant to the values of a new trial; the rest of train.py is kept.

    The baseline's values are the study's first trial, told with the baseline's first run (not trained twice).
    `sampler="random"` gives plain random search over the same space (the benchmark's control).
    """

    name = "optuna"

    def __init__(
        self,
        seed: int = 0,
        sampler: str = "tpe",
        startup_trials: int = DEFAULT_STARTUP_TRIALS,
        max_invalid_streak: int | None = DEFAULT_MAX_INVALID_STREAK,
    ):
        if sampler not in SAMPLERS:
            raise UserError(f"unknown sampler {sampler!r}; use one of {', '.join(SAMPLERS)}")
        if startup_trials < 1:
            raise UserError(f"the optuna agent needs at least 1 start-up trial, got {startup_trials}")
        self.seed = seed
        self.sampler_name = sampler
        self.startup_trials = startup_trials
        self.max_invalid_streak = max_invalid_streak
        self._study = None
        self._study_path: Path | None = None

    # --- the study ---------------------------------------------------------------------------------
    def study(self, context: ProposalContext):
        import optuna

        folder = context.run_folder or context.worktree.parent
        path = (Path(folder) / STUDY_FILE).resolve()
        if self._study is not None and self._study_path == path:
            return self._study
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        direction = "maximize" if context.recipe.metric.direction == "maximize" else "minimize"
        study = optuna.create_study(
            study_name=STUDY_NAME, storage=f"sqlite:///{path}", direction=direction, load_if_exists=True
        )
        self._study, self._study_path = study, path
        return study

    def _sampler(self, trials_so_far: int, explore: bool = False):
        """The sampler for the next ask; `explore` (TPE keeps landing on tried values) draws at random instead."""
        import optuna

        # reseed from the trial count: a resumed run must not replay the random draws of the first session
        seed = self.seed * 100_003 + trials_so_far
        if self.sampler_name == "random" or explore:
            return optuna.samplers.RandomSampler(seed=seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.samplers.TPESampler(
                seed=seed, n_startup_trials=self.startup_trials, multivariate=True, constant_liar=True
            )

    # --- proposing -------------------------------------------------------------------------------
    def propose(self, context: ProposalContext) -> Proposal | None:
        from optuna.trial import TrialState

        self.give_up_if_stuck(context)
        source = context.train_py.read_text()
        try:
            spaces = find_spaces(source, context.train_py)
        except SearchSpaceError as err:
            raise UserError(f"the optuna agent cannot read the search spaces: {err}") from err
        if not spaces:
            raise UserError(
                f"{context.train_py.name} declares no search spaces; the optuna agent needs constants like "
                "`LEARNING_RATE = 5e-5  # search: log(1e-6, 1e-2)` (see docs/agents.md)"
            )
        distributions = {s.name: s.distribution() for s in spaces}
        study = self.study(context)
        self._sync(study, context, spaces, distributions)
        trial = self._asked_before(study, context.number)  # asked, then interrupted before training: same values
        if trial is None:
            tried = {_key(spaces, t.params) for t in study.get_trials(deepcopy=False) if t.state != TrialState.FAIL}
            for attempt in range(MAX_ASKS):
                study.sampler = self._sampler(len(study.trials), explore=attempt >= TPE_REPEATS)
                trial = study.ask(distributions)
                if _key(spaces, trial.params) not in tried:
                    break
                trial.set_user_attr("repeat", True)  # never trained, never scored: it must not teach TPE anything
                study.tell(trial, state=TrialState.FAIL)
            else:
                return None  # every value of a small choice/int space has been tried
            trial.set_user_attr("experiment", context.number)
        params = {s.name: trial.params[s.name] for s in spaces}
        written = {s.name: format_value(s, params[s.name]) for s in spaces}
        new_source = rewrite(source, params, context.train_py)
        context.train_py.write_text(new_source)
        details = {
            "agent": self.name,
            "sampler": self.sampler_name,
            "trial": trial.number,
            "params": {name: _plain(value) for name, value in params.items()},
            "written": written,
        }
        if new_source == source:  # the values of the current best, formatted alike: say so rather than train
            raise InvalidProposal("the sampled values do not change train.py", details)
        current = {s.name: format_value(s, s.value) for s in spaces}
        changed = [f"{name}={text}" for name, text in written.items() if current[name] != text]
        kept = [name for name, text in written.items() if current[name] == text]
        description = f"optuna trial {trial.number}: " + ", ".join(changed)
        if kept:
            description += f" (kept {', '.join(kept)})"
        return Proposal(description=description, details=details)

    def reapply(self, record: ExperimentRecord, source: str) -> str | None:
        """A trial whose best moved while it trained, as the configuration it is: its values written onto the best's
        train.py (every other line of it kept). A cherry-pick of its diff would always conflict: every trial
        rewrites every `# search:` line. None for a record that is not an optuna trial, or whose values the best's
        spaces cannot hold (then the loop cherry-picks it)."""
        params = record.proposal.get("params")
        if record.proposal.get("agent") != self.name or not isinstance(params, dict):
            return None
        try:
            spaces = {s.name: s for s in find_spaces(source)}
            if not all(name in spaces and spaces[name].contains(value) for name, value in params.items()):
                return None
            return rewrite(source, params)
        except SearchSpaceError:
            return None

    @staticmethod
    def _asked_before(study, number: int):
        """A RUNNING trial already asked for this experiment number (Ctrl-C before it was recorded), else None."""
        from optuna.trial import TrialState

        for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            if trial.user_attrs.get("experiment") == number:
                return trial
        return None

    # --- telling outcomes --------------------------------------------------------------------------
    def _sync(self, study, context: ProposalContext, spaces: list[Space], distributions: dict) -> None:
        """Tell the study every outcome the ledger holds and it lacks; add what it never saw (a lost study file).

        A trial belongs to an experiment through its `experiment` user attribute and the values it tried; a
        RUNNING trial with no record yet is an experiment in flight and is left as it is.
        """
        import optuna
        from optuna.trial import TrialState

        records = sorted(context.history, key=lambda r: r.number)
        worst = _worst(records, context.recipe.metric.direction)
        by_experiment = {}
        for trial in study.get_trials(deepcopy=False):
            if "experiment" in trial.user_attrs:  # repeats carry none: they belong to no experiment
                by_experiment[trial.user_attrs["experiment"]] = trial
        for record in records:
            params = _tried_params(record, context, spaces)
            if params is None:
                continue  # another agent's experiment (or its values are outside the space): not a trial of ours
            value = first_run_score(record)
            if value is None and record.status in FAILED:
                value = worst
            attrs = {"experiment": record.number, "status": record.status}
            trial = by_experiment.get(record.number)
            if trial is not None and _key(spaces, trial.params) != _key(spaces, params):
                trial = None  # the same number with other values: not this record's trial
            if trial is None:
                try:
                    frozen = optuna.trial.create_trial(
                        params=params,
                        distributions={k: v for k, v in distributions.items() if k in params},
                        value=value,
                        state=TrialState.COMPLETE if value is not None else TrialState.FAIL,
                        user_attrs=attrs,
                    )
                except ValueError:
                    continue  # the space was edited since: the old values no longer fit it
                study.add_trial(frozen)
            elif trial.state == TrialState.RUNNING:  # told once; a finished trial is never told again
                if value is None:
                    study.tell(trial.number, state=TrialState.FAIL)
                else:
                    study.tell(trial.number, value)


def first_run_score(record: ExperimentRecord) -> float | None:
    """The selection score of an experiment's first training run: the same kind of number for every trial."""
    if record.status not in SCORED or record.selection is None:
        return None
    for trial in record.trials[:1]:
        if isinstance(trial, dict) and isinstance(trial.get("selection"), int | float):
            return float(trial["selection"])
    return float(record.selection)


def _worst(records: list[ExperimentRecord], direction: str) -> float | None:
    scores = [s for s in (first_run_score(r) for r in records) if s is not None]
    if not scores:
        return None
    return min(scores) if direction == "maximize" else max(scores)


def _tried_params(record: ExperimentRecord, context: ProposalContext, spaces: list[Space]) -> dict | None:
    """The values an experiment tried: an optuna proposal's params, or the baseline's declared values."""
    if record.proposal.get("agent") == OptunaAgent.name and isinstance(record.proposal.get("params"), dict):
        params = dict(record.proposal["params"])
    elif record.proposal.get("baseline"):
        params = _baseline_params(record, context, spaces)
    else:
        return None
    by_name = {s.name: s for s in spaces}
    if set(params) != set(by_name) or not all(by_name[k].contains(v) for k, v in params.items()):
        return None
    return params


def _baseline_params(baseline: ExperimentRecord, context: ProposalContext, spaces: list[Space]) -> dict:
    """The declared values of the baseline's train.py (its commit), else those of the current file."""
    source = None
    if baseline.commit:
        from hf_autoresearch.workspace import git

        rel = context.train_py.relative_to(context.worktree).as_posix()
        source = git(context.worktree, "show", f"{baseline.commit}:{rel}", check=False) or None
    if source is not None:
        try:
            found = {s.name: s.value for s in find_spaces(source + "\n")}
            if set(found) == {s.name for s in spaces}:
                return found
        except SearchSpaceError:
            pass
    return {s.name: s.value for s in spaces}


def _key(spaces: list[Space], params: dict) -> tuple:
    """Values as train.py would hold them: two asks that write the same file are the same trial."""
    return tuple(format_value(s, params[s.name]) if s.name in params else None for s in spaces)


def _plain(value):
    """An optuna parameter as a JSON-friendly Python value."""
    return value.item() if hasattr(value, "item") else value
