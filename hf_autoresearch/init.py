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


def _toml_str(value: str) -> str:
    return json.dumps(value)  # a JSON string is a valid TOML basic string


def init_recipe(
    folder: Path,
    task: str,
    data: str,
    model: str,
    metric: str | None = None,
    metric_module: str | None = None,
    text_column: str = "text",
    label_column: str = "label",
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
    config = DataConfig(source=source, text_column=text_column, label_column=label_column)
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
text_column = {_toml_str(text_column)}  # the source's column; train.py always reads {task_impl.columns[0]!r}
label_column = {_toml_str(label_column)}  # the source's column; train.py always reads {task_impl.columns[1]!r}
selection_fraction = 0.1
split_seed = 0

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

Ideas worth trying: learning rate and schedule, batch size, sequence length, epochs for the budget, freezing or
re-initialising layers, class weights for imbalanced labels, label smoothing. Stay within the time budget.
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
