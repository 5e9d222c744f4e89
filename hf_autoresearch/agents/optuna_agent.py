"""The optuna agent: no LLM, no API key. It samples the `# search:` constants of train.py with TPE.

One experiment is one optuna trial (ask, rewrite the constants, train; the outcome is told on the next propose).
The study lives in <run>/optuna.db (SQLite), so `--resume` continues it; the ledger stays the source of truth:
outcomes are told to the study from `context.history`, and a lost study is rebuilt from the ledger.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from hf_autoresearch.agents.base import Agent, InvalidProposal, Proposal, ProposalContext
from hf_autoresearch.agents.search_space import SearchSpaceError, Space, find_spaces, format_value, rewrite
from hf_autoresearch.errors import UserError
from hf_autoresearch.ledger import ExperimentRecord

STUDY_FILE = "optuna.db"
STUDY_NAME = "hf-autoresearch"
SAMPLERS = ("tpe", "random")
SCORED = ("keep", "discard")  # statuses that carry a selection score
MAX_REPEATS = 20  # asks in a row that land on the current best's values before giving up


class OptunaAgent(Agent):
    """Each proposal rewrites every declared constant to the values of a new trial; the rest of train.py is kept.

    The baseline's values are the study's first trial, told with the baseline's score (not trained twice). A
    crashed, timed-out or invalid experiment is told as a failed trial. `sampler="random"` gives plain random
    search over the same space (the benchmark's control).
    """

    name = "optuna"

    def __init__(self, seed: int = 0, sampler: str = "tpe", n_startup_trials: int = 5):
        if sampler not in SAMPLERS:
            raise UserError(f"unknown sampler {sampler!r}; use one of {', '.join(SAMPLERS)}")
        self.seed = seed
        self.sampler_name = sampler
        self.n_startup_trials = n_startup_trials
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
            study_name=STUDY_NAME,
            storage=f"sqlite:///{path}",
            direction=direction,
            load_if_exists=True,
        )
        self._study, self._study_path = study, path
        return study

    def _sampler(self, trials_so_far: int):
        import optuna

        # reseed from the trial count: a resumed run must not replay the random draws of the first session
        seed = self.seed * 100_003 + trials_so_far
        if self.sampler_name == "random":
            return optuna.samplers.RandomSampler(seed=seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.samplers.TPESampler(seed=seed, n_startup_trials=self.n_startup_trials, multivariate=True)

    # --- proposing -------------------------------------------------------------------------------
    def propose(self, context: ProposalContext) -> Proposal | None:
        source = context.train_py.read_text()
        try:
            spaces = find_spaces(source, context.train_py)
        except SearchSpaceError as err:
            raise UserError(f"the optuna agent cannot read the search spaces: {err}") from err
        if not spaces:
            raise UserError(
                f"{context.train_py.name} declares no search spaces; the optuna agent needs constants like "
                "`LEARNING_RATE = 5e-5  # search: log(1e-6, 1e-2)` (see the README, section Agents)"
            )
        distributions = {s.name: s.distribution() for s in spaces}
        study = self.study(context)
        self._sync(study, context, spaces, distributions)
        study.sampler = self._sampler(len(study.trials))
        current = {s.name: format_value(s, s.value) for s in spaces}
        for _ in range(MAX_REPEATS):
            trial = study.ask(distributions)
            written = {s.name: format_value(s, trial.params[s.name]) for s in spaces}
            if written != current:
                break
            # the same values as the current best: its score is already known, no need to train them again
            study.tell(trial, context.best.selection)
        else:
            return None  # the space is exhausted (a small choice/int space)
        new_source = rewrite(source, {name: trial.params[name] for name in written}, context.train_py)
        context.train_py.write_text(new_source)
        details = {
            "agent": self.name,
            "sampler": self.sampler_name,
            "trial": trial.number,
            "params": {name: _plain(trial.params[name]) for name in written},
            "written": written,
        }
        if new_source == source:  # cannot happen unless formatting collapses two values; say so rather than train
            raise InvalidProposal("the sampled values do not change train.py", details)
        changed = [f"{name}={text}" for name, text in written.items() if current[name] != text]
        kept = [name for name, text in written.items() if current[name] == text]
        description = f"optuna trial {trial.number}: " + ", ".join(changed)
        if kept:
            description += f" (kept {', '.join(kept)})"
        return Proposal(description=description, details=details)

    # --- telling outcomes --------------------------------------------------------------------------
    def _sync(self, study, context: ProposalContext, spaces: list[Space], distributions: dict) -> None:
        """Tell the study every outcome the ledger holds and it lacks; rebuild it from the ledger if it was lost."""
        import optuna
        from optuna.trial import TrialState

        mine = [r for r in context.history if r.proposal.get("agent") == self.name and "trial" in r.proposal]
        trials = {t.number: t for t in study.get_trials(deepcopy=False)}
        if not trials:
            baseline = context.history[0] if context.history else context.best
            params = _baseline_params(baseline, context, spaces)
            study.enqueue_trial(params)
            first = study.ask(distributions)
            first.set_user_attr("experiment", baseline.number)
            study.tell(first, baseline.selection)
            for record in mine:  # the study file was lost: replay the ledger into it
                frozen = optuna.trial.create_trial(
                    params=record.proposal["params"],
                    distributions={k: v for k, v in distributions.items() if k in record.proposal["params"]},
                    value=record.selection if record.status in SCORED else None,
                    state=TrialState.COMPLETE if record.status in SCORED else TrialState.FAIL,
                    user_attrs={"experiment": record.number},
                )
                study.add_trial(frozen)
            return
        referenced = set()
        for record in mine:
            number = record.proposal["trial"]
            referenced.add(number)
            trial = trials.get(number)
            if trial is None or trial.state != TrialState.RUNNING:
                continue
            if record.status in SCORED and record.selection is not None:
                study.tell(number, record.selection)
            else:
                study.tell(number, state=TrialState.FAIL)
        for number, trial in trials.items():
            if trial.state == TrialState.RUNNING and number not in referenced:
                study.tell(number, state=TrialState.FAIL)  # asked, then interrupted before the ledger recorded it


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


def _plain(value):
    """An optuna parameter as a JSON-friendly Python value."""
    return value.item() if hasattr(value, "item") else value
