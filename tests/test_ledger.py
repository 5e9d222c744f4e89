import json
import os

import pytest

from hf_autoresearch.errors import UserError
from hf_autoresearch.ledger import UNDECIDED, ExperimentRecord, Ledger, LedgerError


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
    assert [r.number for r in ledger.records()] == [0, 1, 2] and ledger.kept_numbers() == {0}


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
    ledger.append(record(2, "discard", 0.3))
    assert [r.number for r in Ledger(tmp_path).records()] == [0, 1, 2]
    assert len(ledger.tsv.read_text().splitlines()) == 4


def test_torn_last_line_is_cut_at_its_start_and_every_earlier_byte_is_kept(tmp_path):
    ledger = Ledger(tmp_path)
    tmp_path.mkdir(exist_ok=True)
    # written by hand or another version: compact separators, so a rewrite from memory would change the bytes
    ledger.jsonl.write_text(json.dumps(json.loads(record(0).to_json()), separators=(",", ":")) + "\n")
    ledger.append(record(1, "discard", 0.2))
    good = ledger.jsonl.read_bytes()
    with ledger.jsonl.open("ab") as f:
        f.write(b'{"number": 2, "status": "ke')
    ledger.append(record(2, "crash", None))
    data = ledger.jsonl.read_bytes()
    assert data.startswith(good)
    assert data[len(good) :].decode() == record(2, "crash", None).to_json() + "\n"


def test_a_complete_last_line_that_lost_its_newline_is_kept(tmp_path):
    ledger = Ledger(tmp_path)
    ledger.append(record(0))
    ledger.jsonl.write_bytes(ledger.jsonl.read_bytes().rstrip(b"\n"))
    assert [r.number for r in ledger.records()] == [0]
    ledger.append(record(1))
    assert [r.number for r in Ledger(tmp_path).records()] == [0, 1]


@pytest.mark.parametrize("bad_line", [1, 2, 3])
def test_a_bad_line_that_is_not_a_torn_tail_stops_with_file_and_line_and_changes_nothing(tmp_path, bad_line):
    ledger = Ledger(tmp_path)
    for number in range(3):
        ledger.append(record(number))
    lines = ledger.jsonl.read_text().splitlines(keepends=True)
    lines[bad_line - 1] = '{"number": 9, "status": "ke\n'  # terminated by a newline: not a write cut by a crash
    ledger.jsonl.write_text("".join(lines))
    before = ledger.jsonl.read_bytes()
    with pytest.raises(LedgerError, match=rf"ledger\.jsonl:{bad_line}: unreadable") as err:
        ledger.records()
    assert isinstance(err.value, UserError)
    with pytest.raises(LedgerError, match=rf"ledger\.jsonl:{bad_line}:"):
        ledger.append(record(3))
    assert ledger.jsonl.read_bytes() == before  # no experiment deleted, none appended
    with pytest.raises(LedgerError):
        ledger.kept_numbers()  # a keep is never dropped because rows were not read


@pytest.mark.parametrize(
    "line",
    ['{"number": 5, "status": "maybe", "description": "x"}', '{"status": "keep"}', "[1, 2]", '{"number": "5"}'],
)
def test_a_record_of_the_wrong_shape_is_an_error_not_a_truncation(tmp_path, line):
    ledger = Ledger(tmp_path)
    ledger.append(record(0))
    with ledger.jsonl.open("a") as f:
        f.write(line + "\n")
    with pytest.raises(LedgerError, match=r"ledger\.jsonl:2:"):
        ledger.records()


def test_a_duplicated_number_in_the_file_is_an_error(tmp_path):
    ledger = Ledger(tmp_path)
    ledger.append(record(0))
    ledger.append(record(1))
    with ledger.jsonl.open("a") as f:
        f.write(record(1, "discard").to_json() + "\n")
    with pytest.raises(LedgerError, match=r"ledger\.jsonl:3: exp-0001 is already recorded on line 2"):
        ledger.records()


def test_fields_from_a_newer_version_are_kept_and_written_back_unchanged(tmp_path):
    ledger = Ledger(tmp_path)
    newer = json.loads(record(0).to_json()) | {"slot": 3, "energy": {"kwh": 0.2}}
    ledger.folder.mkdir(exist_ok=True)
    ledger.jsonl.write_text(json.dumps(newer) + "\n")
    (first,) = ledger.records()
    assert first.extra == {"slot": 3, "energy": {"kwh": 0.2}}
    assert json.loads(first.to_json()) == newer  # a rewrite of this record would lose nothing
    ledger.append(record(1))
    assert json.loads(ledger.jsonl.read_text().splitlines()[0]) == newer
    assert "extra" not in json.loads(ledger.jsonl.read_text().splitlines()[1])


def test_numbers_may_arrive_out_of_order_but_never_twice(tmp_path):
    """Several slots finish out of order: the ledger keeps the order of decisions, results.tsv sorts by number."""
    ledger = Ledger(tmp_path)
    for number, status in ((0, "keep"), (3, "discard"), (1, "keep"), (2, "crash")):
        ledger.append(record(number, status))
    assert [r.number for r in ledger.records()] == [0, 3, 1, 2]
    assert [row.split("\t")[0] for row in ledger.tsv.read_text().splitlines()[1:]] == [
        "exp-0000",
        "exp-0001",
        "exp-0002",
        "exp-0003",
    ]
    assert ledger.best().number == 1  # the last keep decided
    with pytest.raises(ValueError, match="exp-0003 is already in the ledger"):
        ledger.append(record(3, "keep"))
    assert [r.number for r in ledger.records()] == [0, 3, 1, 2]


def test_results_tsv_is_replaced_atomically(tmp_path, monkeypatch):
    ledger = Ledger(tmp_path)
    ledger.append(record(0))
    before = ledger.tsv.read_text()

    def crash(*args):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        ledger.append(record(1))
    assert ledger.tsv.read_text() == before  # the old table, whole, not a half-written one
    monkeypatch.undo()
    ledger.write_tsv()
    assert len(ledger.tsv.read_text().splitlines()) == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ledger.jsonl", "results.tsv"]  # no temp file left


def test_an_undecided_experiment_is_never_recorded(tmp_path):
    """Experiments start undecided (not as a placeholder "crash" that reads like a real outcome) until judged."""
    ledger = Ledger(tmp_path)
    ledger.append(record(0))
    with pytest.raises(ValueError, match="exp-0001 is not decided yet"):
        ledger.append(record(1, UNDECIDED, None))
    assert [r.number for r in ledger.records()] == [0]
