"""The keep/discard loop: propose, check, commit, train, evaluate, keep or reset; one ledger row an experiment."""

from __future__ import annotations

import json
import shutil
import statistics
import tempfile
import time
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from hf_autoresearch.agents import Agent, InvalidProposal, Proposal, ProposalContext
from hf_autoresearch.contamination import find_contamination
from hf_autoresearch.data import prepare_splits, write_splits
from hf_autoresearch.decision import DecisionRule, NoiseFloor
from hf_autoresearch.errors import UserError
from hf_autoresearch.evaluation import EvalRequest, EvaluationError, EvaluationProcess
from hf_autoresearch.ledger import ExperimentRecord, Ledger, experiment_id
from hf_autoresearch.metrics import metric_path
from hf_autoresearch.recipe import Recipe, load_recipe
from hf_autoresearch.runner import TrainingJob, run_training
from hf_autoresearch.sandbox import hidden_paths
from hf_autoresearch.tamper import fingerprint, verify
from hf_autoresearch.workspace import Workspace, check_branch_free, repo_root

RUN_FILE = "run.json"


class RunError(UserError):
    """The run cannot start or resume; the message says what to do."""


@dataclass
class RunConfig:
    """What a run was started with (run.json); --resume reads it back so the run goes on unchanged."""

    tag: str
    recipe: str  # the recipe folder in the user's checkout
    repo: str  # the user's git repository
    recipe_rel: str  # the recipe folder relative to the repository root
    branch: str
    agent: str
    model: str
    data: str
    budget: float
    grace: float
    seed: int
    min_delta: float
    patches: str = ""
    accelerate_args: list[str] = field(default_factory=list)
    started_at: str = ""
    agent_options: dict = field(default_factory=dict)  # --agent-model, --max-agent-turns, ... as started
    baseline_repeats: int = 3  # baseline runs with different seeds: the noise floor
    noise_z: float = 2.0  # a keep must beat the best by more than max(min_delta, noise_z * noise std)
    confirm: bool = True  # re-train a would-be keep with a fresh seed before keeping it
    contamination: str = "drop"  # drop / fail / warn: training rows duplicating evaluation rows
    contamination_threshold: float = 0.8
    sandbox: bool = False  # run training under bubblewrap
    evaluation_hashes: dict = field(default_factory=dict)  # sha256 of the evaluation code at run start


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _absolute_if_local(value: str) -> str:
    path = Path(value).expanduser()
    return str(path.resolve()) if path.exists() else value


class Run:
    """One campaign on one recipe, living in <run-dir>/<tag>/."""

    def __init__(self, folder: Path, config: RunConfig, recipe: Recipe, workspace: Workspace, log=print):
        self.folder = Path(folder)
        self.config = config
        self.recipe = recipe
        self.workspace = workspace
        self.ledger = Ledger(self.folder)
        self.log = log
        # objects with optional on_phase(run, number, phase) / on_record(run, record): Hub pushes, progress, trackers
        self.callbacks: list = []

    # --- paths -----------------------------------------------------------------------------------
    @property
    def splits(self) -> Path:
        return self.folder / "splits"

    def log_path(self, number: int, run_index: int = 0) -> Path:
        """The log of one training run: exp-NNNN.log, then exp-NNNN-run2.log... for repeats and confirmations."""
        suffix = "" if run_index == 0 else f"-run{run_index + 1}"
        return self.folder / "logs" / f"{experiment_id(number)}{suffix}.log"

    def model_dir(self, number: int) -> Path:
        return self.folder / "models" / experiment_id(number)

    # --- start and resume ------------------------------------------------------------------------
    @classmethod
    def start(
        cls,
        recipe_dir: Path,
        run_dir: Path,
        tag: str,
        agent: str,
        model: str | None = None,
        data: str | None = None,
        budget: float | None = None,
        grace: float | None = None,
        seed: int = 0,
        min_delta: float | None = None,
        patches: str = "",
        log=print,
        agent_options: dict | None = None,
        baseline_repeats: int = 3,
        noise_z: float | None = None,
        confirm: bool = True,
        contamination: str = "drop",
        contamination_threshold: float = 0.8,
        sandbox: bool = False,
    ) -> Run:
        recipe = load_recipe(recipe_dir)
        if baseline_repeats < 1:
            raise RunError("--baseline-repeats must be at least 1")
        if contamination not in ("drop", "fail", "warn"):
            raise RunError(f"--contamination must be drop, fail or warn, got {contamination!r}")
        if sandbox:
            from hf_autoresearch.sandbox import available

            if not available():
                raise RunError("--sandbox needs bubblewrap (bwrap): `apt-get install bubblewrap`")
        folder = Path(run_dir).resolve() / tag
        if (folder / RUN_FILE).exists():
            raise RunError(
                f"run {tag!r} already exists in {folder.parent}; add --resume to continue it, or pick another --tag"
            )
        root = repo_root(recipe.path)
        check_branch_free(root, f"autoresearch/{tag}")
        folder.mkdir(parents=True, exist_ok=True)
        _ignore_in_git(Path(run_dir).resolve())
        config = RunConfig(
            tag=tag,
            recipe=str(recipe.path),
            repo=str(root),
            recipe_rel=recipe.path.relative_to(root).as_posix(),
            branch=f"autoresearch/{tag}",
            agent=agent,
            model=_absolute_if_local(model or recipe.model.name),
            data=_absolute_if_local(data or recipe.data.source),
            budget=float(budget or recipe.budget.seconds),
            grace=float(recipe.budget.grace_seconds if grace is None else grace),
            seed=seed,
            min_delta=float(recipe.metric.min_delta if min_delta is None else min_delta),
            patches=str(Path(patches).resolve()) if patches else "",
            accelerate_args=list(recipe.accelerate.args),
            started_at=now(),
            agent_options=dict(agent_options or {}),
            baseline_repeats=baseline_repeats,
            noise_z=float(recipe.metric.noise_z if noise_z is None else noise_z),
            confirm=confirm,
            contamination=contamination,
            contamination_threshold=contamination_threshold,
            sandbox=sandbox,
            evaluation_hashes=fingerprint(metric_path(recipe.metric.module)),
        )
        d = recipe.data
        log(f"preparing data from {config.data}")
        splits = prepare_splits(recipe.task, config.data, d)
        splits.train = _check_contamination(splits, d.text_column, config, folder, log)
        write_splits(splits, folder / "splits")
        log(f"splits: train {len(splits.train)}, selection {len(splits.selection)}, holdout {len(splits.holdout)}")
        workspace = Workspace.create(recipe.path, folder / "worktree", config.branch)
        (folder / RUN_FILE).write_text(json.dumps(asdict(config), indent=2))
        return cls(folder, config, recipe, workspace, log)

    @classmethod
    def resume(
        cls, run_dir: Path, tag: str, budget: float | None = None, grace: float | None = None, log=print
    ) -> Run:
        """Reopen run `tag`; a new budget or grace applies from the next experiment on."""
        folder = Path(run_dir).resolve() / tag
        if not (folder / RUN_FILE).is_file():
            raise RunError(f"no run {tag!r} in {folder.parent}; `hf-autoresearch status` lists the runs")
        config = RunConfig(**json.loads((folder / RUN_FILE).read_text()))
        if budget is not None or grace is not None:
            config.budget = float(budget or config.budget)
            config.grace = float(config.grace if grace is None else grace)
            (folder / RUN_FILE).write_text(json.dumps(asdict(config), indent=2))
        workspace = Workspace.reopen(Path(config.repo), folder / "worktree", config.branch, Path(config.recipe_rel))
        recipe = load_recipe(workspace.worktree / config.recipe_rel)
        run = cls(folder, config, recipe, workspace, log)
        best = run.ledger.best()
        if best is not None:
            workspace.reset(best.commit)  # drops whatever an interrupted experiment left behind
        run.ledger.write_tsv()
        return run

    # --- the loop ----------------------------------------------------------------------------------
    def loop(self, agent: Agent, max_experiments: int | None = None, hours: float | None = None) -> None:
        """Run the baseline if missing, then experiments until a limit is reached or the agent is done."""
        started = time.monotonic()
        if self.ledger.best() is None:
            baseline = self.experiment(self.ledger.next_number(), agent=None)
            if baseline.status != "keep":
                raise RunError(
                    f"the baseline {baseline.experiment} ended in {baseline.status} ({baseline.reason}); see "
                    f"{self.log_path(baseline.number)}. Fix the cause (a longer --budget or --grace, the data, the "
                    "model) and add --resume to try the baseline again"
                )
        while True:
            done = [r for r in self.ledger.records() if r.number > 0]
            if max_experiments is not None and len(done) >= max_experiments:
                self.log(f"reached --max-experiments {max_experiments}")
                return
            if hours is not None and time.monotonic() - started > hours * 3600:
                self.log(f"reached --hours {hours}")
                return
            if self.experiment(self.ledger.next_number(), agent) is None:
                self.log("the agent has nothing more to propose")
                return

    def experiment(self, number: int, agent: Agent | None) -> ExperimentRecord | None:
        """One experiment; the baseline when `agent` is None. Returns None when the agent has nothing left.

        On Ctrl-C the training is killed, the worktree is reset to the best commit and nothing is recorded, so
        `--resume` runs this experiment again.
        """
        started = time.monotonic()
        best = self.ledger.best()
        scratch = Path(tempfile.mkdtemp(prefix="hf-autoresearch-"))
        try:
            if agent is None:
                proposal = Proposal("baseline", {"baseline": True})
                commit = self.workspace.head()
                timings = {"agent": 0.0}
            else:
                proposed = self._propose(number, agent, best)
                if not isinstance(proposed, tuple):
                    return proposed  # None (agent done) or an invalid record
                proposal, commit, timings = proposed
            record = self._train_and_score(number, proposal, commit, best, scratch, timings, started)
            self.ledger.append(record)
            self._announce(record)
            self._notify("on_record", record)
            return record
        except BaseException:
            if best is not None:
                self.workspace.reset(best.commit)
            raise
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    def _propose(self, number: int, agent: Agent, best: ExperimentRecord):
        context = ProposalContext(
            number,
            self.workspace.worktree,
            self.workspace.train_py,
            self.recipe,
            self.ledger.records(),
            best,
            run_folder=self.folder,
            budget=self.config.budget,
        )
        self.log(f"{experiment_id(number)}: asking the {agent.name} agent")
        self._notify("on_phase", number, "agent")
        t0 = time.monotonic()
        try:
            proposal = agent.propose(context)
        except InvalidProposal as err:
            return self._record_invalid(
                number, str(err), err.details, best, time.monotonic() - t0, usage=err.usage, cost=err.cost
            )
        if proposal is None:
            self.workspace.reset(best.commit)
            return None
        agent_seconds = time.monotonic() - t0
        problem = self.workspace.check_edit()
        if problem:
            return self._record_invalid(
                number,
                problem,
                proposal.details,
                best,
                agent_seconds,
                proposal.description,
                usage=proposal.usage,
                cost=proposal.cost,
            )
        diff, diffstat = self.workspace.diff()
        commit = self.workspace.commit(f"{experiment_id(number)}: {proposal.description}")
        proposal.details.update(diff=diff, diffstat=diffstat)
        return proposal, commit, {"agent": agent_seconds}

    def _record_invalid(
        self, number, reason, details, best, agent_seconds, description="", usage=None, cost=0.0
    ) -> ExperimentRecord:
        diff, diffstat = self.workspace.diff()
        self.workspace.reset(best.commit)
        record = ExperimentRecord(
            number=number,
            status="invalid",
            description=description or details.get("patch", "") or "invalid edit",
            parent=best.commit,
            reason=reason,
            diff=diff,
            diffstat=diffstat,
            proposal=details,
            agent_usage=usage or {},
            agent_cost=cost,
            total_seconds=agent_seconds,
            timings={"agent": agent_seconds},
            seed=self.config.seed,
            finished_at=now(),
        )
        self.ledger.append(record)
        self._announce(record)
        self._notify("on_record", record)
        return record

    def _train_and_score(self, number, proposal, commit, best, scratch, timings, started) -> ExperimentRecord:
        """Train (once, several times for the baseline, twice for a would-be keep) and decide."""
        details = dict(proposal.details)
        record = ExperimentRecord(
            number=number,
            status="crash",
            description=proposal.description,
            commit=commit,
            parent=best.commit if best else "",
            diff=details.pop("diff", ""),
            diffstat=details.pop("diffstat", ""),
            proposal=details,
            agent_usage=proposal.usage,
            agent_cost=proposal.cost,
            seed=self.config.seed,
        )
        timings.update(process=0.0, eval_selection=0.0, eval_holdout=0.0)
        with ExitStack() as evaluations:  # evaluation processes stay open until the holdout is scored
            if best is None:
                kept_model = self._run_baseline(record, scratch, timings, evaluations)
            else:
                kept_model = self._run_candidate(record, best, scratch, timings, evaluations)
        if kept_model is not None:
            self.model_dir(record.number).parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(kept_model), self.model_dir(record.number))
        if record.status != "keep" and best is not None:
            self.workspace.reset(best.commit)
        record.total_seconds = time.monotonic() - started
        known = sum(v for k, v in timings.items() if k in ("agent", "process", "eval_selection", "eval_holdout"))
        timings["bookkeeping"] = max(0.0, record.total_seconds - known)
        timings["train_loop"] = record.summary.get("training_seconds")
        record.timings = timings
        record.finished_at = now()
        return record

    def _run_baseline(self, record, scratch, timings, evaluations) -> Path | None:
        """K runs with harness-chosen seeds: their mean is the score to beat, their spread the noise floor."""
        seeds = [self.config.seed + i for i in range(self.config.baseline_repeats)]
        runs = []
        for index, seed in enumerate(seeds):
            run = self._trial(record, index, seed, scratch, timings, evaluations)
            if run is None:
                return None
            runs.append(run)
        noise = NoiseFloor([trial["selection"] for _, _, trial in runs], seeds)
        self.log(f"  noise floor over {len(seeds)} baseline runs: mean {noise.mean:.4f}, std {noise.std:.4f}")
        record.status = "keep"
        record.decision = {"rule": "baseline", "noise": noise.to_dict(), "direction": self.recipe.metric.direction}
        self._aggregate(record, runs, "selection")
        return self._holdout(record, runs, timings)

    def _run_candidate(self, record, best, scratch, timings, evaluations) -> Path | None:
        """Keep only a gain above the noise threshold that a second run with a fresh seed confirms."""
        rule = self._rule()
        first = self._trial(record, 0, self.config.seed, scratch, timings, evaluations)
        if first is None:
            return None
        runs = [first]
        clears, decision = rule.decide(first[2]["selection"], best.selection, best.number, "first run")
        if clears and self.config.confirm:
            self.log(f"  gain {decision['gain']:+.4f} > threshold {decision['threshold']:.4f}: confirming")
            second = self._trial(record, 1, self.config.seed + 1000 + record.number, scratch, timings, evaluations)
            if second is None:  # a confirmation that fails confirms nothing
                record.reason = f"confirmation run {record.status}: {record.reason}"
                clears = False
            else:
                runs.append(second)
                mean = statistics.fmean(trial["selection"] for _, _, trial in runs)
                clears, decision = rule.decide(mean, best.selection, best.number, "mean with confirmation run")
                if not clears:
                    record.reason = "did not confirm: the mean of both runs is within the noise"
        record.decision = decision
        record.status = "keep" if clears else "discard"
        self._aggregate(record, runs, "selection")
        return self._holdout(record, runs, timings) if clears else None

    def _trial(self, record, index, seed, scratch, timings, evaluations):
        """Train once with `seed` and score the selection split: (evaluation, model dir, trial) or None on failure."""
        cfg = self.config
        note = "" if index == 0 else f" (run {index + 1}, seed {seed})"
        self.log(f"{record.experiment}: training {record.description!r}{note} for up to {cfg.budget:.0f} s")
        self._notify("on_phase", record.number, "training")
        folder = scratch / f"run-{index}"
        result = run_training(
            TrainingJob(
                train_py=self.workspace.train_py,
                scratch=folder,
                train_data=self.splits / "train",
                model=cfg.model,
                seed=seed,
                budget_seconds=cfg.budget,
                grace_seconds=cfg.grace,
                log_path=self.log_path(record.number, index),
                accelerate_args=tuple(cfg.accelerate_args),
                sandbox_hidden=tuple(hidden_paths(self.folder.parent, cfg.data)) if cfg.sandbox else None,
            )
        )
        summary = _read_summary(result.output_dir)
        trial = {
            "seed": seed,
            "status": result.status,
            "train_seconds": result.seconds,
            "train_loop": summary.get("training_seconds"),
            "log": str(self.log_path(record.number, index)),
        }
        record.trials.append(trial)
        timings["process"] += result.seconds
        if index == 0:
            record.summary, record.train_seconds, record.peak_rss_mb = summary, result.seconds, result.peak_rss_mb
        if result.status != "ok" or index == 0:
            record.log_tail = result.log_tail
        if result.status != "ok":
            record.status = result.status
            record.reason = (
                f"killed at budget {cfg.budget:.0f} s + grace {cfg.grace:.0f} s"
                if result.status == "timeout"
                else f"train.py exited with status {result.returncode}"
            )
            return None
        verify(cfg.evaluation_hashes, metric_path(self.recipe.metric.module))
        self._notify("on_phase", record.number, "evaluation")
        self.log("  evaluating on selection")
        evaluation = evaluations.enter_context(
            EvaluationProcess(self._eval_request(result.output_dir), folder / "eval")
        )
        try:
            selection = evaluation.score(self.splits / "selection.jsonl")
        except EvaluationError as err:
            record.status, record.reason = "crash", str(err)
            return None
        timings["eval_selection"] += selection["wall_seconds"]
        trial["scores"] = {"selection": selection["scores"]}
        trial["selection"] = float(selection["scores"][self.recipe.metric.name])
        return evaluation, result.output_dir, trial

    def _holdout(self, record, runs, timings) -> Path:
        """Score the holdout with every run's model of a keep, for the record only; returns the model to keep."""
        self.log("  evaluating on holdout")
        verify(self.config.evaluation_hashes, metric_path(self.recipe.metric.module))
        try:
            for evaluation, _, trial in runs:
                holdout = evaluation.score(self.splits / "holdout.jsonl")
                timings["eval_holdout"] += holdout["wall_seconds"]
                trial["scores"]["holdout"] = holdout["scores"]
                trial["holdout"] = float(holdout["scores"][self.recipe.metric.name])
        except EvaluationError as err:  # the decision is made; a failed report must not undo it
            record.reason = f"holdout evaluation failed: {err}"
        else:
            self._aggregate(record, runs, "holdout")
        return runs[0][1]

    def _aggregate(self, record, runs, split: str) -> None:
        """The experiment's score on `split`: the mean over its runs, metric by metric."""
        scores = [trial["scores"][split] for _, _, trial in runs]
        record.scores[split] = {key: statistics.fmean(s[key] for s in scores) for key in scores[0]}
        setattr(record, split, record.scores[split][self.recipe.metric.name])

    def _rule(self) -> DecisionRule:
        baseline = next(r for r in self.ledger.records() if r.decision.get("rule") == "baseline")
        return DecisionRule(
            direction=self.recipe.metric.direction,
            min_delta=self.config.min_delta,
            z=self.config.noise_z,
            noise=NoiseFloor.from_dict(baseline.decision["noise"]),
        )

    def _eval_request(self, model_dir: Path) -> EvalRequest:
        r = self.recipe
        return EvalRequest(
            task=r.task,
            model_dir=str(model_dir),
            labels_file=str(self.splits / "train" / "labels.json"),
            metric_path=str(metric_path(r.metric.module)),
            text_column=r.data.text_column,
            label_column=r.data.label_column,
        )

    def _notify(self, event: str, *args) -> None:
        """Tell the callbacks; one that fails is reported and never stops the run."""
        for callback in self.callbacks:
            method = getattr(callback, event, None)
            if method is None:
                continue
            try:
                method(self, *args)
            except Exception as err:
                self.log(f"warning: {type(callback).__name__}.{event} failed: {type(err).__name__}: {err}")

    def _announce(self, record: ExperimentRecord) -> None:
        score = "" if record.selection is None else f" selection {record.selection:.4f}"
        hold = "" if record.holdout is None else f" holdout {record.holdout:.4f}"
        why = f" ({record.reason.splitlines()[0]})" if record.reason else ""
        self.log(f"{record.experiment}: {record.status}{score}{hold} in {record.total_seconds:.0f} s{why}")


def _check_contamination(splits, text_column: str, config: RunConfig, folder: Path, log) -> list[dict]:
    """Compare training rows with selection and holdout rows; drop (default), fail on or warn about matches."""
    texts = {
        name: [str(r[text_column]) for r in rows]
        for name, rows in (("selection", splits.selection), ("holdout", splits.holdout))
    }
    report = find_contamination([str(r[text_column]) for r in splits.train], texts, config.contamination_threshold)
    (folder / "contamination.json").write_text(
        json.dumps({"policy": config.contamination, **report.to_dict()}, indent=2, ensure_ascii=False)
    )
    log(report.summary())
    if not report.train_indices:
        return splits.train
    if config.contamination == "fail":
        raise RunError(
            f"{len(report.train_indices)} training rows duplicate selection or holdout rows (see "
            f"{folder / 'contamination.json'}); --contamination drop removes them from training"
        )
    if config.contamination == "warn":
        log("warning: training on them anyway (--contamination warn): selection and holdout scores are inflated")
        return splits.train
    log(f"dropped {len(report.train_indices)} contaminated rows from training (--contamination fail stops instead)")
    return [row for i, row in enumerate(splits.train) if i not in report.train_indices]


def _read_summary(output_dir: Path) -> dict:
    try:
        return json.loads((Path(output_dir) / "summary.json").read_text())
    except (OSError, json.JSONDecodeError):
        return {}


def _ignore_in_git(run_dir: Path) -> None:
    """A run folder inside the user's repository must not show up in their `git status`."""
    ignore = run_dir / ".gitignore"
    if not ignore.exists():
        ignore.write_text("# written by hf-autoresearch: runs are not part of the repository\n*\n")
