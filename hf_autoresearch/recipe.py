"""recipe.toml -> small dataclasses. Unknown keys, missing fields and bad values are errors that name the fix."""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from hf_autoresearch.errors import UserError

DIRECTIONS = ("maximize", "minimize")
RECIPE_FILES = ("recipe.toml", "train.py", "program.md")


class RecipeError(UserError, ValueError):
    """A recipe that cannot be used, with the file, the key and the fix in its message."""


@dataclass
class ModelConfig:
    name: str = field(metadata={"help": "base model: Hub id or local folder (--model overrides)"})
    baseline: str = field(default="", metadata={"help": "a larger model to compare the best experiment against"})


@dataclass
class DataConfig:
    source: str = field(metadata={"help": "Hub dataset id or local folder with train.* and test.* (--data overrides)"})
    text_column: str = field(default="text", metadata={"help": "column holding the input text"})
    label_column: str = field(default="label", metadata={"help": "column holding the target"})
    selection_fraction: float = field(
        default=0.1, metadata={"help": "share of train carved out as the selection split, in (0, 0.5]"}
    )
    split_seed: int = field(default=0, metadata={"help": "seed of the train/selection carve; fixed for a run"})
    holdout_fraction: float = field(
        default=0.1, metadata={"help": "share carved out as the holdout when the source has no test split"}
    )
    max_eval_rows: int = field(
        default=0, metadata={"help": "at most this many selection and holdout rows (seeded sample); 0 keeps all"}
    )
    group_column: str = field(
        default="",
        metadata={"help": "split by this column's groups (a product id): a group never lands on two splits"},
    )
    encoding: str = field(default="utf-8", metadata={"help": "text encoding of local csv / jsonl files"})
    where: dict = field(
        default_factory=dict, metadata={"help": 'keep only rows whose columns equal these values, e.g. {lang = "en"}'}
    )
    # ranking
    query_column: str = field(default="query", metadata={"help": "ranking: the column holding the query"})
    document_columns: list[str] = field(
        default_factory=lambda: ["document"],
        metadata={"help": "ranking: the columns joined into the document (title, description...)"},
    )
    gains: dict = field(
        default_factory=dict,
        metadata={"help": "ranking: label -> integer gain, e.g. {Exact = 3, Irrelevant = 0}; {} uses the label"},
    )
    max_queries: int = field(
        default=0, metadata={"help": "ranking: at most this many queries per split (seeded sample); 0 keeps all"}
    )
    profiles: dict = field(
        default_factory=dict,
        metadata={"help": "named sets of [data] keys for other sources, chosen with run --data-profile NAME"},
    )

    def with_profile(self, name: str | None) -> DataConfig:
        """These settings with profile `name`'s keys over them (None or "": unchanged)."""
        if not name:
            return self
        if name not in self.profiles:
            known = ", ".join(sorted(self.profiles)) or "none"
            raise RecipeError(f"no data profile {name!r} in the recipe's [data.profiles] (known: {known})")
        return dataclasses.replace(self, **self.profiles[name], profiles={})


@dataclass
class MetricConfig:
    module: str = field(
        default="",
        metadata={"help": "evaluate module under hf_autoresearch/metrics or a path to one (default: the task's)"},
    )
    name: str = field(default="", metadata={"help": "the key of the module's result that decides keep/discard"})
    direction: str = field(default="maximize", metadata={"help": "maximize or minimize"})
    min_delta: float = field(default=0.0, metadata={"help": "a keep must beat the best by more than this"})
    noise_z: float = field(
        default=2.0, metadata={"help": "a keep must beat the best by more than noise_z times the baseline's std"}
    )
    options: dict = field(
        default_factory=dict, metadata={"help": 'keyword arguments for the metric, e.g. {positive_label = "spam"}'}
    )


@dataclass
class BudgetConfig:
    seconds: int = field(default=300, metadata={"help": "wall-clock seconds of training per experiment"})
    grace_seconds: int = field(
        default=60, metadata={"help": "extra seconds before the harness kills a run that overran"}
    )


@dataclass
class AccelerateConfig:
    args: list[str] = field(default_factory=list, metadata={"help": "extra `accelerate launch` arguments"})


@dataclass
class Recipe:
    name: str
    task: str
    model: ModelConfig
    data: DataConfig
    metric: MetricConfig
    description: str = ""
    budget: BudgetConfig = field(default_factory=BudgetConfig)
    accelerate: AccelerateConfig = field(default_factory=AccelerateConfig)
    path: Path = field(default=Path("."), metadata={"internal": True})

    @property
    def train_py(self) -> Path:
        return self.path / "train.py"


_SECTIONS = {
    "model": ModelConfig,
    "data": DataConfig,
    "metric": MetricConfig,
    "budget": BudgetConfig,
    "accelerate": AccelerateConfig,
}


def _build(cls, table: dict, where: str, file: Path):
    """Make dataclass `cls` from a TOML table, failing loudly on unknown, missing or mistyped keys."""
    fields = {f.name: f for f in dataclasses.fields(cls) if not f.metadata.get("internal")}
    unknown = sorted(set(table) - set(fields))
    if unknown:
        raise RecipeError(
            f"{file}: unknown key {where}{unknown[0]}; known keys in [{where.rstrip('.') or 'top level'}]: "
            f"{', '.join(sorted(fields))}"
        )
    values = {}
    for name, f in fields.items():
        if name in _SECTIONS and cls is Recipe:
            continue
        if name not in table:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                help_text = f.metadata.get("help", "")
                raise RecipeError(f"{file}: missing key {where}{name}; add it ({help_text})".rstrip(" ()"))
            continue
        value = table[name]
        expected = {"str": str, "int": int, "float": (int, float), "list[str]": list, "dict": dict}[str(f.type)]
        if not isinstance(value, expected) or (isinstance(value, bool) and str(f.type) != "bool"):
            raise RecipeError(
                f"{file}: {where}{name} must be {f.type}, got {_toml(value)}; write it as {name} = "
                f"{_suggest(value, str(f.type))}"
            )
        values[name] = float(value) if f.type == "float" else value
    return values


_EXAMPLES = {
    "str": '"text"',
    "int": "300",
    "float": "0.1",
    "list[str]": '["--flag", "value"]',
    "dict": '{key = "value"}',
}


def _toml(value) -> str:
    """A value as TOML writes it (what the user typed), for messages."""
    if isinstance(value, bool):
        return str(value).lower()
    return f'"{value}"' if isinstance(value, str) else repr(value)


def _suggest(value, kind: str) -> str:
    """The value in the expected type when it converts (a quoted number), else an example."""
    if isinstance(value, str) and kind in ("int", "float"):
        try:
            return str(int(value) if kind == "int" else float(value))
        except ValueError:
            pass
    if kind == "str" and isinstance(value, int | float) and not isinstance(value, bool):
        return f'"{value}"'
    return _EXAMPLES[kind]


def load_recipe(path: str | Path) -> Recipe:
    """Load and validate `path` (a recipe folder or its recipe.toml)."""
    path = Path(path)
    folder = path.parent if path.name == "recipe.toml" else path
    file = folder / "recipe.toml"
    if not folder.is_dir():
        raise RecipeError(f"{folder}: no such recipe folder; `hf-autoresearch recipes` lists the recipes")
    if not file.is_file():
        raise RecipeError(f"{file}: missing; a recipe folder holds {', '.join(RECIPE_FILES)}")
    try:
        table = tomllib.loads(file.read_text())
    except tomllib.TOMLDecodeError as err:
        raise RecipeError(f"{file}: not valid TOML: {err}; fix the TOML syntax at that line") from err

    top = _build(Recipe, table, "", file)
    sections = {}
    for key, cls in _SECTIONS.items():
        sub = table.get(key, {})
        if not isinstance(sub, dict):
            raise RecipeError(f"{file}: {key} must be a table, written [{key}]")
        if key in ("model", "data") and key not in table:
            raise RecipeError(f"{file}: missing table [{key}]; see recipes/intent-categorization/recipe.toml")
        sections[key] = cls(**_build(cls, sub, f"{key}.", file))
    _check_profiles(table.get("data", {}), file)
    recipe = Recipe(**top, **sections, path=folder.resolve())
    _check_values(recipe, file)
    return recipe


def _check_profiles(data: dict, file: Path) -> None:
    """Each [data.profiles.NAME] table must make a valid [data] table over the recipe's own keys."""
    for name, profile in data.get("profiles", {}).items():
        where = f"data.profiles.{name}."
        if not isinstance(profile, dict):
            raise RecipeError(f"{file}: {where.rstrip('.')} must be a table of [data] keys")
        for key in ("source", "profiles"):
            if key in profile:
                raise RecipeError(f"{file}: {where}{key}: a profile cannot set {key}; pass the source with --data")
        _build(DataConfig, {**data, **profile}, where, file)


def _check_data(data: DataConfig, file: Path) -> None:
    import codecs

    try:
        codecs.lookup(data.encoding)
    except LookupError as err:
        raise RecipeError(f'{file}: data.encoding {data.encoding!r} is not a known codec; e.g. "latin-1"') from err
    if not data.document_columns or not all(isinstance(c, str) and c for c in data.document_columns):
        raise RecipeError(f'{file}: data.document_columns must name at least one column, e.g. ["title"]')
    bad = {k: v for k, v in data.gains.items() if isinstance(v, bool) or not isinstance(v, int) or v < 0}
    if bad:
        label, gain = next(iter(bad.items()))
        raise RecipeError(
            f"{file}: data.gains: {label} = {_toml(gain)}; gains are integers >= 0 (0 for not relevant), as the "
            "ranking metrics (ranx, trec_eval) take them"
        )
    if data.max_queries < 0:
        raise RecipeError(f"{file}: data.max_queries must be >= 0 (0 keeps all queries), got {data.max_queries}")


def _check_values(recipe: Recipe, file: Path) -> None:
    from hf_autoresearch.tasks import UnknownTask, get_task

    try:
        task = get_task(recipe.task)
    except UnknownTask as err:
        raise RecipeError(f"{file}: task = {recipe.task!r}: {err}") from err
    if not recipe.metric.module:  # the task's default metric, or its default module with the key given
        recipe.metric.module = task.default_metric[0]
        recipe.metric.name = recipe.metric.name or task.default_metric[1]
    if not recipe.metric.name:
        raise RecipeError(f"{file}: metric.name is missing; name the key of {recipe.metric.module}'s result")
    if recipe.metric.direction not in DIRECTIONS:
        raise RecipeError(f"{file}: metric.direction must be maximize or minimize, got {recipe.metric.direction!r}")
    if not 0 < recipe.data.selection_fraction <= 0.5:
        raise RecipeError(f"{file}: data.selection_fraction must be in (0, 0.5], got {recipe.data.selection_fraction}")
    if not 0 < recipe.data.holdout_fraction <= 0.5:
        raise RecipeError(f"{file}: data.holdout_fraction must be in (0, 0.5], got {recipe.data.holdout_fraction}")
    if recipe.data.max_eval_rows < 0:
        raise RecipeError(
            f"{file}: data.max_eval_rows must be >= 0 (0 keeps all rows), got {recipe.data.max_eval_rows}"
        )
    _check_data(recipe.data, file)
    for profile in recipe.data.profiles:
        _check_data(recipe.data.with_profile(profile), file)
    if recipe.budget.seconds <= 0 or recipe.budget.grace_seconds < 0:
        raise RecipeError(f"{file}: budget.seconds must be > 0 and budget.grace_seconds >= 0")
    if recipe.metric.min_delta < 0:
        raise RecipeError(f"{file}: metric.min_delta must be >= 0, got {recipe.metric.min_delta}")
    if recipe.name != recipe.path.name:
        raise RecipeError(f"{file}: name = {recipe.name!r} must match the folder name {recipe.path.name!r}")
    for required in ("train.py", "program.md"):
        if not (recipe.path / required).is_file():
            raise RecipeError(f"{recipe.path / required}: missing; every recipe needs {required} beside recipe.toml")
    from hf_autoresearch.metrics import metric_path

    try:
        metric_path(recipe.metric.module)
    except FileNotFoundError as err:
        raise RecipeError(f"{file}: metric.module: {err}") from err


def find_recipes(root: str | Path = "recipes") -> list[Path]:
    """Every folder under `root` that holds a recipe.toml, sorted by name."""
    root = Path(root)
    return sorted(p.parent for p in root.glob("*/recipe.toml"))
