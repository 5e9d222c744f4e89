"""Query-expansion quality: QMD-format expansions scored for retrieval usefulness, gated by a valid format.

Per example, with every component in [0, 1]:

    score = valid * (0.40 closeness + 0.20 preserve + 0.10 lex_keywords + 0.10 vec_natural
                     + 0.15 diversity + 0.05 hyde)

valid: every non-empty line is `lex: ...`, `vec: ...` or `hyde: ...` with a body, 1-5 lex, 1-5 vec, at most one hyde,
and no chat-template tokens; otherwise the example scores 0. Lines that echo the query (no content word of their
own) or nearly repeat an earlier line are *redundant*: they lower `diversity` and count for nothing in `preserve`,
`lex_keywords` and `vec_natural`, so copying the query into well-formed lines earns little. `closeness` is chrF
(lower-cased character 1-6-grams, beta 2, whitespace removed) per kind against the reference expansion, averaged
over the kinds the reference has. The corpus score is the mean over examples; each component's mean is reported
beside it. The recipe README (recipes/query-expansion/README.md) works an example through.

Beside it, `qmd_score` is QMD's own rubric (finetune/SCORING.md, implemented in qmd_rubric.py): it needs only the
query and the expansion, and is the number to read next to QMD's published 92.0%. Its parts are reported in the
rubric's points (means over the split): qmd_format /30, qmd_diversity /30, qmd_hyde /20 (0 without hyde),
qmd_quality /20 (+3 bonus), qmd_entity -65..+20 (over the rows whose query names an entity; qmd_entity_rows is
their share), and qmd_excellent, the share of rows rated excellent (>= 0.80).
"""

import re

import datasets
import evaluate
from sacrebleu.metrics import CHRF

from .qmd_rubric import EXCELLENT, score_expansion

WEIGHTS = {
    "closeness": 0.40,
    "preserve": 0.20,
    "lex_keywords": 0.10,
    "vec_natural": 0.10,
    "diversity": 0.15,
    "hyde": 0.05,
}
MAX_LINES_PER_KIND = 5
HYDE_ABSENT = 0.5  # hyde is optional, but most references have one
TEMPLATE_TOKENS = ("<|im_start|>", "<|im_end|>", "<|endoftext|>", "<start_of_turn>", "<end_of_turn>", "<eos>")
STOPWORDS = frozenset(
    "a an the of to for in on at by with from about into over under and or but not no is are was were be been "
    "being do does did can could should would will how what when where why which who whom whose this that these "
    "those it its my your our their i me we you they he she his her them as if than then so up out all any some "
    "vs versus".split()
)
# capitalised words that start a query without naming anything
QUERY_STARTERS = frozenset(
    "best guide setup set configure install build create make run fix debug use using compare learn find show "
    "list explain understand overview introduction tutorial tips help get new latest recent top".split()
)
_ONLY_MODE = re.compile(r"\s+/?only:\s*(lex|vec|hyde)\s*$", re.IGNORECASE)
_WORD = re.compile(r"[\w][\w.+#\-/@']*")

_DESCRIPTION = __doc__
_KWARGS = """
Args:
    predictions (list of str): generated expansions, one `kind: text` line each.
    references (list of dict): {"query": the search query, "expansion": the reference expansion lines}.
Returns:
    score (float): the mean per-example score in [0, 1], higher is better; and the mean of each component:
    valid, closeness, preserve, lex_keywords, vec_natural, diversity, hyde.
    qmd_score (float): the mean of QMD's rubric normalised to [0, 1]; qmd_format, qmd_diversity, qmd_hyde,
    qmd_quality, qmd_entity (mean points), qmd_entity_rows and qmd_excellent (shares of rows).
"""
QMD_PARTS = ("format", "diversity", "hyde", "quality")


def words(text: str) -> list[str]:
    return [w.strip(".'-/").lower() for w in _WORD.findall(text) if w.strip(".'-/")]


def content_words(text: str) -> set[str]:
    return {w for w in words(text) if w not in STOPWORDS}


def parse(text: str) -> tuple[dict[str, list[str]], list[str]]:
    """({kind: bodies}, invalid lines) of an expansion."""
    kinds: dict[str, list[str]] = {"lex": [], "vec": [], "hyde": []}
    invalid = []
    for line in text.strip().splitlines():
        line = line.strip()
        if not line:
            continue
        kind, sep, body = line.partition(":")
        if sep and kind in kinds and body.strip():
            kinds[kind].append(body.strip())
        else:
            invalid.append(line)
    return kinds, invalid


def is_valid(text: str, kinds: dict[str, list[str]], invalid: list[str]) -> bool:
    return (
        not invalid
        and not any(token in text for token in TEMPLATE_TOKENS)
        and 1 <= len(kinds["lex"]) <= MAX_LINES_PER_KIND
        and 1 <= len(kinds["vec"]) <= MAX_LINES_PER_KIND
        and len(kinds["hyde"]) <= 1
    )


def entities(query: str) -> set[str]:
    """Named entities by heuristics: capitalised or mixed-case words (a capitalised first word unless it is a
    common query starter), acronyms, and words with digits or + # . characters (C++, node.js, Q4)."""
    found = set()
    for i, raw in enumerate(_WORD.findall(query)):
        word = raw.strip(".'-/")
        if not word:
            continue
        upper_inside = any(c.isupper() for c in word[1:])
        technical = any(c.isdigit() or c in "+#." for c in word)
        starter = i == 0 and word.lower() in QUERY_STARTERS
        proper = word[0].isupper() and not starter and word.lower() not in STOPWORDS
        if upper_inside or technical or proper:
            found.add(word.lower())
    return found


# sentence chrF as sacrebleu computes it: character 6-grams, no word n-grams, beta 2, lower-cased, spaces ignored
_CHRF = CHRF(char_order=6, word_order=0, beta=2, lowercase=True, whitespace=False)


def chrf(hypothesis: str, reference: str) -> float:
    """Sentence chrF in [0, 1] (sacrebleu's, lower-cased)."""
    return _CHRF.sentence_score(hypothesis, [reference]).score / 100


def redundant_flags(query: str, lines: list[str]) -> list[bool]:
    """A line is redundant if it has no content word beyond the query's, or nearly repeats an earlier line."""
    query_words = content_words(query)
    seen: list[set[str]] = []
    flags = []
    for line in lines:
        own = content_words(line)
        echo = not (own - query_words)
        repeat = any(len(own ^ earlier) < 2 for earlier in seen)
        flags.append(echo or repeat)
        seen.append(own)
    return flags


def score_example(query: str, prediction: str, reference: str) -> dict:
    """Every component and the gated score of one expansion."""
    query = _ONLY_MODE.sub("", query)
    kinds, invalid = parse(prediction)
    ref_kinds, _ = parse(reference)
    lines = [(k, body) for k in ("lex", "vec", "hyde") for body in kinds[k]]
    flags = redundant_flags(query, [body for _, body in lines])
    useful = {k: [body for (kind, body), r in zip(lines, flags, strict=True) if kind == k and not r] for k in kinds}

    key_terms = content_words(query)
    targets = entities(query) or key_terms
    if useful["lex"]:
        lex_text = " ".join(useful["lex"]).lower()
        line_share = sum(bool(content_words(body) & key_terms) for body in useful["lex"]) / len(useful["lex"])
        coverage = sum(t in lex_text for t in targets) / len(targets) if targets else 1.0
        preserve = 0.5 * line_share + 0.5 * coverage if key_terms else 1.0
    else:
        preserve = 0.0

    def keyword_like(body: str) -> bool:
        w = words(body)
        return (
            1 <= len(w) <= 8
            and not body.rstrip().endswith((".", "?", "!"))
            and sum(x in STOPWORDS for x in w) * 2 < len(w)
        )

    def natural(body: str) -> bool:
        w = words(body)
        return 4 <= len(w) <= 30 and any(x in STOPWORDS for x in w)

    lex_keywords = sum(map(keyword_like, useful["lex"])) / len(useful["lex"]) if useful["lex"] else 0.0
    vec_natural = sum(map(natural, useful["vec"])) / len(useful["vec"]) if useful["vec"] else 0.0
    diversity = 1 - sum(flags) / len(flags) if flags else 0.0
    if not kinds["hyde"]:
        hyde = HYDE_ABSENT
    else:
        n = len(kinds["hyde"][0])
        hyde = 0.0 if not useful["hyde"] else 1.0 if 50 <= n <= 400 else 0.5 if 20 <= n <= 600 else 0.0
    ref_present = [k for k in ("lex", "vec", "hyde") if ref_kinds[k]]
    closeness = (
        sum(chrf("\n".join(kinds[k]), "\n".join(ref_kinds[k])) if kinds[k] else 0.0 for k in ref_present)
        / len(ref_present)
        if ref_present
        else 0.0
    )
    parts = {
        "closeness": closeness,
        "preserve": preserve,
        "lex_keywords": lex_keywords,
        "vec_natural": vec_natural,
        "diversity": diversity,
        "hyde": hyde,
    }
    valid = is_valid(prediction, kinds, invalid)
    return {"score": float(valid) * sum(WEIGHTS[k] * v for k, v in parts.items()), "valid": float(valid), **parts}


class QueryExpansion(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS,
            features=datasets.Features(
                {
                    "predictions": datasets.Value("string"),
                    "references": {"query": datasets.Value("string"), "expansion": datasets.Value("string")},
                }
            ),
        )

    def _compute(self, predictions, references):
        pairs = list(zip(predictions, references, strict=True))
        rows = [score_example(r["query"], p, r["expansion"]) for p, r in pairs]
        result = {key: sum(row[key] for row in rows) / len(rows) if rows else 0.0 for key in ("score", *WEIGHTS)}
        result["valid"] = sum(row["valid"] for row in rows) / len(rows) if rows else 0.0
        return {**result, **qmd_means([score_expansion(r["query"], p) for p, r in pairs])}


def qmd_means(rows: list[dict]) -> dict[str, float]:
    """Corpus means of QMD's rubric: the normalised score, each section's points and two shares of rows."""

    def mean(values: list[float]) -> float:
        return sum(values) / len(values) if values else 0.0

    with_entities = [row["entity"] for row in rows if row["has_entities"]]
    return {
        "qmd_score": mean([row["score"] for row in rows]),
        **{f"qmd_{part}": mean([row[part] for row in rows]) for part in QMD_PARTS},
        "qmd_entity": mean(with_entities),
        "qmd_entity_rows": len(with_entities) / len(rows) if rows else 0.0,
        "qmd_excellent": mean([float(row["score"] >= EXCELLENT) for row in rows]),
    }
