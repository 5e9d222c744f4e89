"""The frozen generation of query expansions: greedy decoding that matches `model.generate`, with the KV cache,
rows that stop at their end token, a cap derived from the references, and saved samples."""

import json

import pytest
import torch

from hf_autoresearch.tasks import generation
from hf_autoresearch.tasks import query_expansion as qe

CAP = 24
QUERIES = [
    "ssh keys",
    "a much longer query about docker compose networking between services",
    "react hooks",
    "how do I configure authentication for a web app",
    "TDS motorsports",
]


ARCHITECTURES = {  # the offline models' families: SmolLM2 (Llama), gemma-3 (sliding-window layers), Qwen
    "llama": ("LlamaForCausalLM", "LlamaConfig", {}),
    "gemma3": ("Gemma3ForCausalLM", "Gemma3TextConfig", {"num_hidden_layers": 4, "head_dim": 16, "sliding_window": 8}),
    "qwen2": ("Qwen2ForCausalLM", "Qwen2Config", {}),
}


def make_stopping_model(tokenizer_dir, folder, architecture: str = "llama"):
    """A small random causal LM (weights large enough that its greedy text does not collapse into one token) whose
    end token is a token it emits at different steps for different queries, and never for some: rows then stop at
    different steps and some run to the cap. Saved and loaded through `load_for_generation`."""
    import transformers

    model_class, config_class, extra = ARCHITECTURES[architecture]
    tokenizer = transformers.AutoTokenizer.from_pretrained(tokenizer_dir)
    torch.manual_seed(0)
    config = getattr(transformers, config_class)(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=extra.pop("num_hidden_layers", 2),
        num_attention_heads=4,
        num_key_value_heads=2,
        initializer_range=0.1,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.bos_token_id,
        **extra,
    )
    getattr(transformers, model_class)(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    model, tokenizer = generation.load_for_generation(str(folder), "cpu")
    free_running = reference_generate(model, tokenizer, QUERIES, CAP)
    first_steps: dict[int, list[int]] = {}  # token -> the step it first appears at, one entry per row holding it
    for tokens in free_running:
        for token in set(tokens):
            first_steps.setdefault(token, []).append(tokens.index(token))
    candidates = [t for t, steps in first_steps.items() if 1 < len(steps) < len(QUERIES) and min(steps) > 0]
    model.generation_config.eos_token_id = max(candidates, key=lambda t: len(set(first_steps[t])))
    return model, tokenizer


@pytest.fixture(scope="module")
def stopping_model(tiny_llama, tmp_path_factory):
    return make_stopping_model(tiny_llama, tmp_path_factory.mktemp("stopping-llama"))


def reference_generate(model, tokenizer, queries: list[str], cap: int) -> list[list[int]]:
    """transformers' own greedy `generate`, one query at a time, cut at the first stop token."""
    stop = generation._stop_ids(model, tokenizer)
    rows = []
    for query in queries:
        batch = tokenizer([qe.prompt_text(tokenizer, query)], add_special_tokens=False, return_tensors="pt")
        out = model.generate(
            **batch, max_new_tokens=cap, do_sample=False, eos_token_id=stop, pad_token_id=tokenizer.pad_token_id
        )
        tokens = out[0, batch["input_ids"].shape[1] :].tolist()
        rows.append(tokens[: next((i for i, t in enumerate(tokens) if t in stop), len(tokens))])
    return rows


def batched_tokens(model, tokenizer, queries: list[str], cap: int) -> list[list[int]]:
    batch = tokenizer(
        [qe.prompt_text(tokenizer, q) for q in queries], add_special_tokens=False, padding=True, return_tensors="pt"
    )
    stop = generation._stop_ids(model, tokenizer)
    with torch.inference_mode():
        return generation._greedy_batch(model, batch["input_ids"], batch["attention_mask"], stop, cap)


@pytest.mark.parametrize("architecture", sorted(ARCHITECTURES))
def test_batched_greedy_matches_generate_and_rows_stop_on_their_own(architecture, tiny_llama, tmp_path):
    model, tokenizer = make_stopping_model(tiny_llama, tmp_path, architecture)
    cap = CAP
    expected = reference_generate(model, tokenizer, QUERIES, cap)
    lengths = [len(tokens) for tokens in expected]
    assert min(lengths) < cap and max(lengths) == cap, lengths  # the test needs rows that stop and rows that don't
    assert batched_tokens(model, tokenizer, QUERIES, cap) == expected  # left padding, pruned rows and all
    texts = qe.generate(model, tokenizer, QUERIES, batch_size=2, max_new_tokens=cap)
    assert texts == [tokenizer.decode(t, skip_special_tokens=True).strip() for t in expected]


def test_decoding_uses_the_kv_cache(stopping_model):
    model, tokenizer = stopping_model
    seen = []
    hook = model.model.register_forward_hook(
        lambda _module, _args, kwargs, _out: seen.append(tuple(kwargs["input_ids"].shape)), with_kwargs=True
    )
    try:
        batched_tokens(model, tokenizer, QUERIES[:2], 6)
    finally:
        hook.remove()
    assert seen[0][1] > 1 and all(length == 1 for _, length in seen[1:])  # the prompt once, then one token a step
    assert len(seen) <= 6


def test_a_saved_use_cache_false_is_turned_back_on(tiny_llama, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(tiny_llama)
    model.config.use_cache = False  # what a train.py with gradient checkpointing may save
    model.save_pretrained(tmp_path)
    AutoTokenizer.from_pretrained(tiny_llama).save_pretrained(tmp_path)
    loaded, _ = generation.load_for_generation(str(tmp_path), "cpu")
    assert loaded.config.use_cache is True


def test_generation_stops_at_the_cap(stopping_model):
    model, tokenizer = stopping_model
    for tokens in batched_tokens(model, tokenizer, QUERIES, 5):
        assert len(tokens) <= 5
    assert all(len(t) <= 5 for t in reference_generate(model, tokenizer, QUERIES[:1], 5))


def test_max_new_tokens_follows_the_longest_reference(tiny_llama):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_llama)
    short, longer = "lex: ssh keys\nvec: how to use ssh keys", "lex: docker\nvec: docker compose networks explained"
    longest = max(len(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in (short, longer))
    expected = longest + 1 + qe.EVAL_NEW_TOKENS_MARGIN
    assert qe.max_new_tokens_for([short, longer], tokenizer) == expected
    assert qe.max_new_tokens_for([{"query": "q", "expansion": longer}, {"expansion": short}], tokenizer) == expected
    rows = [{"query": "q", "output": [["lex", "docker"], ["vec", "docker compose networks explained"]]}]
    assert qe.max_new_tokens_for(rows, tokenizer) == qe.max_new_tokens_for([longer], tokenizer)
    assert qe.max_new_tokens_for(["vec: " + "word " * 500], tokenizer) == qe.EVAL_MAX_NEW_TOKENS
    assert qe.max_new_tokens_for([], tokenizer) == qe.EVAL_MAX_NEW_TOKENS


def test_stop_ids_include_the_end_of_turn_token(stopping_model):
    model, tokenizer = stopping_model
    end_of_turn = tokenizer.convert_tokens_to_ids("<|im_end|>")
    model.generation_config.eos_token_id, saved = None, model.generation_config.eos_token_id
    try:
        assert end_of_turn in generation._stop_ids(model, tokenizer)
    finally:
        model.generation_config.eos_token_id = saved


def test_save_samples_writes_the_first_n(tmp_path):
    queries = [f"query {i}" for i in range(5)]
    predictions = [f"lex: p{i}" for i in range(5)]
    references = [{"query": q, "expansion": f"lex: r{i}"} for i, q in enumerate(queries)]
    references[1] = {"query": "query 1", "output": [["lex", "r1"], ["vec", "the reference one"]]}
    path = qe.save_samples(tmp_path / "samples" / "exp-0001.jsonl", queries, predictions, references, n=3)
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert lines == [
        {"query": "query 0", "prediction": "lex: p0", "reference": "lex: r0"},
        {"query": "query 1", "prediction": "lex: p1", "reference": "lex: r1\nvec: the reference one"},
        {"query": "query 2", "prediction": "lex: p2", "reference": "lex: r2"},
    ]
