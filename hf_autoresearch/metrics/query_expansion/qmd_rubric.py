"""QMD's own query-expansion rubric (tobi/qmd `finetune/SCORING.md`), implemented from its specification.

Points per section: format 0..30, diversity 0..30, hyde 0..20 (scored only when a `hyde:` line is present), quality
0..20 (+3 bonus for quoted phrases), entity -65..+20 (scored only when the query names an entity). Each criterion
starts at its points and loses its deduction once per occurrence; a section is clamped to its range.

    normalised = clamp(total / max, 0, 1),   max = 80 + 20 if a hyde line is present + 20 if the query has entities

SCORING.md gives max 120 (100 without hyde); a query with no named entity has nothing to preserve, so the entity
section leaves both the total and the max (as the optional hyde does), which is also what the worked examples add
up. Where the rubric is ambiguous the choice made here is written next to the code and in
recipes/query-expansion/README.md, with the worked examples it reproduces.
"""

from __future__ import annotations

import re
from collections import Counter

FORMAT_MAX, DIVERSITY_MAX, HYDE_MAX, QUALITY_MAX, ENTITY_MAX, ENTITY_MIN = 30, 30, 20, 20, 20, -65
QUOTE_BONUS = 3
EXCELLENT = 0.80  # the rubric's rating bands: >= 0.80 excellent, >= 0.60 good, >= 0.40 acceptable, >= 0.20 poor

# word lists the rubric gives
KEY_TERM_STOPWORDS = frozenset(
    "what is how to the a an in on for of and or with my your do does can i me we who where when why which find "
    "get show tell".split()
)
REPETITION_STOPWORDS = frozenset("the a an is are to for of in and or".split())
GENERIC_LEX_PHRASES = (
    "find information about",
    "search for",
    "look up",
    "get information",
    "learn about",
    "information on",
    "details about",
    "find out about",
    "what is",
    "how to",
    "guide to",
    "help with",
)
# ours: words that make a vec line read as language rather than a keyword list
FUNCTION_WORDS = KEY_TERM_STOPWORDS | frozenset(
    "are was were be been being from about into by at as vs versus between without using should would could will "
    "this that these those it its their our his her they you he she them there than then if not no".split()
)
# ours: words after a name that do not extend it ("Bob asked about deploy": only Bob)
NOT_NAME_PARTS = FUNCTION_WORDS | frozenset(
    "asked said told wrote sent mentioned shared says meeting meetings notes email emails call discussion "
    "conversation chat".split()
)
# ours: capitalised words that start a query without naming anything ("Configure nginx")
QUERY_START_WORDS = frozenset(
    "best guide setup set configure install build create make run fix debug use using compare learn explain list "
    "understand overview introduction tutorial tips help new latest recent top difference why".split()
)
TEMPLATE_TOKENS = ("<|im_start|>", "<|im_end|>", "<|endoftext|>", "<start_of_turn>", "<end_of_turn>", "<eos>")
_ONLY_MODE = re.compile(r"\s+/?only:\s*(lex|vec|hyde)\s*$", re.IGNORECASE)
_VALID_LINE = re.compile(r"^(lex|vec|hyde):\s*(\S.*)$")
_PREFIX_LIKE = re.compile(r"^[A-Za-z][\w-]*\s*:")  # `Lex: ...`, `keywords: ...`: a wrong prefix, not prose
_QUOTED = re.compile(r'"([^"]+)"')
_ENTITY_STRIP = ".,!?:;()[]\"'"


def words(text: str) -> list[str]:
    """Lower-cased words with surrounding punctuation removed (`C++` and `node.js` keep theirs)."""
    return [w for w in (raw.strip(_ENTITY_STRIP).lower() for raw in text.split()) if w]


class Parsed:
    """The lines of an expansion by kind, plus what is wrong with the rest."""

    def __init__(self, text: str):
        self.lines: dict[str, list[str]] = {"lex": [], "vec": [], "hyde": []}
        self.invalid: list[str] = []  # non-empty lines without a valid `kind: text` prefix
        self.garbage = any(token in text for token in TEMPLATE_TOKENS)  # prose or template tokens
        self.hyde_text = ""  # the first hyde passage with any unprefixed lines that continue it
        self.hyde_has_newlines = False
        in_hyde = False
        for raw in text.strip().split("\n"):
            line = raw.strip()
            if not line:
                continue
            match = _VALID_LINE.match(line)
            if match:
                kind, body = match.group(1), match.group(2).strip()
                self.lines[kind].append(body)
                in_hyde = kind == "hyde" and len(self.lines["hyde"]) == 1
                if in_hyde:
                    self.hyde_text = body
                continue
            self.invalid.append(line)
            self.garbage |= not _PREFIX_LIKE.match(line)
            if in_hyde:  # the passage ran onto the next line
                self.hyde_has_newlines = True
                self.hyde_text += "\n" + line

    @property
    def lex(self) -> list[str]:
        return self.lines["lex"]

    @property
    def vec(self) -> list[str]:
        return self.lines["vec"]

    @property
    def hyde(self) -> list[str]:
        return self.lines["hyde"]


def named_entities(query: str) -> list[str]:
    """The rubric's entity heuristics: acronyms (TDS), capitalised words in any position unless a function word or,
    first, a common query starter (React, Bob), technical terms with . + # @ (node.js, C++), CamelCase, and a word
    that follows an entity unless a function word or a verb like `asked` (TDS motorsports). Lower-cased, in order."""
    found: list[str] = []
    previous_was_entity = False
    for i, raw in enumerate(query.split()):
        word = raw.strip(_ENTITY_STRIP)
        word = word[:-2] if word.lower().endswith(("'s", "\u2019s")) else word  # Rachel's notes -> rachel
        if not word:
            previous_was_entity = False
            continue
        lower = word.lower()
        acronym = len(word) >= 2 and word.isupper()
        capitalised = word[0].isupper() and lower not in NOT_NAME_PARTS
        capitalised &= i > 0 or lower not in QUERY_START_WORDS
        technical = len(word) >= 2 and any(c in word for c in ".+#@")  # hyphenated English words are not entities
        camel_case = word[0].isupper() and any(c.isupper() for c in word[1:])
        compound = previous_was_entity and lower not in NOT_NAME_PARTS
        previous_was_entity = acronym or capitalised or technical or camel_case or compound
        if previous_was_entity and lower not in found:
            found.append(lower)
    return found


def is_diverse(a: str, b: str, min_distance: int) -> bool:
    """The rubric's diversity check: neither line contains the other and more than `min_distance` words belong to
    only one of them (its is_diverse heuristic with the table's "> 3" for lex and "> 5" for vec)."""
    x, y = " ".join(words(a)), " ".join(words(b))
    return x not in y and y not in x and len(set(x.split()) ^ set(y.split())) > min_distance


def is_generic(lex_line: str) -> bool:
    """A lex line that is a filler phrase with (almost) nothing specific left beside it."""
    lower = " ".join(lex_line.lower().split())
    return any(phrase in lower and len(lower.replace(phrase, "", 1).strip()) < 3 for phrase in GENERIC_LEX_PHRASES)


def keeps_key_term(line: str, key_terms: set[str]) -> bool:
    """The line has a word starting with one of the query's key terms (`auth` -> `authentication`)."""
    return not key_terms or any(w.startswith(t) for w in words(line) for t in key_terms)


def is_natural(vec_line: str) -> bool:
    """A phrase of 3+ words with a function word; `react hooks best practices guide` is a keyword list."""
    line_words = words(vec_line)
    return len(line_words) >= 3 and any(w in FUNCTION_WORDS for w in line_words)


def repeated_words(text: str) -> int:
    """Words other than the rubric's stop words that occur 3+ times."""
    counts = Counter(words(text))
    return sum(1 for w, c in counts.items() if c >= 3 and w not in REPETITION_STOPWORDS)


def _clamp(value: float, low: float, high: float) -> float:
    return max(low, min(high, value))


def format_points(p: Parsed) -> int:
    points = (10 if p.lex else -10) + (10 if p.vec else -10)
    points += 10 - 5 * len(p.invalid)  # all lines have a valid prefix; -5 per line that has not
    points -= 10 if p.garbage else 0  # prose (or chat-template tokens) outside the prefixed lines
    return _clamp(points, 0, FORMAT_MAX)


def _pairs_points(lines: list[str], min_distance: int) -> int:
    """+5 when 2+ lines are pairwise diverse, -2 per duplicate pair; a single line is not "multiple diverse lines"
    and earns nothing (the medium worked example needs this reading)."""
    if len(lines) < 2:
        return 0
    duplicates = sum(not is_diverse(a, b, min_distance) for i, a in enumerate(lines) for b in lines[i + 1 :])
    return 5 - 2 * duplicates


def diversity_points(p: Parsed, query: str) -> int:
    points = 10 if p.lex and p.vec else -10
    points += 5 if len(p.lex) + len(p.vec) >= 2 else -5
    points += _pairs_points(p.lex, 3) + _pairs_points(p.vec, 5)
    points += 5 - 5 * sum(words(line) == words(query) for line in p.lex + p.vec)  # lines equal to the query
    return _clamp(points, 0, DIVERSITY_MAX)


def hyde_points(p: Parsed) -> int:
    if not p.hyde:
        return 0
    points = 5 if len(p.hyde) == 1 else 0  # present and well formed: one passage
    length = len(p.hyde_text)  # the whole first passage, with any lines it ran onto
    points += 5 if 50 <= length <= 200 else 5 - 3 if length < 50 else 0  # concise; -3 too short, -5 too long
    points += 0 if p.hyde_has_newlines else 5
    points += max(0, 5 - 2 * repeated_words(p.hyde_text))  # the rubric's word_repetition_score
    return _clamp(points, 0, HYDE_MAX)


def quality_points(p: Parsed, query: str) -> int:
    """Base relevance (subjective in the rubric; always given here), lex keeps key terms and is not filler, lex
    shorter than vec on average, every vec line natural language, +3 for a quoted multi-word query phrase in lex.
    A criterion about lines holds when there are none; the lex/vec comparison needs both kinds."""
    key_terms = {w for w in words(query) if w not in KEY_TERM_STOPWORDS}
    points = 5
    if all(keeps_key_term(line, key_terms) and not is_generic(line) for line in p.lex):
        points += 5
    if p.lex and p.vec and sum(map(len, p.lex)) / len(p.lex) < sum(map(len, p.vec)) / len(p.vec):
        points += 5
    if all(is_natural(line) for line in p.vec):
        points += 5
    query_text = " ".join(words(query))
    quoted = [" ".join(words(q)) for line in p.lex for q in _QUOTED.findall(line)]
    if any(len(q.split()) >= 2 and q in query_text for q in quoted):
        points += QUOTE_BONUS
    return points


def entity_points(p: Parsed, entities: list[str]) -> int:
    """Per line: +15 all lex lines hold an entity, +5 some, -30 none; -20 per entity absent from lex and vec;
    -15 per generic lex line; +5 when a vec line holds an entity. Only called when the query has entities."""

    def holds(line: str) -> bool:
        lower = line.lower()
        return any(e in lower for e in entities)

    with_entity = sum(map(holds, p.lex))
    points = 15 if p.lex and with_entity == len(p.lex) else 5 if with_entity else -30
    output = " ".join(p.lex + p.vec).lower()
    points -= 20 * sum(e not in output for e in entities)
    points -= 15 * sum(map(is_generic, p.lex))
    points += 5 if any(map(holds, p.vec)) else 0
    return _clamp(points, ENTITY_MIN, ENTITY_MAX)


def score_expansion(query: str, expansion: str) -> dict:
    """Every section's points, the total, the max and the normalised score of one expansion."""
    query = _ONLY_MODE.sub("", query).strip()
    p = Parsed(expansion)
    entities = named_entities(query)
    parts = {
        "format": format_points(p),
        "diversity": diversity_points(p, query),
        "hyde": hyde_points(p),
        "quality": quality_points(p, query),
        "entity": entity_points(p, entities) if entities else 0,
    }
    total = sum(parts.values())
    maximum = FORMAT_MAX + DIVERSITY_MAX + QUALITY_MAX + (HYDE_MAX if p.hyde else 0) + (ENTITY_MAX if entities else 0)
    return {
        **parts,
        "total": total,
        "max": maximum,
        "score": _clamp(total / maximum, 0.0, 1.0),
        "has_entities": bool(entities),
    }
