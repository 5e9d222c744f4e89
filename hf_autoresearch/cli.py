"""The console script `hf-autoresearch`. Heavy imports live inside the subcommands so --help is instant."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from datetime import datetime
from pathlib import Path

from hf_autoresearch.options import add_arguments, given_options

DEFAULT_RUN_DIR = ".autoresearch"  # RunConfig.run_dir


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hf-autoresearch",
        description="An agent edits a recipe's train.py; each edit trains under a fixed budget, a frozen evaluation "
        "scores it, and git keeps it only if it beat the best.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="start (or --resume) a run of experiments on a recipe")
    add_arguments(run)

    init = sub.add_parser("init", help="write a new recipe folder for a data set (recipe.toml, train.py, ...)")
    init.add_argument("folder", help="the recipe folder to create, e.g. recipes/my-intents")
    init.add_argument("--task", default="classification", help="task type (default: %(default)s)")
    init.add_argument("--data", required=True, help="Hub dataset id or local folder with train.* and test.*")
    init.add_argument("--model", required=True, help="base model: Hub id or local folder")
    init.add_argument("--metric", help="metric key that decides (default: the task's)")
    init.add_argument("--metric-module", help="metric module under hf_autoresearch/metrics (default: the task's)")
    init.add_argument("--text-column", default="text", help="the source's input column (default: %(default)s)")
    init.add_argument("--label-column", default="label", help="the source's target column (default: %(default)s)")
    init.add_argument("--query-column", default="query", help="ranking: the source's query column")
    init.add_argument(
        "--document-column",
        action="append",
        dest="document_columns",
        metavar="COLUMN",
        help="ranking: a column of the document (repeat it: title, then description)",
    )
    init.add_argument(
        "--gain",
        action="append",
        default=[],
        metavar="LABEL=GAIN",
        help="ranking: an integer gain for a label (repeat it), e.g. --gain Exact=3 --gain Irrelevant=0",
    )
    init.add_argument("--group-column", default="", help="split by this column's groups (e.g. a product id)")
    init.add_argument("--encoding", default="utf-8", help="text encoding of local csv files (default: %(default)s)")
    init.add_argument("--baseline-model", default="", help="a larger model to compare against")
    init.add_argument("--budget", type=int, default=300, help="training seconds per experiment (default: %(default)s)")
    init.add_argument("--force", action="store_true", help="overwrite the files of an existing folder")

    baseline = sub.add_parser(
        "baseline", help="train (or only evaluate) a larger model beside a run, for status to compare against"
    )
    baseline.add_argument("recipe", help="recipe folder, e.g. recipes/query-expansion")
    baseline.add_argument("--model", help="the larger model: Hub id or local folder (default: the recipe's baseline)")
    baseline.add_argument("--budget", type=float, help="training seconds (default: the run's budget)")
    baseline.add_argument("--no-train", action="store_true", help="evaluate the model as it is (an instruct model)")
    baseline.add_argument("--tag", help="the run to compare against (default: the latest run of the recipe)")
    baseline.add_argument("--data", help="must be the run's data: the baseline uses the run's splits")
    baseline.add_argument("--run-dir", default=DEFAULT_RUN_DIR, help="where runs live (default: %(default)s)")

    classical = sub.add_parser(
        "classical",
        help="score classical lines beside a run (TF-IDF + logistic regression; BM25 and the untrained model)",
    )
    classical.add_argument("recipe", help="recipe folder, e.g. recipes/search-ranking")
    classical.add_argument("--tag", help="the run (default: the latest run of the recipe)")
    classical.add_argument(
        "--no-untrained", action="store_true", help="ranking: skip scoring the recipe's model untrained"
    )
    classical.add_argument("--run-dir", default=DEFAULT_RUN_DIR, help="where runs live (default: %(default)s)")

    status = sub.add_parser("status", help="print a run's experiments as a table")
    status.add_argument("tag", nargs="?", help="the run (default: the latest)")
    status.add_argument("--run-dir", default=DEFAULT_RUN_DIR)

    push = sub.add_parser("push", help="push a run's kept experiments to the Hub (those not pushed yet)")
    push.add_argument("tag", help="the run")
    push.add_argument("--repo", required=True, metavar="OWNER/NAME", help="the Hub model repo")
    push.add_argument("--public", action="store_true", help="create the repo public (default: private)")
    push.add_argument("--promote", action="store_true", help="also put the best experiment on the repo's main")
    push.add_argument("--dry-run", action="store_true", help="say what would be pushed; push nothing")
    push.add_argument("--run-dir", default=DEFAULT_RUN_DIR)

    report = sub.add_parser("report", help="write progress.png, report.md and report.html in a run's folder")
    report.add_argument("tag", nargs="?", help="the run (default: the latest)")
    report.add_argument("--run-dir", default=DEFAULT_RUN_DIR)

    recipes = sub.add_parser("recipes", help="list and validate the recipes under a folder")
    recipes.add_argument("root", nargs="?", default="recipes", help="folder of recipes (default: %(default)s)")
    return parser


def latest_tag(run_dir: Path) -> str | None:
    runs = sorted(run_dir.glob("*/run.json"), key=lambda p: p.stat().st_mtime)
    return runs[-1].parent.name if runs else None


def cmd_run(args) -> int:
    from hf_autoresearch.agents import default_agent
    from hf_autoresearch.driver.loop import Loop
    from hf_autoresearch.driver.run import check_base_model, resume, start
    from hf_autoresearch.executors import make_executor
    from hf_autoresearch.options import RunConfig

    given = given_options(args)
    run_dir = Path(given.get("run_dir", RunConfig.run_dir))
    if given.get("resume"):
        tag = given.get("tag") or latest_tag(run_dir)
        if tag is None:
            raise SystemExit(f"error: no run to resume in {run_dir}")
        run = resume(run_dir, tag, overrides=given)
        config = run.config
        observers, agent = _checked_before_training(config)
    else:
        if not given.get("recipe"):
            raise SystemExit("error: hf-autoresearch run needs a RECIPE folder (or --resume)")
        config = RunConfig(**given)
        config.tag = config.tag or f"{Path(config.recipe).resolve().name}-{datetime.now():%m%d-%H%M%S}"
        config.agent = config.agent or default_agent(config.patches)
        observers, agent = _checked_before_training(config)
        check_base_model(config)  # a model id that does not exist
        run = start(config)
        config = run.config
    executor = make_executor(run)
    print(
        f"run {config.tag}: {config.agent} agent, {executor.workers} worker(s) ({executor.name}), "
        f"branch {config.branch}, folder {run.folder}"
    )
    loop = Loop(run, agent, executor)
    try:
        with observers.attach(loop, config):
            loop.run_experiments(max_experiments=config.max_experiments, hours=config.hours)
    except KeyboardInterrupt:
        print(
            f"\ninterrupted: the experiments in flight were stopped and not recorded; the ledger is consistent.\n"
            f"continue with (it runs them again): hf-autoresearch run --resume --tag {config.tag} "
            f"--run-dir {config.run_dir}",
            file=sys.stderr,
        )
        return 130
    finally:
        executor.close()
    from hf_autoresearch.reporting.status import print_status

    print_status(run.folder)
    return 0


def _checked_before_training(config):
    """Fail in seconds on a bad agent (options, API key), executor, Hub token or tracker, before any data is prepared
    or model trained; returns the loop's observers and the agent."""
    from hf_autoresearch.agents import make_agent
    from hf_autoresearch.executors import check_executor
    from hf_autoresearch.integrations import LoopObservers

    observers = LoopObservers.from_args(config)
    agent = make_agent(config.agent, patches=config.patches, seed=config.seed, **config.agent_options)
    agent.check()
    check_executor(config)
    return observers, agent


def cmd_init(args) -> int:
    from hf_autoresearch.new_recipe import init_recipe

    init_recipe(
        Path(args.folder),
        task=args.task,
        data=args.data,
        model=args.model,
        metric=args.metric,
        metric_module=args.metric_module,
        text_column=args.text_column,
        label_column=args.label_column,
        query_column=args.query_column,
        document_columns=args.document_columns,
        gains=_gains(args.gain),
        group_column=args.group_column,
        encoding=args.encoding,
        baseline_model=args.baseline_model,
        budget=args.budget,
        force=args.force,
    )
    return 0


def _gains(pairs: list[str]) -> dict[str, int]:
    gains = {}
    for pair in pairs:
        label, sep, gain = pair.rpartition("=")
        if not sep or not label or not gain.strip().isdigit():
            raise SystemExit(f"error: --gain {pair!r}: write LABEL=GAIN with a whole number >= 0, e.g. Exact=3")
        gains[label] = int(gain)
    return gains


def cmd_classical(args) -> int:
    from hf_autoresearch.classical import run_classical

    run_classical(Path(args.recipe), Path(args.run_dir), args.tag, untrained=not args.no_untrained)
    return 0


def cmd_status(args) -> int:
    from hf_autoresearch.reporting.status import print_status

    run_dir = Path(args.run_dir)
    tag = args.tag or latest_tag(run_dir)
    if tag is None or not (run_dir / tag / "run.json").is_file():
        raise SystemExit(f"error: no run {tag or ''} in {run_dir}".replace("  ", " "))
    print_status(run_dir / tag)
    return 0


def cmd_recipes(args) -> int:
    from hf_autoresearch.recipe import RecipeError, find_recipes, load_recipe

    folders = find_recipes(args.root)
    if not folders:
        raise SystemExit(f"error: no recipes (folders with recipe.toml) under {args.root}")
    failed = 0
    for folder in folders:
        try:
            r = load_recipe(folder)
        except RecipeError as err:
            failed += 1
            print(f"✗ {folder.name}: {err}")
            continue
        print(
            f"✓ {r.name:<24} {r.task:<15} {r.model.name}  metric {r.metric.name} ({r.metric.direction}), "
            f"budget {r.budget.seconds} s"
        )
    return 1 if failed else 0


def _run_folder(run_dir: str, tag: str | None) -> Path:
    tag = tag or latest_tag(Path(run_dir))
    if tag is None or not (Path(run_dir) / tag / "run.json").is_file():
        raise SystemExit(f"error: no run {tag or ''} in {run_dir}; `hf-autoresearch status` lists the runs")
    return Path(run_dir) / tag


def cmd_push(args) -> int:
    from hf_autoresearch.hub import HubPublisher

    publisher = HubPublisher(
        _run_folder(args.run_dir, args.tag),
        args.repo,
        private=not args.public,
        promote=args.promote,
        dry_run=args.dry_run,
        endpoint=os.environ.get("HF_ENDPOINT"),
    )
    publisher.prepare()
    entries = publisher.push_missing()
    failures = publisher.close(promote=args.promote)
    if not args.dry_run:
        failed = f", {len(failures)} failed" if failures else ""
        print(f"{len(entries)} experiment(s) pushed to {args.repo}{failed}")
    return 1 if failures else 0


def cmd_report(args) -> int:
    from hf_autoresearch.reporting.report import write_report

    paths = write_report(_run_folder(args.run_dir, args.tag))
    print("\n".join(f"wrote {p}" for p in paths.values()))
    return 0


def cmd_baseline(args) -> int:
    from hf_autoresearch.larger_model import score_larger_model

    result = score_larger_model(
        Path(args.recipe),
        Path(args.run_dir),
        tag=args.tag,
        model=args.model,
        budget=args.budget,
        no_train=args.no_train,
        data=args.data,
    )
    from hf_autoresearch.reporting.status import print_status

    print_status(Path(args.run_dir).resolve() / Path(result["run"]).name)
    return 0 if result["status"] == "ok" else 1


COMMANDS = {
    "run": cmd_run,
    "init": cmd_init,
    "status": cmd_status,
    "recipes": cmd_recipes,
    "push": cmd_push,
    "report": cmd_report,
    "baseline": cmd_baseline,
    "classical": cmd_classical,
}


def _interrupt_on_sigterm():
    """`kill` or a scheduler's SIGTERM stops a run like Ctrl-C: the experiment dies, the ledger stays consistent."""

    def handler(signum, frame):
        raise KeyboardInterrupt

    return signal.signal(signal.SIGTERM, handler)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    previous = None
    if args.command == "run" and threading.current_thread() is threading.main_thread():
        previous = _interrupt_on_sigterm()
    from hf_autoresearch.errors import USER_ERRORS

    try:
        return COMMANDS[args.command](args)
    except USER_ERRORS as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    finally:
        if previous is not None:  # main() may be called in a longer-lived process (tests, notebooks)
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
