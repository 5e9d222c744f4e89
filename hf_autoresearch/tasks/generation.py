"""Frozen greedy decoding for generative tasks: load a saved causal LM (merged weights or a PEFT adapter), and
decode batches with the KV cache, each row leaving the batch when it emits a stop token.

Task-agnostic: a task builds its prompts and its new-token cap, and parses what comes back.
"""

from __future__ import annotations

import json
from pathlib import Path


def load_for_generation(model_dir: str, device: str):
    """(model, tokenizer) from a saved folder holding merged weights, or a PEFT adapter plus its base model."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    dtype = torch.bfloat16 if device == "cuda" and torch.cuda.is_bf16_supported() else torch.float32
    folder = Path(model_dir)
    adapter = folder / "adapter_config.json"
    if adapter.is_file():
        from peft import PeftModel

        base_name = json.loads(adapter.read_text())["base_model_name_or_path"]
        base = AutoModelForCausalLM.from_pretrained(base_name, dtype=dtype, trust_remote_code=False)
        model = PeftModel.from_pretrained(base, str(folder)).merge_and_unload()
        has_tokenizer = any((folder / f).is_file() for f in ("tokenizer.json", "tokenizer_config.json"))
        tokenizer = AutoTokenizer.from_pretrained(str(folder) if has_tokenizer else base_name)
    else:
        model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=dtype, trust_remote_code=False)
        tokenizer = AutoTokenizer.from_pretrained(str(folder), trust_remote_code=False)
    tokenizer.padding_side = "left"  # generation continues the prompt, so padding goes before it
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.config.use_cache = True  # a train.py may save use_cache=False (gradient checkpointing); decoding needs it
    return model.to(device).eval(), tokenizer


def _stop_ids(model, tokenizer) -> list[int]:
    """The tokens that end an answer: the EOS ids of the generation config and the tokenizer, and the chat
    template's end-of-turn token (the one `completion_text` ends with) when the tokenizer knows it."""
    ids = set()
    for value in (model.generation_config.eos_token_id, tokenizer.eos_token_id):
        if isinstance(value, int):
            ids.add(value)
        elif value:
            ids.update(value)
    for marker in ("<|im_end|>", "<end_of_turn>", "<|eot_id|>", "<|end|>"):
        token_id = tokenizer.convert_tokens_to_ids(marker) if marker in tokenizer.get_vocab() else None
        if isinstance(token_id, int) and token_id != tokenizer.unk_token_id:
            ids.add(token_id)
    return sorted(ids)


def _forward_options(model) -> tuple[str, dict]:
    """The name of the forward's cache argument (`cache` from transformers 5.2x, `past_key_values` before) and the
    request for the last position's logits only, where the model supports it (the prompt's are never needed)."""
    import inspect

    parameters = inspect.signature(model.forward).parameters
    cache_argument = "cache" if "cache" in parameters else "past_key_values"
    return cache_argument, {"logits_to_keep": 1} if "logits_to_keep" in parameters else {}


def _greedy_batch(model, input_ids, attention_mask, stop_ids, max_new_tokens: int) -> list[list[int]]:
    """Greedy decoding of one left-padded batch with the KV cache; new token ids per row, without the stop token.

    A row leaves the batch (and the cache) on the step it emits a stop token, so no compute is spent on finished
    rows and the batch ends when its last row does. Positions count real tokens only, as `generate` does."""
    import torch

    stop = torch.tensor(stop_ids, device=input_ids.device)
    cache_argument, extra = _forward_options(model)
    rows = torch.arange(input_ids.shape[0], device=input_ids.device)  # original index of each active row
    new_tokens: list[list[int]] = [[] for _ in range(input_ids.shape[0])]
    position_ids = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)
    step_ids, cache = input_ids, None
    for step in range(max_new_tokens):
        out = model(
            input_ids=step_ids,
            attention_mask=attention_mask,
            position_ids=position_ids,
            use_cache=True,
            **{cache_argument: cache},
            **extra,
        )
        cache = out.cache if hasattr(out, "cache") else out.past_key_values
        next_ids = out.logits[:, -1, :].argmax(-1)
        done = torch.isin(next_ids, stop)
        for row, token, finished in zip(rows.tolist(), next_ids.tolist(), done.tolist(), strict=True):
            if not finished:
                new_tokens[row].append(token)
        if step + 1 == max_new_tokens or bool(done.all()):
            break
        if bool(done.any()):
            keep = (~done).nonzero().squeeze(-1)
            cache.batch_select_indices(keep)
            rows, next_ids, position_ids = rows[keep], next_ids[keep], position_ids[keep]
            attention_mask = attention_mask[keep]
        step_ids = next_ids[:, None]
        attention_mask = torch.cat([attention_mask, attention_mask.new_ones(len(rows), 1)], dim=-1)
        position_ids = position_ids[:, -1:] + 1
    return new_tokens


def greedy_generate(
    model, tokenizer, prompts: list[str], batch_size: int, max_new_tokens: int, max_prompt_tokens: int
) -> list[str]:
    """Greedy answers to `prompts` (already formatted, special tokens included): batches of similar prompt length
    (left padding), the KV cache, each row stopping at its end-of-turn / EOS token, at most `max_new_tokens` new
    tokens, prompts cut to `max_prompt_tokens`."""
    import torch

    stop_ids = _stop_ids(model, tokenizer)
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    answers = [""] * len(prompts)
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            ix = order[start : start + batch_size]
            batch = tokenizer(
                [prompts[i] for i in ix],
                add_special_tokens=False,
                padding=True,
                truncation=True,
                max_length=max_prompt_tokens,
                return_tensors="pt",
            ).to(model.device)
            new_tokens = _greedy_batch(model, batch["input_ids"], batch["attention_mask"], stop_ids, max_new_tokens)
            for i, text in zip(ix, tokenizer.batch_decode(new_tokens, skip_special_tokens=True), strict=True):
                answers[i] = text.strip()
    return answers
