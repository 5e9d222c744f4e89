import re
from pathlib import Path

import pytest
from conftest import RECIPE

from hf_autoresearch.recipe import RecipeError, find_recipes, load_recipe


def test_shipped_recipe_loads():
    recipe = load_recipe(RECIPE)
    assert recipe.name == "intent-categorization"
    assert recipe.task == "classification"
    assert recipe.metric.name == "accuracy" and recipe.metric.direction == "maximize"
    assert recipe.budget.seconds == 300
    assert recipe.train_py.is_file()
    assert RECIPE in find_recipes(RECIPE.parent)


def copy_recipe(tmp_path: Path, toml: str | None = None, drop: str | None = None) -> Path:
    folder = tmp_path / "intent-categorization"
    folder.mkdir()
    for name in ("recipe.toml", "train.py", "program.md"):
        if name != drop:
            (folder / name).write_text((RECIPE / name).read_text())
    if toml is not None:
        (folder / "recipe.toml").write_text(toml)
    return folder


def edited(old: str, new: str) -> str:
    text = (RECIPE / "recipe.toml").read_text()
    assert old in text
    return text.replace(old, new)


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("split_seed = 0", "split_seed = 0\nsplit_sed = 1", "unknown key data.split_sed"),
        ('name = "accuracy"\n', "", "metric.name is missing; name the key of classification's result"),
        ('direction = "maximize"', 'direction = "up"', "metric.direction must be maximize or minimize"),
        ("selection_fraction = 0.1", "selection_fraction = 0.9", "data.selection_fraction must be in (0, 0.5]"),
        ("seconds = 300", 'seconds = "300"', "budget.seconds must be int"),
        ("seconds = 300", "seconds = -1", "budget.seconds must be > 0"),
        ('task = "classification"', 'task = "poetry"', "task = 'poetry': unknown task 'poetry'; use one of"),
        ('module = "classification"', 'module = "bleurt"', "no metric module 'bleurt'"),
        ("[budget]", 'colour = "red"\n[budget]', "unknown key metric.colour"),
    ],
)
def test_bad_recipes_name_the_file_key_and_fix(tmp_path, old, new, message):
    folder = copy_recipe(tmp_path, edited(old, new))
    with pytest.raises(RecipeError) as err:
        load_recipe(folder)
    assert message in str(err.value)
    assert str(folder / "recipe.toml") in str(err.value)


def test_missing_train_py_and_table_and_toml(tmp_path):
    with pytest.raises(RecipeError, match="train.py: missing"):
        load_recipe(copy_recipe(tmp_path, drop="train.py"))
    other = tmp_path / "b"
    other.mkdir()
    # without [metric] the task's default metric decides
    recipe = load_recipe(copy_recipe(other, edited("[metric]", "[metrics]").split("[metrics]")[0]))
    assert (recipe.metric.module, recipe.metric.name) == ("classification", "accuracy")
    with pytest.raises(RecipeError, match="missing table \\[data\\]"):
        no_data = re.sub(r"\[data\][^\[]*", "", edited("[data]", "[data]"))
        load_recipe(copy_recipe(tmp_path / "d" if (tmp_path / "d").mkdir() is None else tmp_path, no_data))
    with pytest.raises(RecipeError, match="not valid TOML"):
        load_recipe(copy_recipe(tmp_path / "c" if (tmp_path / "c").mkdir() is None else tmp_path, "name = "))
    with pytest.raises(RecipeError, match="no such recipe folder"):
        load_recipe(tmp_path / "nowhere")
