"""The console script `hf-autoresearch`. Heavy imports live inside the subcommands so --help is instant."""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from pathlib import Path

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
    run.add_argument("--agent", choices=["replay"], default="replay", help="what proposes the edits")
    run.add_argument("--patches", help="folder of *.patch files for --agent replay")
    run.add_argument("--budget", type=float, help="training seconds per experiment (default: the recipe's)")
    run.add_argument("--grace", type=float, help="seconds past the budget before a run is killed")
    run.add_argument("--max-experiments", type=int, help="stop when the run holds N experiments after the baseline")
    run.add_argument("--hours", type=float, help="stop starting new experiments after H hours")
    run.add_argument("--model", help="base model: Hub id or local folder (default: the recipe's)")
    run.add_argument("--data", help="data: Hub id or local folder with train.* and test.* (default: the recipe's)")
    run.add_argument("--seed", type=int, default=0, help="the seed the harness gives train.py")
    run.add_argument("--min-delta", type=float, help="a keep must beat the best by more than this")
    run.add_argument("--run-dir", default=DEFAULT_RUN_DIR, help="where runs live (default: %(default)s)")
    run.add_argument("--resume", action="store_true", help="continue the run named by --tag (default: the latest)")

    status = sub.add_parser("status", help="print a run's experiments as a table")
    status.add_argument("tag", nargs="?", help="the run (default: the latest)")
    status.add_argument("--run-dir", default=DEFAULT_RUN_DIR)

    recipes = sub.add_parser("recipes", help="list and validate the recipes under a folder")
    recipes.add_argument("root", nargs="?", default="recipes", help="folder of recipes (default: %(default)s)")
    return parser


def latest_tag(run_dir: Path) -> str | None:
    runs = sorted(run_dir.glob("*/run.json"), key=lambda p: p.stat().st_mtime)
    return runs[-1].parent.name if runs else None


def cmd_run(args) -> int:
    from hf_autoresearch.agents import make_agent
    from hf_autoresearch.loop import Run

    run_dir = Path(args.run_dir)
    if args.resume:
        tag = args.tag or latest_tag(run_dir)
        if tag is None:
            raise SystemExit(f"error: no run to resume in {run_dir}")
        run = Run.resume(run_dir, tag, budget=args.budget, grace=args.grace)
        agent_name, patches = run.config.agent, args.patches or run.config.patches
    else:
        if not args.recipe:
            raise SystemExit("error: hf-autoresearch run needs a RECIPE folder (or --resume)")
        tag = args.tag or f"{Path(args.recipe).resolve().name}-{datetime.now():%m%d-%H%M%S}"
        agent_name, patches = args.agent, args.patches
        agent = make_agent(agent_name, patches=patches)  # fail on a bad agent before preparing anything
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
        )
    agent = make_agent(agent_name, patches=patches)
    print(f"run {tag}: branch {run.config.branch}, folder {run.folder}")
    try:
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


COMMANDS = {"run": cmd_run, "status": cmd_status, "recipes": cmd_recipes}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from hf_autoresearch.errors import USER_ERRORS

    try:
        return COMMANDS[args.command](args)
    except USER_ERRORS as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
