import json

import pytest
from conftest import QMD

from hf_autoresearch.contamination import find_contamination, normalize


def test_normalize_ignores_case_whitespace_and_punctuation():
    assert (
        normalize("  What is the TOP-UP limit?\n")
        == normalize("what is the top up limit")
        == "what is the top up limit"
    )


def test_exact_and_near_duplicates_found_and_distinct_rows_not():
    train = [
        "How do I unblock my PIN?",
        "my card has not arrived yet after two weeks of waiting",
        "what is the exchange rate for euros",
        "Can I top up with a cheque?",
    ]
    evals = {
        "holdout": ["how do I unblock my pin", "my card has not arrived yet after two weeks of waiting now"],
        "selection": ["Where can I change my address?"],
    }
    report = find_contamination(train, evals)
    assert [(m.train_index, m.split, m.eval_index) for m in report.exact] == [(0, "holdout", 0)]
    assert [(m.train_index, m.eval_index) for m in report.near] == [(1, 1)]
    assert 0.8 <= report.near[0].similarity < 1
    assert report.train_indices == {0, 1}
    assert report.counts() == {"train_rows": 2, "exact_holdout": 1, "near_holdout": 1}
    assert find_contamination(train[2:], evals).train_indices == set()


def test_finds_the_known_overlap_of_qmd_eval_queries():
    """QMD's eval_queries.txt repeats 22 of its training queries verbatim: the check must find exactly those."""
    if not QMD.is_dir():
        pytest.skip("QMD data not found")
    queries = [json.loads(line)["query"] for f in sorted(QMD.glob("*.jsonl")) for line in f.open() if line.strip()]
    eval_queries = [
        q.strip() for q in (QMD / "eval_queries.txt").read_text().splitlines() if q.strip() and not q.startswith("#")
    ]
    report = find_contamination(queries, {"holdout": eval_queries})
    assert report.counts()["exact_holdout"] == 22
    assert "exact holdout" in report.summary()


def test_banking77_has_real_duplicates_across_train_and_test(banking77):
    from conftest import read_csv

    train = [r["text"] for r in read_csv(banking77 / "train.csv")]
    test = [r["text"] for r in read_csv(banking77 / "test.csv")]
    report = find_contamination(train, {"holdout": test})
    # e.g. 'Is there an auto top up option?' in train and 'Is there an auto top-up option?' in test
    assert report.counts()["exact_holdout"] > 10
    assert any(normalize(m.train_text) == "is there an auto top up option" for m in report.exact)
