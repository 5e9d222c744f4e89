"""The run's record: ledger.jsonl holds everything, results.tsv one readable row an experiment.

ledger.jsonl is the source of truth and is appended (and fsynced) once an experiment is finished; results.tsv
is rewritten from it, so the two never disagree. An experiment that was interrupted leaves no row at all.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

STATUSES = ("keep", "discard", "crash", "timeout", "invalid")
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
    proposal: dict = field(default_factory=dict)  # what the agent says about its proposal
    agent_usage: dict = field(default_factory=dict)  # tokens the agent used: input, output, cache read/write
    agent_cost: float = 0.0  # dollars the agent's API calls cost for this experiment
    decision: dict = field(default_factory=dict)  # the rule and its numbers: best, gain, threshold, noise floor
    trials: list = field(default_factory=list)  # each training run (baseline repeats, confirmation): seed, scores
    seed: int = 0
    peak_rss_mb: float = 0.0
    finished_at: str = ""

    def __post_init__(self):
        if self.status not in STATUSES:
            raise ValueError(f"status {self.status!r} is not one of {STATUSES}")

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


class Ledger:
    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.jsonl = self.folder / "ledger.jsonl"
        self.tsv = self.folder / "results.tsv"

    def records(self) -> list[ExperimentRecord]:
        """Every finished experiment, in order. A torn last line (the harness died mid-write) is ignored."""
        if not self.jsonl.is_file():
            return []
        records = []
        for line in self.jsonl.read_text().splitlines():
            if not line.strip():
                continue
            try:
                records.append(ExperimentRecord(**json.loads(line)))
            except (json.JSONDecodeError, TypeError):
                break
        return records

    def append(self, record: ExperimentRecord) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        records = self.records()
        if records and record.number <= records[-1].number:
            raise ValueError(f"{record.experiment} is already in the ledger")
        if len(records) != self._line_count():  # drop a torn line before appending after it
            self._rewrite_jsonl(records)
        with self.jsonl.open("a") as f:
            f.write(json.dumps(asdict(record), ensure_ascii=False) + "\n")
            f.flush()
            os.fsync(f.fileno())
        self.write_tsv(records + [record])

    def _line_count(self) -> int:
        return sum(1 for line in self.jsonl.read_text().splitlines() if line.strip()) if self.jsonl.is_file() else 0

    def _rewrite_jsonl(self, records: list[ExperimentRecord]) -> None:
        tmp = self.jsonl.with_suffix(".tmp")
        tmp.write_text("".join(json.dumps(asdict(r), ensure_ascii=False) + "\n" for r in records))
        tmp.replace(self.jsonl)

    def write_tsv(self, records: list[ExperimentRecord] | None = None) -> None:
        records = self.records() if records is None else records
        tmp = self.tsv.with_suffix(".tmp")
        tmp.write_text("\t".join(TSV_COLUMNS) + "\n" + "".join(r.tsv_row() + "\n" for r in records))
        tmp.replace(self.tsv)

    def best(self) -> ExperimentRecord | None:
        """The current best: the last kept experiment (the baseline is kept by definition)."""
        kept = [r for r in self.records() if r.status == "keep"]
        return kept[-1] if kept else None

    def next_number(self) -> int:
        records = self.records()
        return records[-1].number + 1 if records else 0
