"""`hf-autoresearch init`: write a recipe folder for a data set, from the task's template train.py.

It reads the source once (through the task, as a run would) to check the columns and to print the row counts and
label set, then writes recipe.toml, train.py, program.md and README.md, and validates the result as a recipe.
"""

from __future__ import annotations

import json
from pathlib import Path

from hf_autoresearch.errors import UserError
from hf_autoresearch.recipe import DataConfig, load_recipe
from hf_autoresearch.tasks import get_task, prepare_splits

IDEAS = {
    "classification": """\
Ideas worth trying: learning rate and schedule, batch size, sequence length, epochs for the budget, freezing or
re-initialising layers, class weights for imbalanced labels, label smoothing. Stay within the time budget.""",
    "ranking": """\
Ideas worth trying: the loss (pointwise against listwise, the listwise temperature), learning rate and warm-up,
queries and documents per step, sequence length (the evaluation reads 96 tokens of query + document), sampling
harder negatives (non-relevant documents the model scores high). Stay within the time budget.""",
}


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
    name = folder.resolve().name
    (folder / "recipe.toml").write_text(
        f"""name = {_toml_str(name)}
task = {_toml_str(task)}
description = {_toml_str(f"{task} on {Path(source).name}, written by hf-autoresearch init")}

[model]
name = {_toml_str(model)}
baseline = {_toml_str(baseline_model)}  # a larger model to compare against (hf-autoresearch baseline)

[data]
source = {_toml_str(source)}
{_data_keys(config, task_impl.columns, ranking)}split_seed = 0

[metric]
module = {_toml_str(module)}
name = {_toml_str(key)}
direction = "maximize"

[budget]
seconds = {int(budget)}
grace_seconds = 60
"""
    )
    (folder / "train.py").write_text(task_impl.template.read_text().replace("__MODEL__", model))
    (folder / "program.md").write_text(
        f"""# {name}: what the agent should know

Task: {task} ({task_impl.describe(splits)}).
The metric `{key}` ({module}) on the selection split decides; the holdout is never shown.

{IDEAS.get(task, IDEAS["classification"])}
"""
    )
    (folder / "README.md").write_text(
        f"""# {name}

{task} of `{Path(source).name}` with `{model}`; written by `hf-autoresearch init`, edit freely.

Data: {task_impl.describe(splits)}.

```bash
hf-autoresearch run {folder} --max-experiments 10      # the loop
accelerate launch {folder}/train.py                    # one training by hand
```
"""
    )
    recipe = load_recipe(folder)
    log(f"wrote {folder}/: recipe.toml, train.py, program.md, README.md (task {recipe.task}, metric {key})")
    return folder
