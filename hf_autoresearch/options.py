"""The run's options, defined once: a dataclass with help text that becomes `hf-autoresearch run`'s flags and is
stored as the run's run.json, which `--resume` reads back (TRL-style config, in a few lines of our own).

A field's metadata says how it appears on the command line: `help` (shown by --help), `choices`, `group`, and
`resume` (True: a resumed run may change it, e.g. --budget; otherwise the run keeps what it started with).
Fields without `help` are filled in by the harness when the run starts (the git repository, the branch...).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from hf_autoresearch.errors import UserError

RUN_FILE = "run.json"
# run.json layout. 1 (no "version" key): agent options nested in `agent_options`; 2: the tamper check hashes every
# file of the package; 3: the package's modules moved into driver/, executors/ and reporting/ (the hashes are keyed
# by path, so a resume re-hashes); 4: keeps are a t-test at --false-keep-rate, every keep is re-measured (--noise-z
# retired; the decisions of an older run stand as recorded, its new experiments are judged by the new rule)
VERSION = 4
NOISE_Z_RETIRED = (
    "--noise-z is retired: a keep is now a one-sided t-test whose false-keep rate you set with --false-keep-rate "
    "(default 0.01). The old rule, gain > z * the baseline's std, kept about 5.8% of edits with no effect at z = 2; "
    "see docs/keep-rule.md"
)


def _opt(help: str, default=None, resume: bool = False, group: str = "run", **extra):
    return field(default=default, metadata={"help": help, "resume": resume, "group": group, **extra})


@dataclass
class RunConfig:
    # --- what to run ----------------------------------------------------------------------------------------
    recipe: str = _opt("recipe folder, e.g. recipes/intent-categorization", positional=True)
    tag: str = _opt("name of the run (default: <recipe>-<date>); its branch is autoresearch/<tag>")
    agent: str = _opt(
        "what proposes the edits (default: replay with --patches, else claude when ANTHROPIC_API_KEY is set, "
        "else optuna)",
        choices=("claude", "optuna", "replay"),
    )
    patches: str = _opt("folder of *.patch files for --agent replay", resume=True)
    model: str = _opt("base model: Hub id or local folder (default: the recipe's)")
    data: str = _opt("data: Hub id or local folder with train.* and test.* (default: the recipe's)")
    data_profile: str = _opt(
        "the recipe's [data.profiles.NAME] to read --data with (another source's column names), e.g. crowdflower"
    )
    budget: float = _opt("training seconds per experiment (default: the recipe's)", resume=True)
    grace: float = _opt("seconds past the budget before a run is killed (default: the recipe's)", resume=True)
    max_experiments: int = _opt("stop when the run holds N experiments after the baseline", resume=True)
    hours: float = _opt("stop starting new experiments after H hours (of this session)", resume=True)
    seed: int = _opt("the seed the harness gives train.py", default=0)
    run_dir: str = _opt("where runs live", default=".autoresearch")
    resume: bool = _opt("continue the run named by --tag (default: the latest)", default=False, resume=True)
    # --- the agent ------------------------------------------------------------------------------------------
    agent_model: str = _opt(
        "Anthropic model id for --agent claude (default: claude-sonnet-5-5)", resume=True, group="agent"
    )
    max_agent_turns: int = _opt("tool turns per proposal for --agent claude (default: 30)", resume=True, group="agent")
    max_agent_dollars: float = _opt("stop the run once the agent's API cost reaches this", resume=True, group="agent")
    agent_prices: str = _opt(
        "JSON file of model prices in $ per million tokens (see docs/agents.md)", resume=True, group="agent"
    )
    agent_effort: str = _opt(
        "effort for --agent claude (default: medium)",
        choices=("low", "medium", "high", "max"),
        resume=True,
        group="agent",
    )
    agent_thinking: str = _opt(
        "thinking for --agent claude: adaptive (default), between_tools, disabled, or a token budget >= 1024",
        resume=True,
        group="agent",
    )
    max_invalid_streak: int = _opt(
        "stop the run (resumable) after this many invalid proposals in a row; 0 never stops (default: 5)",
        resume=True,
        group="agent",
    )
    optuna_sampler: str = _opt("sampler of --agent optuna (default: tpe)", choices=("tpe", "random"), group="agent")
    optuna_startup_trials: int = _opt(
        "random trials before TPE models the space, the baseline included (default: 3)", group="agent"
    )
    # --- honest evaluation ------------------------------------------------------------------------------------
    min_delta: float = _opt("a keep must beat the best by more than this (default: the recipe's)", group="honest")
    baseline_repeats: int = _opt(
        "K: runs of the baseline, and of every keep once decided (fresh seeds): the score to beat and the noise",
        default=5,
        group="honest",
    )
    false_keep_rate: float = _opt(
        "the chance that an edit with no effect is kept, per experiment (a one-sided t-test; docs/keep-rule.md)",
        default=0.01,
        group="honest",
    )
    noise_z: float = _opt("retired: use --false-keep-rate", group="honest")
    confirm: bool = _opt(
        "a first run that clears the screen trains twice more and the mean decides; --no-confirm: the first run's "
        "test is final (same false-keep rate, less power)",
        default=True,
        group="honest",
    )
    contamination: str = _opt(
        "training rows that duplicate selection/holdout rows: drop them, stop, or warn",
        default="drop",
        choices=("drop", "fail", "warn"),
        group="honest",
    )
    contamination_threshold: float = _opt(
        "word 3-gram Jaccard similarity from which two rows are near-duplicates", default=0.8, group="honest"
    )
    sandbox: bool = _opt(
        "train under bubblewrap: the run folder, the data source and the datasets cache are hidden from train.py",
        default=False,
        group="honest",
    )
    # --- parallel experiments -----------------------------------------------------------------------------------
    workers: int = _opt(
        "experiments trained at once (default: one per visible GPU / --gpus-per-experiment, 1 without a GPU)",
        resume=True,
        group="parallel",
    )
    gpus_per_experiment: int = _opt(
        "GPUs each experiment trains on (accelerate launch --num_processes K when K > 1)",
        default=1,
        resume=True,
        group="parallel",
    )
    executor: str = _opt(
        "where trials run: subprocesses on this machine, or Ray tasks (pip install 'hf-autoresearch[ray]')",
        default="local",
        choices=("local", "ray"),
        resume=True,
        group="parallel",
    )
    ray_address: str = _opt(
        "the Ray cluster to join with --executor ray, e.g. auto or ray://HEAD:10001 (default: a local Ray)",
        resume=True,
        group="parallel",
    )
    # --- publishing and tracking --------------------------------------------------------------------------------
    push_to_hub: str = _opt("push every kept experiment to this Hub model repo (OWNER/NAME)", resume=True, group="hub")
    public: bool = _opt("create the Hub repo public (default: private)", default=False, resume=True, group="hub")
    promote: bool = _opt(
        "at the end, put the best experiment on the repo's main", default=False, resume=True, group="hub"
    )
    dry_run: bool = _opt("say what --push-to-hub would push; push nothing", default=False, resume=True, group="hub")
    tracker: str = _opt(
        "also log every experiment to a local trackio project", choices=("trackio",), resume=True, group="hub"
    )
    # --- filled in when the run starts ------------------------------------------------------------------------
    task: str = ""
    repo: str = ""  # the user's git repository
    recipe_rel: str = ""  # the recipe folder relative to the repository root
    branch: str = ""
    started_at: str = ""
    accelerate_args: list[str] = field(default_factory=list)
    evaluation_hashes: dict = field(default_factory=dict)  # sha256 of the evaluation code at run start
    version: int = VERSION

    # --- run.json ------------------------------------------------------------------------------------------------
    def save(self, folder: Path) -> None:
        tmp = Path(folder) / (RUN_FILE + ".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2))
        tmp.replace(Path(folder) / RUN_FILE)

    @classmethod
    def load(cls, folder: Path) -> RunConfig:
        """Read run.json, also as written by earlier versions."""
        file = Path(folder) / RUN_FILE
        try:
            data = json.loads(file.read_text())
        except (OSError, json.JSONDecodeError) as err:
            raise UserError(f"{file}: cannot read the run's configuration ({err})") from err
        data.setdefault("version", 1)
        data.update(data.pop("agent_options", None) or {})  # version 1 nested the agent's options
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise UserError(
                f"{file}: unknown keys {', '.join(unknown)}; the run was made by a newer hf-autoresearch: upgrade it"
            )
        return cls(**data)

    def with_overrides(self, given: dict) -> RunConfig:
        """This configuration with options given again on a --resume command line; refuses those fixed at start."""
        fixed = sorted(k for k, v in given.items() if not _field(k).metadata.get("resume") and getattr(self, k) != v)
        fixed = [k for k in fixed if k not in ("recipe", "tag", "run_dir")]
        if fixed:
            flags = ", ".join("--" + k.replace("_", "-") for k in fixed)
            raise UserError(
                f"{flags} cannot change when a run is resumed (it would compare unlike experiments); "
                "start a new run with another --tag instead"
            )
        return dataclasses.replace(self, **{k: v for k, v in given.items() if k not in ("recipe", "tag", "run_dir")})

    @property
    def agent_options(self) -> dict:
        """The options `agents.make_agent` takes, under its names."""
        names = {
            "agent_model": "agent_model",
            "max_agent_turns": "max_agent_turns",
            "max_agent_dollars": "max_agent_dollars",
            "agent_prices": "agent_prices",
            "agent_effort": "effort",
            "agent_thinking": "thinking",
            "max_invalid_streak": "max_invalid_streak",
            "optuna_sampler": "sampler",
            "optuna_startup_trials": "startup_trials",
        }
        options = {arg: getattr(self, field) for field, arg in names.items() if getattr(self, field) is not None}
        if str(options.get("thinking", "")).isdigit():  # a token budget
            options["thinking"] = int(options["thinking"])
        return options


def _field(name: str) -> dataclasses.Field:
    return next(f for f in dataclasses.fields(RunConfig) if f.name == name)


GROUPS = {
    "agent": "the agent",
    "honest": "honest evaluation (see docs/keep-rule.md)",
    "parallel": "parallel experiments (see docs/parallel.md)",
    "hub": "publishing and tracking",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """One flag per option field. Flags not given are absent from the parsed namespace (argparse.SUPPRESS)."""
    groups = {name: parser.add_argument_group(title) for name, title in GROUPS.items()}
    for f in dataclasses.fields(RunConfig):
        meta = f.metadata
        if "help" not in meta:
            continue
        target = groups.get(meta["group"], parser)
        help_text = meta["help"] + (f" (default: {f.default})" if f.default not in (None, False, "") else "")
        if meta.get("positional"):
            target.add_argument(f.name, nargs="?", default=argparse.SUPPRESS, help=meta["help"])
            continue
        flag = "--" + f.name.replace("_", "-")
        kind = {"bool": None, "int": int, "float": float, "str": str}[str(f.type)]
        if kind is None:
            action = argparse.BooleanOptionalAction if f.default else "store_true"
            target.add_argument(flag, action=action, default=argparse.SUPPRESS, help=help_text)
        else:
            target.add_argument(
                flag, type=kind, choices=meta.get("choices"), default=argparse.SUPPRESS, help=help_text
            )


def given_options(args: argparse.Namespace) -> dict:
    """The options given on the command line, as RunConfig field values."""
    names = {f.name for f in dataclasses.fields(RunConfig) if "help" in f.metadata}
    return {k: v for k, v in vars(args).items() if k in names}


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
