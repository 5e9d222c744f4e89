"""`hf-autoresearch baseline`: score a larger model beside a run, so the run's best can be held up against it.

(The command keeps its name; "baseline" alone means the run's exp-0000, the recipe as shipped.)

The larger model is trained with the run's *original* train.py (the commit of its baseline exp-0000), on the run's
train split, under the run's budget (or --budget), or only evaluated (--no-train, for an instruct model that already
does the task). Either way the same frozen evaluation scores it on the selection and the holdout split. The result is
written to <run>/larger-baseline.json, not to the ledger: it is a reference point, not an experiment. The comparison
`status`, `report` and the model card show is summary.RunSummary's.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from pathlib import Path

from hf_autoresearch.errors import UserError
from hf_autoresearch.evaluation import EvaluationError, Evaluator, eval_setup
from hf_autoresearch.executors.runner import TrainingJob, run_training
from hf_autoresearch.ledger import Ledger
from hf_autoresearch.metrics import metric_path
from hf_autoresearch.recipe import load_recipe
from hf_autoresearch.reporting.larger_baseline import LARGER_BASELINE_FILE, count_parameters
from hf_autoresearch.tasks import get_task
from hf_autoresearch.workspace import git


class LargerModelError(UserError):
    """The larger model cannot be scored; the message says what to do."""


def find_run(run_dir: Path, recipe_dir: Path, tag: str | None) -> Path:
    """The run folder named by `tag`, else the latest run of this recipe in `run_dir`."""
    run_dir = Path(run_dir).resolve()
    recipe_name = Path(recipe_dir).resolve().name
    start = f"start one first: hf-autoresearch run {recipe_dir} --max-experiments 0 --run-dir {run_dir}"
    if tag:
        folder = run_dir / tag
        if not (folder / "run.json").is_file():
            raise LargerModelError(f"no run {tag!r} in {run_dir}; {start} --tag {tag}")
        recipe_rel = json.loads((folder / "run.json").read_text())["recipe_rel"]
        if Path(recipe_rel).name != recipe_name:
            raise LargerModelError(f"run {tag!r} is a run of {recipe_rel}, not of {recipe_dir}")
        return folder
    runs = [
        p.parent
        for p in sorted(run_dir.glob("*/run.json"), key=lambda p: p.stat().st_mtime)
        if Path(json.loads(p.read_text())["recipe_rel"]).name == recipe_name
    ]
    if not runs:
        raise LargerModelError(f"no run of {recipe_name} in {run_dir}; {start}")
    return runs[-1]


def _local_model(model: str) -> str:
    """A local folder for `model`: itself if it is one, else a snapshot from the Hub."""
    path = Path(model).expanduser()
    if path.is_dir():
        return str(path.resolve())
    try:
        from huggingface_hub import snapshot_download

        return snapshot_download(model)
    except Exception as err:  # offline, unknown id, gated: all mean the same to the user
        raise LargerModelError(
            f"could not get model {model!r} from the Hub ({type(err).__name__}); pass --model a local folder"
        ) from err


def score_larger_model(
    recipe_dir: Path,
    run_dir: Path,
    tag: str | None = None,
    model: str | None = None,
    budget: float | None = None,
    no_train: bool = False,
    data: str | None = None,
    log=print,
) -> dict:
    """Train (or only evaluate) the larger model beside run `tag` and write <run>/larger-baseline.json."""
    started = time.monotonic()
    folder = find_run(run_dir, recipe_dir, tag)
    config = json.loads((folder / "run.json").read_text())
    recipe = load_recipe(folder / "worktree" / config["recipe_rel"])
    model = _check_request(recipe, config, model, no_train, data)
    budget = float(budget or config["budget"])
    result = _fresh_result(folder, config, recipe, model, None if no_train else budget)
    scratch = Path(tempfile.mkdtemp(prefix="hf-autoresearch-larger-"))
    try:
        model_dir = (
            _local_model(model) if no_train else _train(recipe, folder, config, model, budget, scratch, result, log)
        )
        if model_dir is not None:
            _evaluate(recipe, folder, model_dir, scratch, result, log)
            params = count_parameters(model_dir)
            result["num_params"], result["params_M"] = params, params / 1e6 if params else None
            if not no_train and result["status"] == "ok":
                result["model_dir"] = str(_keep(model_dir, folder / "models" / "larger-baseline"))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    result["total_seconds"] = time.monotonic() - started
    result["finished_at"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    (folder / LARGER_BASELINE_FILE).write_text(json.dumps(result, indent=2))
    scores = "".join(f", {s} {result[s]:.4f}" for s in ("selection", "holdout") if result.get(s) is not None)
    log(f"larger model {model}: {result['status']}{scores}")
    return result


def _check_request(recipe, config: dict, model: str | None, no_train: bool, data: str | None) -> str:
    """The larger model to score; errors for what cannot work (other data than the run's, no model, --no-train on a
    task whose models must be trained)."""
    if data and str(Path(data).expanduser().resolve() if Path(data).expanduser().exists() else data) != config["data"]:
        raise LargerModelError(
            f"run {config['tag']} was split from {config['data']}; the larger model must use the same splits "
            f"(drop --data, or start a run on {data})"
        )
    model = model or recipe.model.baseline
    if not model:
        raise LargerModelError(f"{recipe.path / 'recipe.toml'}: no [model] baseline; set it, or pass --model")
    if no_train and not get_task(recipe.task).scores_untrained:
        raise LargerModelError(
            f"--no-train needs a model that already does the task; a {recipe.task} model must be trained first"
        )
    return model


def _fresh_result(folder: Path, config: dict, recipe, model: str, budget: float | None) -> dict:
    """larger-baseline.json before anything ran (budget None: evaluated only)."""
    return {
        "run": str(folder),
        "model": model,
        "trained": budget is not None,
        "budget": budget,
        "seed": config["seed"],
        "metric": recipe.metric.name,
        "direction": recipe.metric.direction,
        "status": "ok",
        "reason": "",
        "commit": "",
        "scores": {},
        "train_seconds": 0.0,
        "training_seconds": None,
        "summary": {},
    }


def _keep(model_dir: str, kept: Path) -> Path:
    """Move the trained larger model into the run folder (models/larger-baseline), replacing an earlier one."""
    shutil.rmtree(kept, ignore_errors=True)
    kept.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(model_dir, kept)
    return kept


def _train(
    recipe, folder: Path, config: dict, model: str, budget: float, scratch: Path, result: dict, log
) -> str | None:
    base = next((r for r in Ledger(folder).records() if r.number == 0), None)
    if base is None or not base.commit:
        raise LargerModelError(
            f"run {config['tag']} has no baseline experiment yet; finish it first: hf-autoresearch run --resume "
            f"--tag {config['tag']}"
        )
    result["commit"] = base.commit
    train_py = scratch / "baseline-train.py"
    train_py.write_text(git(Path(config["repo"]), "show", f"{base.commit}:{config['recipe_rel']}/train.py"))
    model = str(Path(model).expanduser().resolve()) if Path(model).expanduser().exists() else model
    log(f"training the larger baseline {model} with train.py of {base.commit[:8]} for up to {budget:.0f} s")
    job = TrainingJob(
        train_py=train_py,
        scratch=scratch / "job",
        train_data=folder / "splits" / "train",
        model=model,
        seed=config["seed"],
        budget_seconds=budget,
        grace_seconds=config["grace"],
        log_path=folder / "logs" / "larger-baseline.log",
        accelerate_args=tuple(config.get("accelerate_args", [])),
    )
    trained = run_training(job)
    result["train_seconds"] = trained.seconds
    result["log"] = str(job.log_path)
    try:
        result["summary"] = json.loads((trained.output_dir / "summary.json").read_text())
        result["training_seconds"] = result["summary"].get("training_seconds")
    except (OSError, json.JSONDecodeError):
        pass
    if trained.status != "ok":
        result["status"] = trained.status
        result["reason"] = f"training ended in {trained.status}; see {job.log_path}\n{trained.log_tail}"
        return None
    return str(trained.output_dir)


def _evaluate(recipe, folder: Path, model_dir: str, scratch: Path, result: dict, log) -> None:
    seconds = {}
    with Evaluator(
        eval_setup(recipe.task, folder / "splits", metric_path(recipe.metric.module), recipe.metric.options),
        scratch / "eval",
    ) as evaluation:
        for split in ("selection", "holdout"):
            log(f"  evaluating the larger baseline on {split}")
            try:
                scored = evaluation.score(model_dir, folder / "splits" / f"{split}.jsonl")
            except EvaluationError as err:
                result["status"], result["reason"] = "crash", str(err)
                return
            result["scores"][split] = scored["scores"]
            result[split] = float(scored["scores"][recipe.metric.name])
            seconds[split] = scored["wall_seconds"]
    result["eval_seconds"] = seconds
