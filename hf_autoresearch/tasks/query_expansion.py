"""Query expansion: the prompt, the data forms and the frozen generation settings, shared by train.py and evaluation.

Training and evaluation must build the prompt the same way, so both import `prompt_text` / `completion_text` from
here. The expansion format is QMD's: one line a retrieval expansion, `lex: ...` (BM25 keywords), `vec: ...`
(a natural-language rephrasing) and at most one `hyde: ...` (a short hypothetical passage).

Rows in the harness's split files have the schema `{"query": str, "output": [[kind, text], ...]}`.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from hf_autoresearch.tasks.base import Predictions, Predictor, Splits, Task
from hf_autoresearch.tasks.generation import greedy_generate, load_for_generation

KINDS = ("lex", "vec", "hyde")
PROMPT = "/no_think Expand this search query: {query}"  # QMD's user turn, so its Hub data matches
# used when a tokenizer has no chat template (a base model): plain text with an explicit end marker
FALLBACK_TEMPLATE = "Expand this search query into lex:, vec: and hyde: lines.\nQuery: {query}\nExpansion:\n"

# the frozen generation settings of the evaluation (the agent cannot change them)
EVAL_MAX_NEW_TOKENS = 192  # the hard cap; the longest offline reference is 183 SmolLM2 tokens (median 97)
EVAL_NEW_TOKENS_MARGIN = 16  # a split's cap: its longest reference + the end token + this (about one more line)
EVAL_BATCH_SIZE = 32
EVAL_MAX_PROMPT_TOKENS = 256
EVAL_SAMPLES = 20  # generations saved per evaluation (samples/exp-NNNN.jsonl)

# QMD marks "answer with one kind only" as `<query> /only:lex` or `<query> only: lex`
_ONLY_MODE = re.compile(r"\s+/?only:\s*(lex|vec|hyde)\s*$", re.IGNORECASE)


def only_mode(query: str) -> str | None:
    """The kind an "only:" query asks for, or None for an ordinary query."""
    match = _ONLY_MODE.search(query)
    return match.group(1).lower() if match else None


def normalise_query(query: str) -> str:
    """Lower-cased, whitespace-collapsed query: two rows with the same key are the same query."""
    return " ".join(query.lower().split())


def base_query(query: str) -> str:
    """The normalised query without its "only:" suffix; all variants of one query share a split."""
    return normalise_query(_ONLY_MODE.sub("", query))


def output_text(output: list) -> str:
    """The assistant turn: one `kind: text` line per [kind, text] pair."""
    return "\n".join(f"{kind}: {' '.join(str(text).split())}" for kind, text in output)


def parse_output_text(text: str) -> list[list[str]]:
    """[kind, text] pairs from expansion lines; lines without a known prefix are dropped."""
    pairs = []
    for line in text.strip().splitlines():
        kind, sep, rest = line.strip().partition(":")
        if sep and kind.strip().lower() in KINDS and rest.strip():
            pairs.append([kind.strip().lower(), rest.strip()])
    return pairs


def row_from_messages(messages: list[dict]) -> dict | None:
    """A {query, output} row from a chat-format row (QMD's Hub data), or None if it is not one."""
    user = next((m["content"] for m in messages if m.get("role") == "user"), None)
    answer = next((m["content"] for m in messages if m.get("role") == "assistant"), None)
    if user is None or answer is None:
        return None
    prefix = PROMPT.split("{query}")[0]
    query = user[len(prefix) :] if user.startswith(prefix) else user.split(":", 1)[-1]
    output = parse_output_text(answer)
    return {"query": query.strip(), "output": output} if query.strip() and output else None


def to_row(raw: dict, query_column: str = "query", output_column: str = "output") -> dict | None:
    """Normalise one source row (either form) to {query, output}; None when it holds no usable expansion."""
    if "messages" in raw and query_column not in raw:
        return row_from_messages(raw["messages"])
    query, output = raw.get(query_column), raw.get(output_column)
    if not isinstance(query, str) or not query.strip() or not output:
        return None
    if isinstance(output, str):
        output = parse_output_text(output)
    pairs = [[str(k).lower(), str(t)] for k, t in output if str(k).lower() in KINDS and str(t).strip()]
    return {"query": query.strip(), "output": pairs} if pairs else None


def read_jsonl_folder(folder: Path) -> list[dict]:
    """Every row of every *.jsonl file in `folder`, files in name order."""
    rows = []
    for file in sorted(Path(folder).glob("*.jsonl")):
        with file.open() as f:
            rows.extend(json.loads(line) for line in f if line.strip())
    return rows


# --- prompts ---------------------------------------------------------------------------------------
def messages(query: str) -> list[dict]:
    return [{"role": "user", "content": PROMPT.format(query=query)}]


def prompt_text(tokenizer, query: str) -> str:
    """The text the model sees before its answer (the chat template with the generation prompt)."""
    if not getattr(tokenizer, "chat_template", None):  # models like Gemma degrade badly without their BOS token
        return (tokenizer.bos_token or "") + FALLBACK_TEMPLATE.format(query=query)
    return tokenizer.apply_chat_template(messages(query), tokenize=False, add_generation_prompt=True)


def completion_text(tokenizer, query: str, output: list) -> str:
    """The text the model is trained to produce after `prompt_text`: the expansion and the end-of-turn marker."""
    answer = output_text(output)
    if not getattr(tokenizer, "chat_template", None):
        return answer + (tokenizer.eos_token or "")
    prompt = prompt_text(tokenizer, query)
    full = tokenizer.apply_chat_template(
        messages(query) + [{"role": "assistant", "content": answer}], tokenize=False, add_generation_prompt=False
    )
    if not full.startswith(prompt):  # a template that rewrites earlier turns: fall back to the plain answer
        return answer + (tokenizer.eos_token or "")
    return full[len(prompt) :].rstrip()


# --- frozen generation ---------------------------------------------------------------------------
def max_new_tokens_for(references: list, tokenizer) -> int:
    """The new-token cap of one split: its longest reference expansion in tokens, plus the end token and
    EVAL_NEW_TOKENS_MARGIN, at most EVAL_MAX_NEW_TOKENS. An answer longer than that is already off-format, and
    generating it would only cost time. References are expansion strings, {"expansion": str} dicts (the metric's
    references) or split rows {"query", "output": [[kind, text], ...]}."""
    texts = [
        ref if isinstance(ref, str) else ref["expansion"] if "expansion" in ref else output_text(ref["output"])
        for ref in references
    ]
    if not texts:
        return EVAL_MAX_NEW_TOKENS
    longest = max(len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"])
    return min(EVAL_MAX_NEW_TOKENS, longest + 1 + EVAL_NEW_TOKENS_MARGIN)


def generate(
    model, tokenizer, queries: list[str], batch_size: int = EVAL_BATCH_SIZE, max_new_tokens: int | None = None
) -> list[str]:
    """Greedy expansions of `queries` with the frozen settings (`generation.greedy_generate` over the queries'
    chat prompts), at most `max_new_tokens` new tokens (pass `max_new_tokens_for(references, tokenizer)`; default
    and ceiling EVAL_MAX_NEW_TOKENS)."""
    cap = min(max_new_tokens or EVAL_MAX_NEW_TOKENS, EVAL_MAX_NEW_TOKENS)
    prompts = [prompt_text(tokenizer, q) for q in queries]
    return greedy_generate(model, tokenizer, prompts, batch_size, cap, EVAL_MAX_PROMPT_TOKENS)


def save_samples(
    path: str | Path, queries: list[str], predictions: list[str], references: list, n: int = EVAL_SAMPLES
) -> Path:
    """Write the first `n` generations as jsonl lines {"query", "prediction", "reference"} (the reference's
    expansion text) so a run folder shows what the model wrote (samples/exp-NNNN.jsonl)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as f:
        for query, prediction, reference in list(zip(queries, predictions, references, strict=True))[:n]:
            if isinstance(reference, dict):
                reference = reference["expansion"] if "expansion" in reference else output_text(reference["output"])
            f.write(json.dumps({"query": query, "prediction": prediction, "reference": reference}) + "\n")
    return path


# --- data sources and splits -----------------------------------------------------------------------
def load_source_rows(source: str, query_column: str, output_column: str) -> tuple[list[dict], list[dict] | None]:
    """(pool, test) rows of `source` in the {query, output} schema; test is None when the source has none.

    A local folder with train.* (and optionally test.*) files gives those; a local folder of other *.jsonl files
    (QMD's data as published) is pooled, file by file; a Hub id gives its train split and, if present, test.
    """
    import datasets

    from hf_autoresearch.data import LOCAL_FORMATS, DataError, load_hub

    def normalise(raw_rows) -> list[dict]:
        return [r for r in (to_row(raw, query_column, output_column) for raw in raw_rows) if r is not None]

    folder = Path(source).expanduser()
    if folder.is_dir():
        found = {
            split: sorted(p for p in folder.glob(f"{split}.*") if p.suffix in LOCAL_FORMATS)
            for split in ("train", "test")
        }
        if found["train"]:
            loaded = {
                split: datasets.load_dataset(LOCAL_FORMATS[files[0].suffix], data_files=str(files[0]), split="train")
                for split, files in found.items()
                if files
            }
            test = normalise(loaded["test"].to_list()) if "test" in loaded else None
            return normalise(loaded["train"].to_list()), test
        pool = normalise(read_jsonl_folder(folder))
        if not pool:
            raise DataError(
                f"{folder}: no train.* file and no *.jsonl rows with {query_column!r} and {output_column!r} "
                "(or chat `messages`)"
            )
        return pool, None
    if source.startswith((".", "/", "~")) or folder.suffix:
        raise DataError(f"{source}: no such data folder; pass --data a folder of *.jsonl files or a Hub id")
    loaded = load_hub(source, "../shared/data/qmd-query-expansion")
    if "train" not in loaded:
        raise DataError(f"{source}: has splits {sorted(loaded)}, needs 'train'")
    test = normalise(loaded["test"].to_list()) if "test" in loaded else None
    return normalise(loaded["train"].to_list()), test


def _dedupe(rows: list[dict]) -> list[dict]:
    """The first row of each normalised query."""
    seen, kept = set(), []
    for row in rows:
        key = normalise_query(row["query"])
        if key not in seen:
            seen.add(key)
            kept.append(row)
    return kept


def make_splits(
    source: str,
    query_column: str,
    output_column: str,
    selection_fraction: float,
    holdout_fraction: float,
    seed: int,
):
    """Train / selection / holdout splits with no query in two splits.

    Rows are de-duplicated by normalised query first. Splitting is by *base* query, so a query and its "only:"
    variants land in the same split. The holdout is the source's test split when it has one (training rows that
    share a base query with it are dropped), else a `holdout_fraction` of the base queries, carved with `seed`.
    The selection split is a `selection_fraction` of the remaining base queries. Evaluation splits keep only
    ordinary queries (their "only:" variants are dropped, never given to training).
    """
    import numpy as np

    from hf_autoresearch.data import DataError

    pool, test = load_source_rows(source, query_column, output_column)
    pool = _dedupe(pool)
    rng = np.random.default_rng(seed)
    if test is not None:
        holdout = _dedupe(test)
        held = {base_query(r["query"]) for r in holdout}
        pool = [r for r in pool if base_query(r["query"]) not in held]
    groups: dict[str, list[dict]] = {}
    for row in pool:
        groups.setdefault(base_query(row["query"]), []).append(row)
    keys = sorted(groups)
    rng.shuffle(keys)
    n_holdout = 0 if test is not None else max(1, round(len(keys) * holdout_fraction))
    n_selection = max(1, round(len(keys) * selection_fraction))
    if len(keys) < n_holdout + n_selection + 1:
        raise DataError(f"{source}: {len(keys)} distinct queries are too few to make train, selection and holdout")
    if test is None:
        holdout = [r for k in keys[:n_holdout] for r in groups[k]]
    selection = [r for k in keys[n_holdout : n_holdout + n_selection] for r in groups[k]]
    train = [r for k in keys[n_holdout + n_selection :] for r in groups[k]]

    def ordinary(rows: list[dict]) -> list[dict]:
        return [r for r in rows if only_mode(r["query"]) is None]

    return Splits(train=train, selection=ordinary(selection), holdout=ordinary(holdout), labels=[])


# --- the task --------------------------------------------------------------------------------------
class QueryExpansionTask(Task):
    """Rows {"query": str, "output": [[kind, text], ...]}; the model generates `kind: text` lines for a query."""

    name = "query-expansion"
    columns = ("query", "output")
    default_metric = ("query_expansion", "score")
    auto_class = "AutoModelForCausalLM"
    pipeline_tag = "text-generation"
    scores_untrained = True  # an instruct model can be asked as it is
    template = None  # recipes/query-expansion/train.py is the worked example

    def make_splits(self, source: str, data) -> Splits:
        return make_splits(
            source,
            data.text_column,
            data.label_column,
            data.selection_fraction,
            data.holdout_fraction,
            data.split_seed,
        )

    def describe(self, splits: Splits) -> str:
        queries = {base_query(r["query"]) for r in splits.train}
        return f"{super().describe(splits)}; {len(queries)} distinct training queries"

    def load_predictor(self, model_dir: Path, splits_dir: Path, device: str) -> Predictor:
        model, tokenizer = load_for_generation(str(model_dir), device)

        def predict(rows: list[dict]) -> Predictions:
            queries = [str(r["query"]) for r in rows]
            references = [
                {"query": q, "expansion": output_text(r["output"])} for q, r in zip(queries, rows, strict=True)
            ]
            cap = max_new_tokens_for(references, tokenizer)  # the longest reference, plus a margin
            predictions = generate(model, tokenizer, queries, batch_size=EVAL_BATCH_SIZE, max_new_tokens=cap)
            return Predictions(predictions, references, inputs=queries)

        return predict
