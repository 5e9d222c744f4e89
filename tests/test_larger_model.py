"""`hf-autoresearch baseline`: a larger model trained with the run's original train.py, compared in `status`."""

from __future__ import annotations

import json

import pytest
from runs import start_run

from hf_autoresearch.cli import main
from hf_autoresearch.larger_model import LargerModelError, find_run
from hf_autoresearch.ledger import ExperimentRecord, Ledger
from hf_autoresearch.reporting.larger_baseline import count_parameters
from hf_autoresearch.reporting.status import comparison_lines
from hf_autoresearch.reporting.summary import RunSummary


def test_count_parameters_reads_safetensors_headers(tiny_bert, tmp_path):
    from transformers import AutoModel

    assert count_parameters(tiny_bert) == AutoModel.from_pretrained(tiny_bert).num_parameters()
    assert count_parameters(tmp_path) is None


def test_without_a_run_the_error_says_how_to_start_one(project, tmp_path):
    recipe = project / "recipes" / "intent-categorization"
    with pytest.raises(LargerModelError, match="hf-autoresearch run .* --max-experiments 0"):
        find_run(tmp_path / "runs", recipe, None)
    code = main(["baseline", str(recipe), "--tag", "nope", "--run-dir", str(tmp_path / "runs")])
    assert code == 2


@pytest.fixture(scope="module")
def wider_bert(tiny_bert, tmp_path_factory):
    """The 'larger' encoder of the offline test: tiny_bert's tokenizer, a 64-wide model."""
    from transformers import AutoTokenizer, BertConfig, BertModel

    folder = tmp_path_factory.mktemp("wider-bert")
    config = BertConfig.from_pretrained(tiny_bert)
    config.hidden_size, config.intermediate_size = 64, 128
    BertModel(config).save_pretrained(folder)
    AutoTokenizer.from_pretrained(tiny_bert).save_pretrained(folder)
    return folder


@pytest.mark.slow
def test_classification_baseline_is_trained_with_the_original_train_py(
    project, banking_subset, tiny_bert, wider_bert, capsys
):
    recipe, run_dir = project / "recipes" / "intent-categorization", project / ".autoresearch"
    run = start_run(
        recipe,
        run_dir,
        "clf",
        agent="replay",
        model=str(tiny_bert),
        data=str(banking_subset),
        budget=15,
        baseline_repeats=1,
    )
    # the baseline experiment as the loop records it; its commit is what the larger model trains with
    base_commit = run.workspace.head()
    Ledger(run.folder).append(
        ExperimentRecord(
            number=0, status="keep", description="baseline", commit=base_commit, selection=0.3, holdout=0.25
        )
    )
    (run.workspace.train_py).write_text("raise SystemExit('an agent edit the baseline must not use')\n")

    code = main(["baseline", str(recipe), "--model", str(wider_bert), "--run-dir", str(run_dir)])
    assert code == 0
    larger = json.loads((run.folder / "larger-baseline.json").read_text())
    assert larger["status"] == "ok" and larger["commit"] == base_commit and larger["budget"] == 15
    assert larger["num_params"] > count_parameters(tiny_bert)
    assert set(larger["scores"]["selection"]) == {"accuracy", "macro_f1"} and larger["holdout"] is not None
    lines = comparison_lines(RunSummary.load(run.folder))
    assert lines[0].startswith("larger baseline wider-bert") and "best exp-0000" in lines[1]
    capsys.readouterr()
    assert main(["baseline", str(recipe), "--no-train", "--run-dir", str(run_dir)]) == 2
    assert "--no-train needs a model" in capsys.readouterr().err
