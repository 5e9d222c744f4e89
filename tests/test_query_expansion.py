"""The query-expansion recipe end to end on a tiny random causal LM: data in both forms, LoRA training under a
budget, generation, scoring, and the larger-baseline comparison."""

from __future__ import annotations

import json
import shutil

import pytest
from conftest import ROOT, git

from hf_autoresearch.cli import main
from hf_autoresearch.data import read_jsonl, write_jsonl
from hf_autoresearch.ledger import Ledger
from hf_autoresearch.recipe import load_recipe
from hf_autoresearch.tasks import generation, prepare_splits
from hf_autoresearch.tasks import query_expansion as qe

RECIPE = ROOT / "recipes" / "query-expansion"


def base_queries(rows: list[dict]) -> set[str]:
    return {qe.base_query(r["query"]) for r in rows}


def test_real_data_splits_share_no_query(qmd):
    recipe = load_recipe(RECIPE)
    splits = prepare_splits(recipe.task, str(qmd), recipe.data)
    train, selection, holdout = (base_queries(s) for s in (splits.train, splits.selection, splits.holdout))
    assert not (train & selection) and not (train & holdout) and not (selection & holdout)
    assert len(splits.selection) == len(splits.holdout) == recipe.data.max_eval_rows
    assert all(qe.only_mode(r["query"]) is None for r in splits.selection + splits.holdout)
    assert any(qe.only_mode(r["query"]) for r in splits.train)  # "only:" rows stay in training
    assert len(splits.train) > 2000
    for row in splits.train[:50] + splits.selection:
        assert set(row) == {"query", "output"} and all(kind in qe.KINDS for kind, _ in row["output"])
    again = prepare_splits(recipe.task, str(qmd), recipe.data)
    assert again.selection == splits.selection  # the carve is fixed by split_seed


def test_chat_form_with_test_split_and_duplicates(tmp_path):
    def chat(query: str, answer: str) -> dict:
        return {
            "messages": [
                {"role": "user", "content": qe.PROMPT.format(query=query)},
                {"role": "assistant", "content": answer},
            ]
        }

    answer = "lex: a b\nvec: how to do a b\nhyde: A and B."
    train = [chat(f"query number {i}", answer) for i in range(40)]
    train += [chat("Query Number 3", answer), chat("held out query /only:lex", "lex: held out")]
    write_jsonl(train, tmp_path / "train.jsonl")
    write_jsonl([chat("held out query", answer), chat("held  out query", answer)], tmp_path / "test.jsonl")
    splits = qe.make_splits(str(tmp_path), "query", "output", 0.1, 0.1, 0)
    assert [r["query"] for r in splits.holdout] == ["held out query"]
    assert splits.holdout[0]["output"] == [["lex", "a b"], ["vec", "how to do a b"], ["hyde", "A and B."]]
    assert len(splits.train) + len(splits.selection) == 40  # the duplicate and the held-out variant are gone
    assert not base_queries(splits.train) & base_queries(splits.selection)


def test_prompt_and_completion_agree_with_the_chat_template(tiny_llama):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_llama)
    prompt = qe.prompt_text(tokenizer, "ssh keys")
    completion = qe.completion_text(tokenizer, "ssh keys", [["lex", "ssh  key"], ["vec", "how to use ssh keys"]])
    assert prompt.endswith("<|im_start|>assistant\n") and "Expand this search query: ssh keys" in prompt
    assert completion == "lex: ssh key\nvec: how to use ssh keys<|im_end|>"
    tokenizer.chat_template = None
    assert qe.completion_text(tokenizer, "q", [["lex", "a"]]).endswith(tokenizer.eos_token)


@pytest.fixture
def qe_project(tmp_path, qmd):
    """A user's git repository with the query-expansion recipe (8 evaluation rows) and a small QMD data folder."""
    repo = tmp_path / "project"
    recipe = repo / "recipes" / RECIPE.name
    shutil.copytree(RECIPE, recipe, ignore=shutil.ignore_patterns("examples", "__pycache__"))
    toml = recipe / "recipe.toml"
    toml.write_text(toml.read_text().replace("max_eval_rows = 200", "max_eval_rows = 8"))
    data = tmp_path / "qmd-small"
    for name in ("qmd_expansion_handcrafted.jsonl", "qmd_expansion_handcrafted_only.jsonl", "qmd_only_sampled.jsonl"):
        write_jsonl(read_jsonl(qmd / name)[:60], data / name)
    git(repo.parent, "init", "-q", "-b", "main", str(repo))
    git(repo, "-c", "user.name=user", "-c", "user.email=user@example.com", "add", "-A")
    git(repo, "-c", "user.name=user", "-c", "user.email=user@example.com", "commit", "-q", "-m", "init")
    return repo, data


def test_adapter_folder_loads_with_its_base_and_generates(tiny_llama, tmp_path):
    """A saved PEFT adapter (MERGE_ADAPTER = False in train.py) is evaluated as adapter plus base."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = get_peft_model(
        AutoModelForCausalLM.from_pretrained(tiny_llama), LoraConfig(r=4, target_modules="all-linear")
    )
    model.save_pretrained(tmp_path / "adapter")
    AutoTokenizer.from_pretrained(tiny_llama).save_pretrained(tmp_path / "adapter")
    assert not (tmp_path / "adapter" / "config.json").exists()
    loaded, tokenizer = generation.load_for_generation(str(tmp_path / "adapter"), "cpu")
    assert tokenizer.padding_side == "left"
    texts = qe.generate(loaded, tokenizer, ["ssh keys", "a much longer query about docker networking"], 2)
    assert len(texts) == 2 and all(isinstance(t, str) for t in texts)


@pytest.mark.slow
def test_run_then_larger_baseline_trained_and_not(qe_project, tiny_llama, tiny_llama_larger, capsys):
    repo, data = qe_project
    recipe, run_dir = repo / "recipes" / "query-expansion", repo / ".autoresearch"
    common = ["--run-dir", str(run_dir)]
    code = main(
        ["run", str(recipe), "--tag", "qe", "--agent", "replay", "--patches", str(RECIPE / "examples")]
        + ["--budget", "20", "--grace", "60", "--max-experiments", "0", "--baseline-repeats", "1", "--data", str(data)]
        + ["--model", str(tiny_llama)]
        + common
    )
    assert code == 0
    (base,) = Ledger(run_dir / "qe").records()
    assert base.status == "keep" and base.summary["num_steps"] >= 1
    assert base.summary["trainable_params_M"] < base.summary["num_params_M"]  # LoRA
    assert set(base.scores["selection"]) >= {"score", "valid", "closeness", "diversity"}
    assert 0 <= base.selection <= 1 and base.holdout is not None
    assert (run_dir / "qe" / "models" / "exp-0000" / "config.json").is_file()  # merged weights

    code = main(["baseline", str(recipe), "--model", str(tiny_llama_larger), "--no-train", "--tag", "qe"] + common)
    larger = json.loads((run_dir / "qe" / "larger-baseline.json").read_text())
    assert code == 0 and larger["trained"] is False and larger["status"] == "ok"
    assert set(larger["scores"]) == {"selection", "holdout"}

    capsys.readouterr()
    code = main(["baseline", str(recipe), "--model", str(tiny_llama_larger), "--budget", "20"] + common)
    assert code == 0
    larger = json.loads((run_dir / "qe" / "larger-baseline.json").read_text())
    assert larger["status"] == "ok" and larger["trained"] and larger["commit"] == base.commit
    assert larger["summary"]["num_params_M"] > base.summary["num_params_M"]
    assert larger["num_params"] > 0 and larger["selection"] is not None and larger["holdout"] is not None
    out = capsys.readouterr().out
    assert "larger baseline tiny-llama-larger" in out and "vs larger" in out and "best exp-0000" in out
    assert git(repo, "status", "--porcelain") == ""  # the user's checkout is untouched
