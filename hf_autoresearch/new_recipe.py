"""`hf-autoresearch init`: write a recipe folder for a data set, from the task's template train.py.

It reads the source once (through the task, as a run would) to check the columns and to print the row counts and
label set, then writes recipe.toml, train.py, program.md and README.md, and validates the result as a recipe.
"""

from __future__ import annotations

import json
from pathlib import Path
from string import Template

from hf_autoresearch.errors import UserError
from hf_autoresearch.recipe import DataConfig, load_recipe
from hf_autoresearch.tasks import get_task, prepare_splits

TEMPLATES = Path(__file__).parent / "tasks" / "templates"  # beside each task's train.py template


def _render(template: str, **values) -> str:
    return Template((TEMPLATES / template).read_text()).substitute(values)


def _ideas(task: str) -> str:
    ideas = TEMPLATES / f"{task}_ideas.md"
    return (ideas if ideas.is_file() else TEMPLATES / "classification_ideas.md").read_text().strip()


def _toml_str(value: str) -> str:
    return json.dumps(value)  # a JSON string is a valid TOML basic string


def _data_keys(config: DataConfig, columns: tuple[str, str], ranking: bool) -> str:
    """The [data] lines init writes (after source), each a TOML line ending in a newline."""
    lines = []
    if ranking:
        documents = ", ".join(_toml_str(c) for c in config.document_columns)
        lines += [
            f"query_column = {_toml_str(config.query_column)}",
            f"document_columns = [{documents}]  # joined with ' | ' into the document train.py reads",
            f"label_column = {_toml_str(config.label_column)}  # the grade; train.py reads the gain as 'gain'",
        ]
        if config.gains:
            gains = ", ".join(f"{_toml_str(str(k))} = {int(v)}" for k, v in config.gains.items())
            lines.append(f"gains = {{{gains}}}  # label -> integer gain (0: not relevant)")
    else:
        lines += [
            f"text_column = {_toml_str(config.text_column)}  # the source's column; train.py always reads "
            f"{columns[0]!r}",
            f"label_column = {_toml_str(config.label_column)}  # the source's column; train.py always reads "
            f"{columns[1]!r}",
        ]
    if config.group_column:
        lines.append(f"group_column = {_toml_str(config.group_column)}  # rows of one group never span two splits")
    if config.encoding != "utf-8":
        lines.append(f"encoding = {_toml_str(config.encoding)}")
    lines += [f"selection_fraction = {config.selection_fraction}", f"holdout_fraction = {config.holdout_fraction}"]
    return "".join(line + "\n" for line in lines)


def init_recipe(
    folder: Path,
    task: str,
    data: str,
    model: str,
    metric: str | None = None,
    metric_module: str | None = None,
    text_column: str = "text",
    label_column: str = "label",
    query_column: str = "query",
    document_columns: list[str] | None = None,
    gains: dict[str, int] | None = None,
    group_column: str = "",
    encoding: str = "utf-8",
    baseline_model: str = "",
    budget: int = 300,
    force: bool = False,
    log=print,
) -> Path:
    folder = Path(folder)
    if (folder / "recipe.toml").exists() and not force:
        raise UserError(f"{folder} already holds a recipe; pick another folder or add --force")
    task_impl = get_task(task)
    if task_impl.template is None:
        raise UserError(
            f"task {task!r} has no train.py template; copy a recipe of that task (e.g. recipes/query-expansion)"
        )
    source = str(Path(data).expanduser().resolve()) if Path(data).expanduser().exists() else data
    ranking = task == "ranking"
    config = DataConfig(
        source=source,
        text_column=text_column,
        label_column=label_column,
        query_column=query_column,
        document_columns=list(document_columns or ["document"]),
        gains=dict(gains or {}),
        group_column=group_column,
        encoding=encoding,
    )
    if ranking:  # queries, not rows, are the unit: a fifth of them for each evaluation split
        config.selection_fraction = config.holdout_fraction = 0.2
    splits = prepare_splits(task, source, config)
    log(f"{source}: {task_impl.describe(splits)}")
    module, key = task_impl.default_metric
    module, key = metric_module or module, metric or (key if not metric_module else "")
    if not key:
        raise UserError("--metric-module needs --metric: the key of the module's result that decides")

    folder.mkdir(parents=True, exist_ok=True)
    name, described = folder.resolve().name, task_impl.describe(splits)
    (folder / "recipe.toml").write_text(
        _render(
            "recipe.toml.template",
            name=_toml_str(name),
            task=_toml_str(task),
            description=_toml_str(f"{task} on {Path(source).name}, written by hf-autoresearch init"),
            model=_toml_str(model),
            baseline_model=_toml_str(baseline_model),
            source=_toml_str(source),
            data_keys=_data_keys(config, task_impl.columns, ranking),
            metric_module=_toml_str(module),
            metric=_toml_str(key),
            budget=int(budget),
        )
    )
    (folder / "train.py").write_text(task_impl.template.read_text().replace("__MODEL__", model))
    values = dict(name=name, task=task, described=described, metric=key, metric_module=module, model=model)
    (folder / "program.md").write_text(_render("program.md.template", ideas=_ideas(task), **values))
    (folder / "README.md").write_text(
        _render("README.md.template", source_name=Path(source).name, folder=folder, **values)
    )
    recipe = load_recipe(folder)
    log(f"wrote {folder}/: recipe.toml, train.py, program.md, README.md (task {recipe.task}, metric {key})")
    return folder
