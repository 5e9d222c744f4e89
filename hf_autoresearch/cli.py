"""The console script `hf-autoresearch`. Heavy imports live inside the subcommands so --help is instant."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from datetime import datetime
from pathlib import Path

from hf_autoresearch.integrations import RunExtras, add_run_options

DEFAULT_RUN_DIR = ".autoresearch"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hf-autoresearch",
        description="An agent edits a recipe's train.py; each edit trains under a fixed budget, a frozen evaluation "
        "scores it, and git keeps it only if it beat the best.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="start (or --resume) a run of experiments on a recipe")
    run.add_argument("recipe", nargs="?", help="recipe folder, e.g. recipes/intent-categorization")
    run.add_argument("--tag", help="name of the run (default: <recipe>-<date>); its branch is autoresearch/<tag>")
    run.add_argument(
        "--agent",
        choices=["claude", "optuna", "replay"],
        help="what proposes the edits (default: replay with --patches, else claude when ANTHROPIC_API_KEY is set, "
        "else optuna)",
    )
    run.add_argument("--patches", help="folder of *.patch files for --agent replay")
    run.add_argument("--agent-model", help="Anthropic model id for --agent claude (default: claude-sonnet-5-5)")
    run.add_argument("--max-agent-turns", type=int, help="tool turns per proposal for --agent claude (default: 30)")
    run.add_argument("--max-agent-dollars", type=float, help="stop the run once the agent's API cost reaches this")
    run.add_argument("--agent-prices", help="JSON file of model prices in $ per million tokens (see README)")
    run.add_argument("--budget", type=float, help="training seconds per experiment (default: the recipe's)")
    run.add_argument("--grace", type=float, help="seconds past the budget before a run is killed")
    run.add_argument("--max-experiments", type=int, help="stop when the run holds N experiments after the baseline")
    run.add_argument("--hours", type=float, help="stop starting new experiments after H hours")
    run.add_argument("--model", help="base model: Hub id or local folder (default: the recipe's)")
    run.add_argument("--data", help="data: Hub id or local folder with train.* and test.* (default: the recipe's)")
    run.add_argument("--seed", type=int, default=0, help="the seed the harness gives train.py")
    run.add_argument("--min-delta", type=float, help="a keep must beat the best by more than this")
    honest = run.add_argument_group("honest evaluation (see README: How a keep is decided)")
    honest.add_argument(
        "--baseline-repeats",
        type=int,
        default=3,
        help="baseline runs with other seeds, for the noise floor (default: %(default)s)",
    )
    honest.add_argument(
        "--noise-z", type=float, help="keep only gains above z times the noise std (default: the recipe's, 2)"
    )
    honest.add_argument(
        "--confirm",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="re-train a would-be keep with a fresh seed; keep it only if the mean still clears the "
        "threshold (default: on)",
    )
    honest.add_argument(
        "--contamination",
        choices=["drop", "fail", "warn"],
        default="drop",
        help="training rows that duplicate selection/holdout rows: drop them (default), stop, or warn",
    )
    honest.add_argument(
        "--contamination-threshold",
        type=float,
        default=0.8,
        help="word 3-gram Jaccard similarity from which two rows are near-duplicates",
    )
    honest.add_argument(
        "--sandbox",
        action="store_true",
        help="train under bubblewrap: the run folder, the data "
        "source and the datasets cache are not visible to train.py",
    )
    run.add_argument("--run-dir", default=DEFAULT_RUN_DIR, help="where runs live (default: %(default)s)")
    run.add_argument("--resume", action="store_true", help="continue the run named by --tag (default: the latest)")
    add_run_options(run)

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


AGENT_OPTIONS = ("agent_model", "max_agent_turns", "max_agent_dollars", "agent_prices")


def cmd_run(args) -> int:
    from hf_autoresearch.agents import default_agent, make_agent
    from hf_autoresearch.loop import Run

    run_dir = Path(args.run_dir)
    extras = RunExtras.from_args(args)  # a missing Hub token or tracker fails here, before any training
    options = {k: getattr(args, k) for k in AGENT_OPTIONS if getattr(args, k) is not None}
    if "agent_prices" in options:  # run.json keeps it for --resume, from whatever folder that runs in
        options["agent_prices"] = str(Path(options["agent_prices"]).resolve())
    if args.resume:
        tag = args.tag or latest_tag(run_dir)
        if tag is None:
            raise SystemExit(f"error: no run to resume in {run_dir}")
        run = Run.resume(run_dir, tag, budget=args.budget, grace=args.grace)
        agent_name, patches = run.config.agent, args.patches or run.config.patches
        options = {**run.config.agent_options, **options}
    else:
        if not args.recipe:
            raise SystemExit("error: hf-autoresearch run needs a RECIPE folder (or --resume)")
        tag = args.tag or f"{Path(args.recipe).resolve().name}-{datetime.now():%m%d-%H%M%S}"
        agent_name, patches = args.agent or default_agent(args.patches), args.patches
        agent = make_agent(agent_name, patches=patches, seed=args.seed, **options)
        agent.check()  # fail on a bad agent (options, API key) before preparing anything
        run = Run.start(
            Path(args.recipe),
            run_dir,
            tag,
            agent=agent_name,
            model=args.model,
            data=args.data,
            budget=args.budget,
            grace=args.grace,
            seed=args.seed,
            min_delta=args.min_delta,
            patches=patches or "",
            agent_options=options,
            baseline_repeats=args.baseline_repeats,
            noise_z=args.noise_z,
            confirm=args.confirm,
            contamination=args.contamination,
            contamination_threshold=args.contamination_threshold,
            sandbox=args.sandbox,
        )
    agent = make_agent(agent_name, patches=patches, seed=run.config.seed, **options)
    if args.resume:
        agent.check()
    print(f"run {tag}: {agent_name} agent, branch {run.config.branch}, folder {run.folder}")
    try:
        with extras.attach(run, args):
            run.loop(agent, max_experiments=args.max_experiments, hours=args.hours)
    except KeyboardInterrupt:
        print(
            f"\ninterrupted: the running experiment was stopped and not recorded; the ledger is consistent.\n"
            f"continue with: hf-autoresearch run --resume --tag {tag} --run-dir {args.run_dir}",
            file=sys.stderr,
        )
        return 130
    from hf_autoresearch.status import print_status

    print_status(run.folder)
    return 0


def cmd_status(args) -> int:
    from hf_autoresearch.status import print_status

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
    from hf_autoresearch.report import write_report

    paths = write_report(_run_folder(args.run_dir, args.tag))
    print("\n".join(f"wrote {p}" for p in paths.values()))
    return 0


def cmd_baseline(args) -> int:
    from hf_autoresearch.baseline import run_baseline

    result = run_baseline(
        Path(args.recipe),
        Path(args.run_dir),
        tag=args.tag,
        model=args.model,
        budget=args.budget,
        no_train=args.no_train,
        data=args.data,
    )
    from hf_autoresearch.status import print_status

    print_status(Path(args.run_dir).resolve() / Path(result["run"]).name)
    return 0 if result["status"] == "ok" else 1


COMMANDS = {"run": cmd_run, "status": cmd_status, "recipes": cmd_recipes, "push": cmd_push, "report": cmd_report}
COMMANDS["baseline"] = cmd_baseline


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
