"""A run's folder and how it starts or resumes: options resolved against the recipe, data prepared and split,
the contamination check, the git worktree. Everything the loop needs is reachable from a `Run`.

<run-dir>/<tag>/ holds run.json (the options), splits/ (train/ is all train.py may see), ledger.jsonl and
results.tsv, logs/, models/exp-NNNN (kept models), worktree/ (the git worktree on autoresearch/<tag>).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from hf_autoresearch.contamination import find_contamination
from hf_autoresearch.data import write_splits
from hf_autoresearch.driver import kept_models
from hf_autoresearch.errors import UserError
from hf_autoresearch.evaluation import EvalSetup, eval_setup
from hf_autoresearch.ledger import Ledger, experiment_id
from hf_autoresearch.metrics import metric_path
from hf_autoresearch.options import NOISE_Z_RETIRED, RUN_FILE, VERSION, RunConfig, now
from hf_autoresearch.recipe import Recipe, load_recipe
from hf_autoresearch.tamper import fingerprint
from hf_autoresearch.tasks import Task, get_task, prepare_splits, task_files
from hf_autoresearch.workspace import Workspace, branch_exists, check_branch_free, git, repo_root


class RunError(UserError):
    """The run cannot start or resume; the message says what to do."""


@dataclass
class Run:
    folder: Path
    config: RunConfig
    recipe: Recipe
    workspace: Workspace

    @property
    def task(self) -> Task:
        return get_task(self.config.task)

    @property
    def ledger(self) -> Ledger:
        return Ledger(self.folder)

    @property
    def splits(self) -> Path:
        return self.folder / "splits"

    @property
    def metric_dir(self) -> Path:
        return metric_path(self.recipe.metric.module)

    def eval_setup(self) -> EvalSetup:
        return eval_setup(self.config.task, self.splits, self.metric_dir, self.recipe.metric.options)

    def log_path(self, number: int, run_index: int = 0) -> Path:
        """The log of one training run: exp-NNNN.log, then exp-NNNN-run2.log... for repeats and confirmations."""
        suffix = "" if run_index == 0 else f"-run{run_index + 1}"
        return self.folder / "logs" / f"{experiment_id(number)}{suffix}.log"

    def model_dir(self, number: int) -> Path:
        return kept_models.model_dir(self.folder, number)


def start(config: RunConfig, log=print) -> Run:
    """Resolve `config` against its recipe, prepare the data and the worktree, write run.json."""
    recipe = load_recipe(config.recipe)
    if config.baseline_repeats < 1:
        raise RunError("--baseline-repeats must be at least 1")
    if config.noise_z is not None:
        raise RunError(NOISE_Z_RETIRED)
    if not 0 < config.false_keep_rate < 0.5:
        raise RunError(f"--false-keep-rate must be between 0 and 0.5, got {config.false_keep_rate}")
    if config.sandbox:
        from hf_autoresearch.executors.sandbox import available

        if not available():
            raise RunError("--sandbox needs bubblewrap (bwrap): `apt-get install bubblewrap`")
    folder = Path(config.run_dir).resolve() / config.tag
    if (folder / RUN_FILE).exists():
        raise RunError(
            f"run {config.tag!r} already exists in {folder.parent}; add --resume to continue it, or pick another --tag"
        )
    root = repo_root(recipe.path)
    branch = f"autoresearch/{config.tag}"
    check_branch_free(root, branch)
    config = dataclasses.replace(
        config,
        recipe=str(recipe.path),
        run_dir=str(Path(config.run_dir).resolve()),
        task=recipe.task,
        repo=str(root),
        recipe_rel=recipe.path.relative_to(root).as_posix(),
        branch=branch,
        model=_absolute_if_local(config.model or recipe.model.name),
        data=_absolute_if_local(config.data or recipe.data.source),
        budget=float(config.budget or recipe.budget.seconds),
        grace=float(recipe.budget.grace_seconds if config.grace is None else config.grace),
        min_delta=float(recipe.metric.min_delta if config.min_delta is None else config.min_delta),
        patches=str(Path(config.patches).resolve()) if config.patches else None,
        agent_prices=str(Path(config.agent_prices).resolve()) if config.agent_prices else None,
        accelerate_args=list(recipe.accelerate.args),
        started_at=now(),
        evaluation_hashes=fingerprint(metric_path(recipe.metric.module), task_files(recipe.task)),
    )
    folder.mkdir(parents=True, exist_ok=True)
    _ignore_in_git(folder.parent)
    config.save(folder)  # first: a start cut short (Ctrl-C, a kill) is finished by --resume
    try:
        return _finish_start(folder, config, recipe, log)
    except UserError:  # bad input (data, git): no run was made, so the same command works once it is fixed
        (folder / RUN_FILE).unlink(missing_ok=True)
        shutil.rmtree(folder / "splits.tmp", ignore_errors=True)
        if not any(folder.iterdir()):  # else it holds what the error names (contamination.json)
            folder.rmdir()
        raise


def _finish_start(folder: Path, config: RunConfig, recipe: Recipe, log) -> Run:
    """Prepare what a start has not prepared yet: the splits (written atomically), then the worktree."""
    if not (folder / "splits").is_dir():
        prepare_data(config, recipe, folder, log)
    worktree, repo = folder / "worktree", Path(config.repo)
    if branch_exists(repo, config.branch):  # made last by Workspace.create: the worktree is complete
        workspace = Workspace.reopen(repo, worktree, config.branch, Path(config.recipe_rel))
    else:
        # a start killed inside Workspace.create (SIGKILL skips its undo) leaves a detached worktree: redo it
        git(repo, "worktree", "remove", "--force", str(worktree), check=False)
        shutil.rmtree(worktree, ignore_errors=True)
        git(repo, "worktree", "prune", check=False)
        workspace = Workspace.create(recipe.path, worktree, config.branch)
    return Run(folder, config, recipe, workspace)


def resume(run_dir: Path, tag: str, overrides: dict | None = None, log=print) -> Run:
    """Reopen run `tag`; options given again (a new --budget, say) apply from the next experiment on."""
    folder = Path(run_dir).resolve() / tag
    if not (folder / RUN_FILE).is_file():
        raise RunError(f"no run {tag!r} in {folder.parent}; `hf-autoresearch status` lists the runs")
    config = RunConfig.load(folder)
    if overrides and "noise_z" in overrides:
        raise RunError(NOISE_Z_RETIRED)
    if overrides:
        config = config.with_overrides(overrides)
    if not (folder / "splits").is_dir() or not branch_exists(Path(config.repo), config.branch):
        log("finishing the start of this run (it was cut short)")
        run = _finish_start(folder, config, load_recipe(config.recipe), log)
    else:
        workspace = Workspace.reopen(Path(config.repo), folder / "worktree", config.branch, Path(config.recipe_rel))
        run = Run(folder, config, load_recipe(workspace.worktree / config.recipe_rel), workspace)
    if config.version < 4:
        log(
            f"run.json of version {config.version}: its decisions stand as recorded; its next experiments are judged "
            f"by the t-test at a false-keep rate of {config.false_keep_rate} (docs/keep-rule.md), against the best's "
            "recorded score (the mean of the runs that decided it: biased upward, said so in each decision)"
        )
    if config.version < VERSION:  # earlier versions hashed fewer files, or the same files at other paths
        log(f"run.json of version {config.version}: the evaluation code is hashed again as it is now (tamper check)")
        config.task = config.task or run.recipe.task
        config.evaluation_hashes = fingerprint(metric_path(run.recipe.metric.module), task_files(config.task))
        config.version = VERSION
    config.save(folder)
    best = run.ledger.best()
    if best is not None:
        run.workspace.reset(best.commit)  # drops whatever an interrupted experiment left behind
    # a keep killed between its ledger row and its rename gets its model folder now, not in the loop only: the Hub
    # catch-up runs before the loop
    kept_models.recover(folder, run.ledger.kept_numbers())
    run.ledger.write_tsv()
    return run


def prepare_data(config: RunConfig, recipe: Recipe, folder: Path, log=print) -> None:
    """Split the source, drop training rows that copy evaluation rows, write splits/ (train/ apart)."""
    log(f"preparing data from {config.data}")
    task = get_task(recipe.task)
    splits = prepare_splits(recipe.task, config.data, recipe.data.with_profile(config.data_profile))
    splits.train = _check_contamination(task, splits, config, folder, log)
    staging = folder / "splits.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    write_splits(splits, staging)
    shutil.rmtree(folder / "splits", ignore_errors=True)
    staging.rename(folder / "splits")
    log(f"splits: {task.describe(splits)}")


def _check_contamination(task: Task, splits, config: RunConfig, folder: Path, log) -> list[dict]:
    """Compare training rows with selection and holdout rows; drop (default), fail on or warn about matches."""
    texts = {
        name: [task.input_text(r) for r in rows]
        for name, rows in (("selection", splits.selection), ("holdout", splits.holdout))
    }
    report = find_contamination([task.input_text(r) for r in splits.train], texts, config.contamination_threshold)
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


def check_base_model(config: RunConfig) -> None:
    """Fail in seconds on a base model that does not exist, not minutes later in the baseline's training.

    A local folder must hold a saved model; a Hub id must be in the local cache or known to the Hub (asked once).
    Tasks whose models are not transformers models (no AutoModel class, e.g. a threshold) are not checked.
    """
    recipe = load_recipe(config.recipe)
    if not get_task(recipe.task).auto_class.startswith("AutoModel"):
        return
    model = config.model or recipe.model.name
    where = "--model" if config.model else f"[model] name in {recipe.path / 'recipe.toml'}"
    fix = f"check {where}: a Hub model id (OWNER/NAME) or a folder written by save_pretrained"
    path = Path(model).expanduser()
    if path.exists() or model.startswith((".", "/", "~")):
        if not any((path / name).is_file() for name in ("config.json", "adapter_config.json")):
            what = "no config.json (nor adapter_config.json) in that folder" if path.is_dir() else "no such folder"
            raise RunError(f"model {model}: {what}; {fix}")
        return
    from huggingface_hub import HfApi, try_to_load_from_cache
    from huggingface_hub.errors import HFValidationError, RepositoryNotFoundError

    try:
        if any(
            isinstance(try_to_load_from_cache(model, name), str) for name in ("config.json", "adapter_config.json")
        ):
            return  # downloaded before: works offline
        HfApi(endpoint=os.environ.get("HF_ENDPOINT")).model_info(model, timeout=15)  # HF_ENDPOINT as set now
    except HFValidationError as err:
        raise RunError(f"model {model!r} is neither a local folder nor a valid Hub id ({err}); {fix}") from err
    except RepositoryNotFoundError as err:
        raise RunError(
            f"model {model!r}: no such model on the Hub (a private one needs `hf auth login`) and no such local "
            f"folder; {fix}"
        ) from err
    except Exception as err:  # offline, DNS, timeout: train.py could not download it either
        raise RunError(
            f"model {model!r} is not a local folder, not in the Hugging Face cache, and the Hub could not be asked "
            f"({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}); {fix}, or offline a local folder"
        ) from err


def _absolute_if_local(value: str) -> str:
    path = Path(value).expanduser()
    return str(path.resolve()) if path.exists() else value


def _ignore_in_git(run_dir: Path) -> None:
    """A run folder inside the user's repository must not show up in their `git status`."""
    ignore = run_dir / ".gitignore"
    if not ignore.exists():
        ignore.write_text("# written by hf-autoresearch: runs are not part of the repository\n*\n")
