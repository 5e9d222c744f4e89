"""Shared fixtures: real data from ../shared/data, tiny random models built from configs, throwaway git projects."""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from hf_autoresearch import testing

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
BANKING77 = SHARED / "data" / "banking77"
QMD = SHARED / "data" / "qmd-query-expansion"
OFFLINE_MODELS = Path(os.environ.get("HF_AUTORESEARCH_OFFLINE_MODELS", Path.home() / ".cache/hf-autoresearch-offline"))
RECIPE = ROOT / "recipes" / "intent-categorization"
SUBSET_LABELS = ("card_arrival", "exchange_rate", "lost_or_stolen_card", "top_up_failed", "pin_blocked")


def pytest_collection_modifyitems(config, items):
    import torch

    if not torch.cuda.is_available():
        skip = pytest.mark.skip(reason="needs a CUDA GPU")
        for item in items:
            if "gpu" in item.keywords:
                item.add_marker(skip)


def read_csv(path: Path) -> list[dict]:
    with path.open() as f:
        return list(csv.DictReader(f))


def write_csv(rows: list[dict], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


@pytest.fixture(scope="session")
def banking77() -> Path:
    if not (BANKING77 / "train.csv").is_file():
        pytest.skip(f"real data not found at {BANKING77}")
    return BANKING77


@pytest.fixture(scope="session")
def banking_subset(banking77, tmp_path_factory) -> Path:
    """Real BANKING77 rows of five intents: 40 train and 12 test rows each (a folder with train.csv, test.csv)."""
    folder = tmp_path_factory.mktemp("banking-subset")
    for split, per_label in (("train", 40), ("test", 12)):
        rows = read_csv(banking77 / f"{split}.csv")
        kept = []
        for label in SUBSET_LABELS:
            kept += [r for r in rows if r["label"] == label][:per_label]
        write_csv(kept, folder / f"{split}.csv")
    return folder


@pytest.fixture(scope="session")
def tiny_bert(banking77, tmp_path_factory) -> Path:
    """A 2-layer, 32-wide random BERT with a WordPiece tokenizer trained on BANKING77 text, saved as a folder."""
    texts = [r["text"] for r in read_csv(banking77 / "train.csv")]
    return testing.tiny_bert(texts, tmp_path_factory.mktemp("tiny-bert"))


@pytest.fixture(scope="session")
def offline_minilm() -> Path:
    path = OFFLINE_MODELS / "all-MiniLM-L6-v2"
    if not (path / "config.json").is_file():
        pytest.skip(f"offline MiniLM not found at {path}; run ../shared/tools/offline-models")
    return path


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def project(tmp_path) -> Path:
    """A user's git repository holding a copy of the intent-categorization recipe, committed on branch main."""
    repo = tmp_path / "project"
    shutil.copytree(RECIPE, repo / "recipes" / RECIPE.name, ignore=shutil.ignore_patterns("examples", "__pycache__"))
    git(repo.parent, "init", "-q", "-b", "main", str(repo))
    git(repo, "-c", "user.name=user", "-c", "user.email=user@example.com", "add", "-A")
    git(repo, "-c", "user.name=user", "-c", "user.email=user@example.com", "commit", "-q", "-m", "init")
    return repo


def make_patch(
    recipe_dir: Path, subject: str, replacements: list[tuple[str, str]], path: Path, file: str = "train.py"
) -> Path:
    """Write a unified diff of `file` (headers a/FILE, b/FILE, as `git diff` writes them from the recipe folder)."""
    import difflib

    before = (recipe_dir / file).read_text()
    after = before
    for old, new in replacements:
        assert old in after, old
        after = after.replace(old, new)
    diff = "".join(difflib.unified_diff(before.splitlines(True), after.splitlines(True), f"a/{file}", f"b/{file}"))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"Subject: [PATCH] {subject}\n\n---\ndiff --git a/{file} b/{file}\n{diff}")
    return path


CHATML_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def make_tiny_llama(folder: Path, texts: list[str], hidden_size: int = 32) -> Path:
    """A 2-layer random Llama with a byte-level BPE tokenizer trained on `texts` and a ChatML chat template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    special = ["<pad>", "<|im_start|>", "<|im_end|>"]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=400, special_tokens=special))
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", bos_token="<|im_start|>", eos_token="<|im_end|>", model_max_length=512
    )
    tokenizer.chat_template = CHATML_TEMPLATE
    ids = {name: tok.token_to_id(name) for name in special}
    config = LlamaConfig(
        vocab_size=tok.get_vocab_size(),
        hidden_size=hidden_size,
        intermediate_size=2 * hidden_size,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        pad_token_id=ids["<pad>"],
        bos_token_id=ids["<|im_start|>"],
        eos_token_id=ids["<|im_end|>"],
    )
    model = LlamaForCausalLM(config)
    model.generation_config = GenerationConfig(eos_token_id=ids["<|im_end|>"], pad_token_id=ids["<pad>"])
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def qmd_texts(limit: int = 400) -> list[str]:
    import json

    texts = []
    for file in sorted(QMD.glob("*.jsonl"))[:3]:
        for line in file.read_text().splitlines()[:limit]:
            row = json.loads(line)
            texts.append(row["query"])
            texts.extend(f"{kind}: {text}" for kind, text in row["output"])
    return texts + ["/no_think Expand this search query:", "user", "assistant"]


@pytest.fixture(scope="session")
def qmd() -> Path:
    if not any(QMD.glob("*.jsonl")):
        pytest.skip(f"real data not found at {QMD}")
    return QMD


@pytest.fixture(scope="session")
def tiny_llama(qmd, tmp_path_factory) -> Path:
    """A tiny random causal LM (hidden size 32) with a chat template, saved as a folder."""
    return make_tiny_llama(tmp_path_factory.mktemp("tiny-llama"), qmd_texts())


@pytest.fixture(scope="session")
def tiny_llama_larger(qmd, tmp_path_factory) -> Path:
    """A second, wider tiny causal LM: the 'larger baseline' of offline tests."""
    return make_tiny_llama(tmp_path_factory.mktemp("tiny-llama-larger"), qmd_texts(), hidden_size=64)


@pytest.fixture(scope="session")
def pushed_run(banking_subset, tiny_bert, tmp_path_factory):
    """A real CPU run of the baseline and one kept edit, pushed with --push-to-hub --promote to a local Hub stand-in
    (tests/hub_server.py). Yields (run folder, the FakeHub as the run left it, the user's repository)."""
    from hub_server import FakeHub

    from hf_autoresearch.cli import main

    root = tmp_path_factory.mktemp("pushed-run")
    repo = root / "project"
    shutil.copytree(RECIPE, repo / "recipes" / RECIPE.name, ignore=shutil.ignore_patterns("examples", "__pycache__"))
    git(root, "init", "-q", "-b", "main", str(repo))
    git(repo, "-c", "user.name=user", "-c", "user.email=user@example.com", "add", "-A")
    git(repo, "-c", "user.name=user", "-c", "user.email=user@example.com", "commit", "-q", "-m", "init")
    recipe = repo / "recipes" / RECIPE.name
    patches = root / "patches"
    replacements = [
        ("LEARNING_RATE = 5e-5", "LEARNING_RATE = 1e-2"),
        ("WARMUP = 0.1 ", "WARMUP = 0.0 "),
        ("EPOCHS = 3 ", "EPOCHS = 60 "),
        ("BATCH_SIZE = 32 ", "BATCH_SIZE = 8 "),
        ("MAX_LENGTH = 128 ", "MAX_LENGTH = 32 "),
    ]  # usually kept; on a very busy machine it may not learn in time and is discarded: the tests accept both
    make_patch(recipe, "Raise the learning rate to 1e-2 with small batches", replacements, patches / "0001-lr.patch")
    run_dir = root / "runs"
    with FakeHub() as hub, pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_ENDPOINT", hub.endpoint)
        mp.setenv("HF_TOKEN", hub.token)
        args = ["--tag", "e2e", "--patches", str(patches), "--budget", "12", "--grace", "40", "--max-experiments", "1"]
        args += ["--baseline-repeats", "1", "--no-confirm"]  # one training an experiment: this is about publishing
        args += ["--data", str(banking_subset), "--model", str(tiny_bert), "--run-dir", str(run_dir)]
        assert main(["run", str(recipe), *args, "--push-to-hub", "user/intent", "--promote"]) == 0
        yield run_dir / "e2e", hub, repo


@pytest.fixture
def no_sampling_floor(monkeypatch):
    """The keep rule without its sampling floor: the fake runs' tiny selection split (20 rows) would put it at 0.11,
    above every fake gain. For tests about the loop's mechanics, not about the floor (tests/test_decision.py)."""
    from hf_autoresearch.driver import decision

    monkeypatch.setattr(decision, "sampling_floor", lambda score, rows: 0.0 * score)
