"""Search ranking: fine-tune a cross-encoder reranker (written by `hf-autoresearch init --task ranking`, then tuned).

The model reads "[CLS] query [SEP] document [SEP]" and outputs one relevance score (AutoModelForSequenceClassification
with num_labels=1); the frozen evaluation ranks each query's judged documents by it (nDCG@10). Each step samples
QUERIES_PER_BATCH training queries and DOCS_PER_QUERY of their judged documents, and trains with a pointwise loss
(each pair's score against its gain) or a listwise one (a softmax over one query's documents, ListNet).

This is the one file the agent edits. Run it by hand with `accelerate launch train.py` (or `python train.py`);
under the harness, the AUTORESEARCH_* environment supplies the data, model, seed, budget and output folder.
"""

import math
import random
import time
from pathlib import Path

import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from hf_autoresearch import experiment

# --- model ---------------------------------------------------------------------------------------
MODEL = "cross-encoder/ms-marco-MiniLM-L6-v2"  # base model; the harness overrides it with AUTORESEARCH_MODEL
MAX_LENGTH = 64  # tokens of "query [SEP] document" per pair (evaluation: 96); search: choice(32, 48, 64, 96, 128)

# --- loss ----------------------------------------------------------------------------------------
LOSS = "listwise"  # "pointwise" (BCE on gain / max gain) or "listwise"; search: choice("pointwise", "listwise")
TEMPERATURE = 1.0  # listwise target: softmax(gain / TEMPERATURE) over a query's documents; search: float(0.25, 2.0)

# --- optimisation --------------------------------------------------------------------------------
LEARNING_RATE = 3e-4  # peak AdamW learning rate (a fresh head, few steps on CPU); search: log(1e-5, 1e-3)
QUERIES_PER_BATCH = 8  # training queries per optimizer step; search: choice(2, 4, 8, 16)
DOCS_PER_QUERY = 8  # judged documents sampled per query and step; search: choice(4, 8, 16)
WARMUP = 0.1  # share of the time budget spent warming the learning rate up; search: float(0.0, 0.3)
SCHEDULE = "linear"  # after warm-up: decay to 0 at the deadline or stay; search: choice("linear", "constant")
WEIGHT_DECAY = 0.01  # AdamW weight decay; search: float(0.0, 0.1)
MAX_GRAD_NORM = 1.0  # gradient clipping

# --- budget --------------------------------------------------------------------------------------
SAVE_RESERVE_SECONDS = 5  # stop training this long before the budget ends, to leave time to save

QUERY_ID, QUERY, DOCUMENT, GAIN = "query_id", "query", "document", "gain"  # the harness's column names


def lr_factor(progress):
    """The learning rate's share of its peak at `progress` (0..1) of the training time."""
    if progress < WARMUP:
        return progress / WARMUP
    if SCHEDULE == "constant":
        return 1.0
    return max(0.0, 1.0 - (progress - WARMUP) / max(1e-9, 1.0 - WARMUP))


def loss_of(scores, gains, max_gain):
    """The loss of one query's sampled documents: `scores` (model logits) and `gains`, both 1-D tensors."""
    if LOSS == "pointwise":
        return torch.nn.functional.binary_cross_entropy_with_logits(scores, gains / max_gain, reduction="sum")
    target = torch.softmax(gains / TEMPERATURE, dim=0)
    return -(target * torch.log_softmax(scores, dim=0)).sum()


def main():
    started = time.monotonic()
    seed = experiment.seed_everything()
    rng = random.Random(seed)
    data_dir = experiment.data_dir(recipe_dir=Path(__file__).parent)
    rows = experiment.load_train_rows(data_dir)
    queries = {}
    for row in rows:
        queries.setdefault(row[QUERY_ID], []).append(row)
    if LOSS == "listwise":  # a query whose documents share one gain teaches a listwise loss nothing
        queries = {q: docs for q, docs in queries.items() if len({d[GAIN] for d in docs}) > 1}
    keys = sorted(queries)
    max_gain = max(float(row[GAIN]) for row in rows) or 1.0

    device = "cuda" if torch.cuda.is_available() else "cpu"
    model_name = experiment.model_name(MODEL)
    tokenizer = AutoTokenizer.from_pretrained(model_name)
    model = AutoModelForSequenceClassification.from_pretrained(model_name, num_labels=1)
    model.to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=LEARNING_RATE, weight_decay=WEIGHT_DECAY)
    bf16 = device == "cuda" and torch.cuda.is_bf16_supported()
    autocast = torch.autocast(device, dtype=torch.bfloat16, enabled=bf16)

    train_started = time.monotonic()
    train_seconds = max(1.0, experiment.time_left() - SAVE_RESERVE_SECONDS)
    steps, losses, order = 0, [], []
    while experiment.time_left() > SAVE_RESERVE_SECONDS:
        if len(order) < QUERIES_PER_BATCH:  # a fresh shuffled pass over the queries
            order += rng.sample(keys, len(keys))
        batch_keys, order = order[:QUERIES_PER_BATCH], order[QUERIES_PER_BATCH:]
        groups = [rng.sample(queries[q], min(DOCS_PER_QUERY, len(queries[q]))) for q in batch_keys]
        pairs = [(d[QUERY], d[DOCUMENT]) for docs in groups for d in docs]
        encoded = tokenizer(
            [q for q, _ in pairs],
            [d for _, d in pairs],
            truncation="only_second",
            max_length=MAX_LENGTH,
            padding=True,
            return_tensors="pt",
        ).to(device)
        for group in optimizer.param_groups:
            group["lr"] = LEARNING_RATE * lr_factor((time.monotonic() - train_started) / train_seconds)
        with autocast:
            scores = model(**encoded).logits[:, 0].float()
        loss, start = 0.0, 0
        for docs in groups:
            gains = torch.tensor([float(d[GAIN]) for d in docs], device=device)
            loss = loss + loss_of(scores[start : start + len(docs)], gains, max_gain)
            start += len(docs)
        loss = loss / len(pairs)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), MAX_GRAD_NORM)
        optimizer.step()
        steps += 1
        losses.append(loss.item())
        if steps % 10 == 0:
            print(f"step {steps}: loss {sum(losses[-10:]) / 10:.4f}, {experiment.time_left():.0f} s left", flush=True)
    training_seconds = time.monotonic() - train_started

    out = experiment.output_dir()
    model.save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))

    peak_vram_mb = torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else 0.0
    experiment.write_summary(
        {
            "training_seconds": training_seconds,
            "total_seconds": time.monotonic() - started,
            "peak_vram_mb": peak_vram_mb,
            "num_steps": steps,
            "train_loss": sum(losses[-20:]) / max(1, len(losses[-20:])) if losses else math.nan,
            "num_params_M": sum(p.numel() for p in model.parameters()) / 1e6,
            "num_train_queries": len(keys),
            "num_train_rows": len(rows),
            "seed": seed,
        },
        out,
    )


if __name__ == "__main__":
    main()
