import pytest

from hf_autoresearch.ledger import ExperimentRecord, Ledger


def record(number, status="keep", selection=0.5, **kw):
    return ExperimentRecord(
        number=number, status=status, description=f"exp {number}", commit=f"{number:040d}", selection=selection, **kw
    )


def test_append_writes_jsonl_and_tsv_in_step(tmp_path):
    ledger = Ledger(tmp_path)
    ledger.append(record(0, holdout=0.4))
    ledger.append(record(1, "discard", 0.45))
    ledger.append(record(2, "crash", None, reason="boom"))
    assert [r.number for r in ledger.records()] == [0, 1, 2]
    rows = ledger.tsv.read_text().splitlines()
    assert rows[0].split("\t") == [
        "experiment",
        "commit",
        "status",
        "selection",
        "holdout",
        "train_seconds",
        "total_seconds",
        "gain",
        "threshold",
        "description",
    ]
    assert rows[1].split("\t")[:5] == ["exp-0000", "000000000000", "keep", "0.500000", "0.400000"]
    assert rows[3].split("\t")[2:5] == ["crash", "", ""]
    assert ledger.best().number == 0
    assert ledger.next_number() == 3


def test_best_is_the_last_keep_and_numbers_only_grow(tmp_path):
    ledger = Ledger(tmp_path)
    ledger.append(record(0, selection=0.1))
    ledger.append(record(1, selection=0.3))
    ledger.append(record(2, "discard", 0.2))
    assert ledger.best().number == 1
    with pytest.raises(ValueError, match="already in the ledger"):
        ledger.append(record(2, "discard"))
    with pytest.raises(ValueError, match="status"):
        record(3, "maybe")


def test_torn_last_line_is_ignored_and_repaired(tmp_path):
    """The harness killed mid-write leaves half a line: resume sees the finished experiments only."""
    ledger = Ledger(tmp_path)
    ledger.append(record(0))
    ledger.append(record(1, "discard", 0.2))
    with ledger.jsonl.open("a") as f:
        f.write('{"number": 2, "status": "ke')
    assert [r.number for r in ledger.records()] == [0, 1]
    assert ledger.next_number() == 2
    ledger.append(record(2, "discard", 0.3))
    assert [r.number for r in Ledger(tmp_path).records()] == [0, 1, 2]
    assert len(ledger.tsv.read_text().splitlines()) == 4
