"""The experiments being judged at once: each is a generator from assess.py, and this drives them all from the
loop's thread. A judgement's trainings run on the executor's slots; its questions about the current best are
answered here, in one thread, so decisions never race.

A keep is final from its first re-measure (or holdout) request until the loop has recorded it: meanwhile the
other judgements that ask for the best wait, so no two experiments are ever kept on top of the same best (the
branch stays linear).
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, field

from hf_autoresearch.driver.assess import BEST, Holdout, Judgement, Outcome, Remeasure, Train
from hf_autoresearch.errors import UserError
from hf_autoresearch.ledger import ExperimentRecord


@dataclass
class Job:
    record: ExperimentRecord
    judgement: Judgement
    futures: list[Future] = field(default_factory=list)  # what it waits for
    many: bool = False  # it asked for a list: answer with a list


class InFlight:
    def __init__(self, executor, best: Callable[[], ExperimentRecord], record: Callable[[Outcome], None], log=print):
        self.executor, self.best, self.record, self.log = executor, best, record, log
        self.jobs: dict[int, Job] = {}  # experiment number -> its judgement
        self.parked: list[Job] = []  # waiting to be told the best while a keep is recorded
        self.finalizing: Job | None = None  # the keep being scored on the holdout and recorded

    def __len__(self) -> int:
        return len(self.jobs)

    def numbers(self) -> list[int]:
        return sorted(self.jobs)

    def busy(self) -> int:
        """Trials submitted and not yet handed back to their judgement: the slots in use."""
        return sum(len(job.futures) for job in self.jobs.values())

    def start(self, record: ExperimentRecord, judgement: Judgement) -> None:
        job = Job(record, judgement)
        self.jobs[record.number] = job
        self._advance(job, None)

    def collect(self) -> int:
        """Hand every finished trial to its judgement (and record what is decided); how many jobs moved on."""
        moved = 0
        for job in list(self.jobs.values()):
            if job.futures and all(f.done() for f in job.futures):
                futures, job.futures = job.futures, []
                try:
                    results = [f.result() for f in futures]
                except UserError:  # a tampered evaluation: the whole run must stop
                    raise
                except Exception as err:  # a harness failure in one slot is that experiment's crash, not the run's
                    self._fail(job, f"the harness failed running it: {type(err).__name__}: {err}")
                    continue
                self._advance(job, results if job.many else results[0])
                moved += 1
        return moved

    def wait(self, timeout: float) -> None:
        """Block until a trial finishes or `timeout` seconds pass."""
        pending = [f for job in self.jobs.values() for f in job.futures if not f.done()]
        if pending:
            wait(pending, timeout=timeout, return_when=FIRST_COMPLETED)

    def _advance(self, job: Job, answer) -> None:
        """Run the judgement until it waits for trials (submitted now) or ends (then it is recorded)."""
        while True:
            try:
                request = job.judgement.send(answer)
            except StopIteration as done:
                return self._finish(job, done.value)
            if request is BEST:
                if self.finalizing is not None and self.finalizing is not job:
                    self.parked.append(job)
                    return
                answer = self.best()
                continue
            job.many = isinstance(request, list)
            requests = request if job.many else [request]
            if any(isinstance(r, Holdout | Remeasure) for r in requests):
                self.finalizing = job  # decided: a keep. Nothing else is compared with the best until it is recorded
            job.futures = [self._submit(r) for r in requests]
            return

    def _submit(self, request) -> Future:
        if isinstance(request, Train):
            return self.executor.submit(request.spec)
        if isinstance(request, Holdout):
            return self.executor.score_holdout(request.result)
        raise TypeError(f"a judgement asked for {request!r}")

    def _fail(self, job: Job, reason: str) -> None:
        job.judgement.close()
        job.record.status, job.record.reason = "crash", reason
        self._finish(job, Outcome(job.record))

    def _finish(self, job: Job, outcome: Outcome) -> None:
        del self.jobs[job.record.number]
        try:
            self.record(outcome)
        finally:
            if self.finalizing is job:
                self.finalizing = None
        parked, self.parked = self.parked, []
        for waiting in parked:  # tell them the best now (a new keep, maybe): their decisions can go on
            self._resume(waiting)

    def _resume(self, job: Job) -> None:
        if self.finalizing is not None:
            self.parked.append(job)
            return
        self._advance(job, self.best())
