"""The run's record: ledger.jsonl holds everything, results.tsv one readable row an experiment.

ledger.jsonl is the source of truth. It is only ever appended to (one fsynced line per finished experiment) and
never rewritten: a line is never lost because another one is bad. The one repair is a torn last line (the harness
died mid-write), which is cut off at its start before the next append. Any other unreadable line is an error naming
the file and line. results.tsv is rewritten from ledger.jsonl (temp file, fsync, rename), so the two never disagree.

Experiment numbers are allocated by the caller and must be unique; they need not arrive in order (several slots
finish out of order), so records() is file order (the order of decisions) and results.tsv is sorted by number.
"""

from __future__ import annotations

import fcntl
import json
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from hf_autoresearch.errors import UserError

STATUSES = ("keep", "discard", "crash", "timeout", "invalid")
UNDECIDED = "undecided"  # an experiment in flight; never written to the ledger
TSV_COLUMNS = (
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
)


def experiment_id(number: int) -> str:
    return f"exp-{number:04d}"


@dataclass
class ExperimentRecord:
    number: int
    status: str
    description: str
    commit: str = ""  # the git commit of train.py that was trained (empty when nothing was committed)
    parent: str = ""  # the best commit the experiment started from
    selection: float | None = None  # the score that decides, on the selection split
    holdout: float | None = None  # reported only, never used to decide
    scores: dict = field(default_factory=dict)  # every metric value, per split
    train_seconds: float = 0.0
    total_seconds: float = 0.0
    timings: dict = field(default_factory=dict)  # agent, launch, training, evaluation, bookkeeping seconds
    reason: str = ""  # why an experiment is invalid, crashed or timed out
    log_tail: str = ""
    diff: str = ""
    diffstat: str = ""
    summary: dict = field(default_factory=dict)  # what train.py wrote to summary.json (never trusted for scores)
    training: dict = field(default_factory=dict)  # the first run's curve and schedule, recorded by the harness
    proposal: dict = field(default_factory=dict)  # what the agent says about its proposal
    agent_usage: dict = field(default_factory=dict)  # tokens the agent used: input, output, cache read/write
    agent_cost: float = 0.0  # dollars the agent's API calls cost for this experiment
    decision: dict = field(default_factory=dict)  # the rule and its numbers: best, gain, threshold, noise floor
    trials: list = field(default_factory=list)  # each training run (baseline repeats, confirmation): seed, scores
    seed: int = 0
    peak_rss_mb: float = 0.0
    finished_at: str = ""
    extra: dict = field(default_factory=dict)  # fields written by a newer version: kept and written back unchanged

    def __post_init__(self):
        if self.status not in (*STATUSES, UNDECIDED):
            raise ValueError(f"status {self.status!r} is not one of {STATUSES}")
        if not isinstance(self.number, int) or isinstance(self.number, bool) or self.number < 0:
            raise ValueError(f"number {self.number!r} is not a non-negative integer")

    def to_json(self) -> str:
        """One ledger line (without the newline); fields from a newer version go back at the top level."""
        data = asdict(self)
        extra = data.pop("extra")
        return json.dumps({**extra, **data}, ensure_ascii=False)

    @classmethod
    def from_json(cls, line: str) -> ExperimentRecord:
        """Parse one ledger line; raises ValueError (or a JSON/type error) when it is not a record."""
        data = json.loads(line)
        if not isinstance(data, dict):
            raise ValueError(f"a record is a JSON object, not {type(data).__name__}")
        known = {f.name for f in fields(cls)} - {"extra"}
        extra = dict(data.pop("extra", None) or {})
        extra.update({k: data.pop(k) for k in list(data) if k not in known})
        return cls(**data, extra=extra)

    @property
    def experiment(self) -> str:
        return experiment_id(self.number)

    def tsv_row(self) -> str:
        def fmt(value):
            return "" if value is None else f"{value:.6f}" if isinstance(value, float) else str(value)

        cells = [
            self.experiment,
            self.commit[:12],
            self.status,
            fmt(self.selection),
            fmt(self.holdout),
            f"{self.train_seconds:.1f}",
            f"{self.total_seconds:.1f}",
            fmt(self.decision.get("gain")),
            fmt(self.decision.get("threshold")),
            " ".join(self.description.split()),
        ]
        return "\t".join(cells)


class LedgerError(UserError):
    """A ledger line that is not a torn last line cannot be read; nothing is written until it is fixed."""


def fsync_dir(folder: Path) -> None:
    """Make a rename or a new file in `folder` durable."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, text: str) -> None:
    """Replace `path` with `text` so that a reader (or a crash) sees the old file or the new one, never a mix."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


class Ledger:
    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.jsonl = self.folder / "ledger.jsonl"
        self.tsv = self.folder / "results.tsv"

    def records(self) -> list[ExperimentRecord]:
        """Every finished experiment in file order (the order they were decided). A torn last line is ignored."""
        if not self.jsonl.is_file():
            return []
        return self._parse(self.jsonl.read_bytes())[0]

    def _parse(self, data: bytes) -> tuple[list[ExperimentRecord], int]:
        """(records, byte offset where the good part ends: the start of a torn last line, else the file size)."""
        records, seen, offset = [], {}, 0
        lines = data.split(b"\n")
        for index, raw in enumerate(lines):
            line_no, start = index + 1, offset
            offset += len(raw) + 1
            last = index == len(lines) - 1  # the bytes after the final newline: empty unless a write was cut
            if not raw.strip(b" \t\r\x00"):
                if last and raw:  # a crash can leave a tail of zeros: torn
                    return records, start
                continue
            try:
                record = ExperimentRecord.from_json(raw.decode())
            except (ValueError, TypeError) as err:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
                if last:  # no newline: the write of this line never finished
                    return records, start
                raise LedgerError(
                    f"{self.jsonl}:{line_no}: unreadable experiment record ({type(err).__name__}: {err}). Nothing "
                    "was changed; fix or remove that line by hand (the other lines are intact), then run again"
                ) from err
            if record.number in seen:
                raise LedgerError(
                    f"{self.jsonl}:{line_no}: {record.experiment} is already recorded on line {seen[record.number]}; "
                    "remove one of the two lines by hand, then run again"
                )
            seen[record.number] = line_no
            records.append(record)
        return records, len(data)

    def append(self, record: ExperimentRecord) -> None:
        """Add one finished experiment (fsynced), then rewrite results.tsv. Refuses a number already recorded."""
        if record.status == UNDECIDED:
            raise ValueError(f"{record.experiment} is not decided yet: only finished experiments are recorded")
        self.folder.mkdir(parents=True, exist_ok=True)
        created = not self.jsonl.exists()
        with self.jsonl.open("ab+") as f:
            fcntl.flock(f, fcntl.LOCK_EX)  # one writer at a time, even across processes
            f.seek(0)
            data = f.read()
            records, good = self._parse(data)
            if any(r.number == record.number for r in records):
                raise ValueError(f"{record.experiment} is already in the ledger")
            if good < len(data):  # a torn last line: cut it off where it starts, keep every byte before it
                f.truncate(good)
            elif data and not data.endswith(b"\n"):  # a complete last line that lost only its newline
                f.write(b"\n")
            f.write(record.to_json().encode() + b"\n")
            f.flush()
            os.fsync(f.fileno())
        if created:
            fsync_dir(self.folder)
        self.write_tsv(records + [record])

    def write_tsv(self, records: list[ExperimentRecord] | None = None) -> None:
        """Rewrite results.tsv, one row an experiment sorted by number."""
        records = self.records() if records is None else records
        rows = "".join(r.tsv_row() + "\n" for r in sorted(records, key=lambda r: r.number))
        atomic_write(self.tsv, "\t".join(TSV_COLUMNS) + "\n" + rows)

    def best(self) -> ExperimentRecord | None:
        """The current best: the last experiment kept, in the order they were decided (the baseline is a keep)."""
        kept = [r for r in self.records() if r.status == "keep"]
        return kept[-1] if kept else None

    def kept_numbers(self) -> set[int]:
        return {r.number for r in self.records() if r.status == "keep"}
