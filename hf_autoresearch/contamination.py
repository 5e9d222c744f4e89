"""Contamination check: training rows that are (near-)copies of selection or holdout rows.

Exact duplicates are equal after normalisation (case, whitespace, punctuation). Near-duplicates share most of
their word n-grams: the Jaccard similarity of their n-gram sets is at least `threshold`. A score measured on rows
the model trained on is not a score, so by default the harness drops such rows from training before the baseline.
"""

from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from dataclasses import asdict, dataclass, field

NGRAM = 3
THRESHOLD = 0.8
MAX_EXAMPLES = 5


def normalize(text: str) -> str:
    """Lower case, punctuation removed, whitespace collapsed; accents folded."""
    text = unicodedata.normalize("NFKD", str(text)).lower()
    text = "".join(" " if unicodedata.category(c).startswith("P") else c for c in text if not unicodedata.combining(c))
    return re.sub(r"\s+", " ", text).strip()


def shingles(normalized: str, n: int = NGRAM) -> frozenset[tuple[str, ...]]:
    """Word n-grams of a normalised text (the whole text as one gram when it is shorter than n words)."""
    words = normalized.split()
    if len(words) < n:
        return frozenset([tuple(words)]) if words else frozenset()
    return frozenset(tuple(words[i : i + n]) for i in range(len(words) - n + 1))


@dataclass
class Match:
    train_index: int
    split: str
    eval_index: int
    similarity: float  # 1.0 for an exact duplicate after normalisation
    train_text: str
    eval_text: str


@dataclass
class ContaminationReport:
    threshold: float
    ngram: int
    exact: list[Match] = field(default_factory=list)
    near: list[Match] = field(default_factory=list)

    @property
    def train_indices(self) -> set[int]:
        """Training rows that match any selection or holdout row."""
        return {m.train_index for m in self.exact + self.near}

    def counts(self) -> dict[str, int]:
        out = {"train_rows": len(self.train_indices)}
        for kind, matches in (("exact", self.exact), ("near", self.near)):
            for split in sorted({m.split for m in matches}):
                out[f"{kind}_{split}"] = len({m.eval_index for m in matches if m.split == split})
        return out

    def summary(self) -> str:
        if not self.train_indices:
            return "contamination check: no training row duplicates a selection or holdout row"
        lines = [
            f"contamination check: {len(self.train_indices)} training rows duplicate evaluation rows "
            f"({', '.join(f'{k} {v}' for k, v in self.counts().items() if k != 'train_rows')})"
        ]
        for m in (self.exact + self.near)[:MAX_EXAMPLES]:
            kind = "exact" if m.similarity == 1.0 else f"near {m.similarity:.2f}"
            lines.append(f"  {kind} {m.split}: {m.train_text[:70]!r} ~ {m.eval_text[:70]!r}")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {
            "threshold": self.threshold,
            "ngram": self.ngram,
            "counts": self.counts(),
            "examples": [asdict(m) for m in (self.exact + self.near)[:50]],
        }


def find_contamination(
    train_texts: list[str], eval_sets: dict[str, list[str]], threshold: float = THRESHOLD, n: int = NGRAM
) -> ContaminationReport:
    """Match every training text against every evaluation set, through an inverted index of n-grams."""
    report = ContaminationReport(threshold=threshold, ngram=n)
    exact_index: dict[str, list[tuple[str, int]]] = defaultdict(list)
    gram_index: dict[tuple[str, ...], list[tuple[str, int]]] = defaultdict(list)
    eval_grams: dict[tuple[str, int], frozenset] = {}
    for split, texts in eval_sets.items():
        for i, text in enumerate(texts):
            norm = normalize(text)
            exact_index[norm].append((split, i))
            eval_grams[(split, i)] = grams = shingles(norm, n)
            for gram in grams:
                gram_index[gram].append((split, i))

    for t, text in enumerate(train_texts):
        norm = normalize(text)
        if norm in exact_index:
            for split, i in exact_index[norm]:
                report.exact.append(Match(t, split, i, 1.0, text, eval_sets[split][i]))
            continue
        grams = shingles(norm, n)
        shared: dict[tuple[str, int], int] = defaultdict(int)
        for gram in grams:
            for key in gram_index.get(gram, ()):
                shared[key] += 1
        for key, common in shared.items():
            similarity = common / (len(grams) + len(eval_grams[key]) - common)
            if similarity >= threshold:
                report.near.append(Match(t, key[0], key[1], round(similarity, 4), text, eval_sets[key[0]][key[1]]))
    return report
