"""The tamper check hashes what the evaluation executes, and the metric runs from the hashed file itself."""

import json
import os
import shutil
import subprocess
import sys

import evaluate
import pytest

from hf_autoresearch import tamper
from hf_autoresearch.metrics import load_metric, metric_path
from hf_autoresearch.tamper import TamperError, fingerprint, verify


def test_fingerprint_covers_every_file_the_evaluation_imports():
    hashed = fingerprint(metric_path("classification"))
    package = tamper.PACKAGE
    for name in ("__init__.py", "errors.py", "evaluation.py", "data.py", "tamper.py", "metrics/__init__.py"):
        assert str(package / name) in hashed, name
    assert any(p.startswith(str(package / "tasks")) for p in hashed)
    assert str(metric_path("classification").resolve() / "classification.py") in hashed


def test_a_changed_metric_file_is_caught(tmp_path):
    metric = tmp_path / "classification"
    shutil.copytree(metric_path("classification"), metric)
    expected = fingerprint(metric)
    verify(expected, metric)  # unchanged: no error
    file = metric / "classification.py"
    file.write_text(file.read_text().replace("accuracy_score(references, predictions)", "1.0"))
    with pytest.raises(TamperError, match="classification.py"):
        verify(expected, metric)


@pytest.fixture
def package_copy(tmp_path, monkeypatch):
    """A copy of the package, hashed in place of the real one (so a test never writes into the real package)."""
    copy = tmp_path / "hf_autoresearch"
    shutil.copytree(tamper.PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(tamper, "PACKAGE", copy)
    return copy


@pytest.mark.parametrize("new_file", ["tasks/sneaky.py", "sitecustomize.py", "agents/helper.py"])
def test_a_file_that_appears_in_the_package_is_caught(package_copy, new_file):
    metric = package_copy / "metrics" / "classification"
    expected = fingerprint(metric)
    verify(expected, metric)
    (package_copy / new_file).write_text("import builtins\n")
    with pytest.raises(TamperError, match=new_file.split("/")[-1]):
        verify(expected, metric)


@pytest.mark.parametrize("edited", ["__init__.py", "errors.py"])
def test_an_edit_of_a_package_file_outside_the_evaluation_list_is_caught(package_copy, edited):
    metric = package_copy / "metrics" / "classification"
    expected = fingerprint(metric)
    with (package_copy / edited).open("a") as f:
        f.write("\nSCORE_BONUS = 1\n")
    with pytest.raises(TamperError, match=edited):
        verify(expected, metric)


def test_extra_files_of_a_custom_task_are_hashed(tmp_path):
    task = tmp_path / "my_task.py"
    task.write_text("def predict(rows): return rows\n")
    metric = metric_path("classification")
    expected = fingerprint(metric, extra=[task])
    assert str(task.resolve()) in expected
    verify(expected, metric, extra=[task])
    task.write_text("def predict(rows): return ['gold' for _ in rows]\n")
    with pytest.raises(TamperError, match="my_task.py"):
        verify(expected, metric, extra=[task])
    task.unlink()
    with pytest.raises(TamperError, match="my_task.py"):  # a file that vanished is caught too
        verify(expected, metric, extra=[task])


QE_REFERENCES = [
    {"query": "ssh key authentication", "expansion": "lex: ssh key auth\nvec: how to set up ssh keys"},
    {"query": "python venv", "expansion": "lex: python virtualenv\nvec: create a python virtual environment"},
]
QE_PREDICTIONS = ["lex: ssh keygen\nvec: log in with an ssh key", "Sure! lex: venv"]


@pytest.mark.parametrize(
    "name, predictions, references",
    [
        ("classification", [0, 1, 2, 2, 1], [0, 1, 1, 2, 0]),
        ("query_expansion", QE_PREDICTIONS, QE_REFERENCES),
    ],
)
def test_load_metric_computes_what_evaluate_load_computes(name, predictions, references):
    ours = load_metric(metric_path(name)).compute(predictions=predictions, references=references)
    theirs = evaluate.load(str(metric_path(name))).compute(predictions=predictions, references=references)
    assert ours == theirs
    assert load_metric(name).compute(predictions=predictions, references=references) == ours


TAMPER_THE_CACHE = """
import json, sys
import evaluate
from hf_autoresearch.metrics import load_metric, metric_path
predictions, references = [0, 1, 2, 2], [0, 1, 1, 0]
path = str(metric_path("classification"))
metric = evaluate.load(path)
scores = {"evaluate.load": metric.compute(predictions=predictions, references=references)["accuracy"]}
cached = sys.modules[type(metric).__module__].__file__
source = open(cached).read()
open(cached, "w").write(source.replace("accuracy_score(references, predictions)", "1.0"))
for name in [m for m in sys.modules if m.startswith("evaluate_modules")]:  # as a new process would import it
    del sys.modules[name]
scores["evaluate.load, cache edited"] = evaluate.load(path).compute(predictions=predictions, references=references)[
    "accuracy"
]
scores["load_metric, cache edited"] = load_metric(path).compute(predictions=predictions, references=references)[
    "accuracy"
]
print(json.dumps({"scores": scores, "cached": cached}))
"""


def test_editing_evaluate_s_cached_copy_cannot_change_a_score(tmp_path):
    env = {**os.environ, "HF_MODULES_CACHE": str(tmp_path / "modules"), "HF_EVALUATE_OFFLINE": "1"}
    env["PYTHONPATH"] = os.pathsep.join([str(tamper.PACKAGE.parent), env.get("PYTHONPATH", "")])
    out = subprocess.run([sys.executable, "-c", TAMPER_THE_CACHE], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert seen["cached"].startswith(str(tmp_path / "modules"))  # evaluate.load executes a copy, not the source
    assert seen["scores"] == {
        "evaluate.load": 0.5,
        "evaluate.load, cache edited": 1.0,  # the hole: the copy is trusted while the original is intact
        "load_metric, cache edited": 0.5,  # the hashed file is what runs
    }
