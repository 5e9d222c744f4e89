"""The keep/discard loop: propose, check, commit, train, evaluate, keep or reset; one ledger row an experiment."""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from hf_autoresearch.agents import Agent, InvalidProposal, Proposal, ProposalContext
from hf_autoresearch.data import make_splits, write_splits
from hf_autoresearch.errors import UserError
from hf_autoresearch.evaluation import EvalRequest, EvaluationError, EvaluationProcess
from hf_autoresearch.ledger import ExperimentRecord, Ledger, experiment_id
from hf_autoresearch.metrics import metric_path
from hf_autoresearch.recipe import Recipe, load_recipe
from hf_autoresearch.runner import TrainingJob, run_training
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

    # --- paths -----------------------------------------------------------------------------------
    @property
    def splits(self) -> Path:
        return self.folder / "splits"

    def log_path(self, number: int) -> Path:
        return self.folder / "logs" / f"{experiment_id(number)}.log"

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
    ) -> Run:
        recipe = load_recipe(recipe_dir)
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
        )
        d = recipe.data
        log(f"preparing data from {config.data}")
        splits = make_splits(config.data, d.text_column, d.label_column, d.selection_fraction, d.split_seed)
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
            return record
        except BaseException:
            if best is not None:
                self.workspace.reset(best.commit)
            raise
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    def _propose(self, number: int, agent: Agent, best: ExperimentRecord):
        context = ProposalContext(
            number, self.workspace.worktree, self.workspace.train_py, self.recipe, self.ledger.records(), best
        )
        self.log(f"{experiment_id(number)}: asking the {agent.name} agent")
        t0 = time.monotonic()
        try:
            proposal = agent.propose(context)
        except InvalidProposal as err:
            return self._record_invalid(number, str(err), err.details, best, time.monotonic() - t0)
        if proposal is None:
            self.workspace.reset(best.commit)
            return None
        agent_seconds = time.monotonic() - t0
        problem = self.workspace.check_edit()
        if problem:
            return self._record_invalid(number, problem, proposal.details, best, agent_seconds, proposal.description)
        diff, diffstat = self.workspace.diff()
        commit = self.workspace.commit(f"{experiment_id(number)}: {proposal.description}")
        proposal.details.update(diff=diff, diffstat=diffstat)
        return proposal, commit, {"agent": agent_seconds}

    def _record_invalid(self, number, reason, details, best, agent_seconds, description="") -> ExperimentRecord:
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
            total_seconds=agent_seconds,
            timings={"agent": agent_seconds},
            seed=self.config.seed,
            finished_at=now(),
        )
        self.ledger.append(record)
        self._announce(record)
        return record

    def _train_and_score(self, number, proposal, commit, best, scratch, timings, started) -> ExperimentRecord:
        cfg = self.config
        self.log(f"{experiment_id(number)}: training {proposal.description!r} for up to {cfg.budget:.0f} s")
        result = run_training(
            TrainingJob(
                train_py=self.workspace.train_py,
                scratch=scratch,
                train_data=self.splits / "train",
                model=cfg.model,
                seed=cfg.seed,
                budget_seconds=cfg.budget,
                grace_seconds=cfg.grace,
                log_path=self.log_path(number),
                accelerate_args=tuple(cfg.accelerate_args),
            )
        )
        summary = _read_summary(result.output_dir)
        details = dict(proposal.details)
        record = ExperimentRecord(
            number=number,
            status="crash",
            description=proposal.description,
            commit=commit,
            parent=best.commit if best else "",
            train_seconds=result.seconds,
            log_tail=result.log_tail,
            diff=details.pop("diff", ""),
            diffstat=details.pop("diffstat", ""),
            summary=summary,
            proposal=details,
            seed=cfg.seed,
            peak_rss_mb=result.peak_rss_mb,
        )
        timings.update(process=result.seconds, train_loop=summary.get("training_seconds"))
        if result.status == "timeout":
            record.status = "timeout"
            record.reason = f"killed at budget {cfg.budget:.0f} s + grace {cfg.grace:.0f} s"
        elif result.status == "crash":
            record.reason = f"train.py exited with status {result.returncode}"
        else:
            self._score(record, result.output_dir, best, scratch, timings)
        if record.status != "keep" and best is not None:
            self.workspace.reset(best.commit)
        record.total_seconds = time.monotonic() - started
        known = sum(v for k, v in timings.items() if k in ("agent", "process", "eval_selection", "eval_holdout"))
        timings["bookkeeping"] = max(0.0, record.total_seconds - known)
        record.timings = timings
        record.finished_at = now()
        return record

    def _score(self, record, output_dir, best, scratch, timings) -> None:
        """Selection score decides; the holdout is scored only for keeps and never looked at to decide."""
        metric = self.recipe.metric.name
        with EvaluationProcess(self._eval_request(output_dir), scratch / "eval") as evaluation:
            try:
                self.log("  evaluating on selection")
                selection = evaluation.score(self.splits / "selection.jsonl")
            except EvaluationError as err:
                record.reason = str(err)
                return
            timings["eval_selection"] = selection["wall_seconds"]
            record.scores["selection"] = selection["scores"]
            record.selection = float(selection["scores"][metric])
            record.status, record.decision = self._decide(record.selection, best)
            if record.status == "keep":
                try:
                    self.log("  evaluating on holdout")
                    holdout = evaluation.score(self.splits / "holdout.jsonl")
                except EvaluationError as err:  # the decision is made; a failed report must not undo it
                    record.reason = f"holdout evaluation failed: {err}"
                else:
                    timings["eval_holdout"] = holdout["wall_seconds"]
                    record.scores["holdout"] = holdout["scores"]
                    record.holdout = float(holdout["scores"][metric])
        if record.status == "keep":
            self.model_dir(record.number).parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(output_dir), self.model_dir(record.number))

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

    def _decide(self, score: float, best: ExperimentRecord | None) -> tuple[str, dict]:
        direction = self.recipe.metric.direction
        if best is None:
            return "keep", {"rule": "baseline", "direction": direction}
        gain = score - best.selection if direction == "maximize" else best.selection - score
        keep = gain > self.config.min_delta
        return ("keep" if keep else "discard"), {
            "rule": "gain > min_delta",
            "direction": direction,
            "best": best.selection,
            "best_experiment": best.number,
            "gain": gain,
            "min_delta": self.config.min_delta,
        }

    def _announce(self, record: ExperimentRecord) -> None:
        score = "" if record.selection is None else f" selection {record.selection:.4f}"
        hold = "" if record.holdout is None else f" holdout {record.holdout:.4f}"
        why = f" ({record.reason.splitlines()[0]})" if record.reason else ""
        self.log(f"{record.experiment}: {record.status}{score}{hold} in {record.total_seconds:.0f} s{why}")


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
