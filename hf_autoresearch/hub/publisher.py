"""Pushes kept experiments of one run to one Hub repo, in order, from a background thread.

Each keep is one Hub commit on branch `autoresearch/<tag>` and a tag `<tag>-exp-NNNN` on it. Every attempt starts
by asking the Hub what is already there (the tag, else the branch head and its commit's marker line), so a retry
after a commit whose answer was lost only does what is missing: no second commit, one hub.jsonl line. Server errors
(5xx), rate limits (429) and network errors are retried; a client error (4xx) or metadata the Hub rejects is not.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from pathlib import Path

from hf_autoresearch.hub.commit import HubTarget, describe, retryable
from hf_autoresearch.hub.names import HubError, check_repo_id, hub_tag, require_token
from hf_autoresearch.hub.pushes import pushed
from hf_autoresearch.hub.revision import commit_message, revision_files
from hf_autoresearch.ledger import ExperimentRecord
from hf_autoresearch.reporting.summary import RunSummary

CLOSE_TIMEOUT = 1800.0  # seconds `close` waits for queued pushes before reporting them as not pushed


class HubPublisher:
    """`on_record` is the loop callback: a keep is queued and the loop goes on. A push that fails is retried when
    that can help, then reported; the local model folder is never touched, and `hf-autoresearch push` publishes
    what is missing."""

    def __init__(
        self,
        folder: Path,
        repo_id: str,
        *,
        private: bool = True,
        promote: bool = False,
        dry_run: bool = False,
        endpoint: str | None = None,
        token: str | None = None,
        retries: int = 3,
        retry_wait: float = 5.0,
        close_timeout: float = CLOSE_TIMEOUT,
        log=print,
    ):
        self.folder = Path(folder)
        self.repo_id = check_repo_id(repo_id)
        self.private, self.promote, self.dry_run = private, promote, dry_run
        self.endpoint, self.token = endpoint, token
        self.retries, self.retry_wait, self.close_timeout = max(1, retries), retry_wait, close_timeout
        self.log = log
        self.failures: dict[int, str] = {}
        self._queue: queue.Queue = queue.Queue()
        self._thread: threading.Thread | None = None
        self._current: ExperimentRecord | None = None  # the push in flight
        self._abandoned = False  # close timed out: push nothing more
        self._api = None

    @property
    def summary(self) -> RunSummary:
        return RunSummary.load(self.folder)  # read afresh: the ledger grows while pushes run

    @property
    def branch(self) -> str:
        return f"autoresearch/{json.loads((self.folder / 'run.json').read_text())['tag']}"

    @property
    def api(self):
        if self._api is None:
            from huggingface_hub import HfApi

            self._api = HfApi(endpoint=self.endpoint, token=self.token)
        return self._api

    # --- before the run ------------------------------------------------------------------------------
    def prepare(self) -> None:
        """Token, repo and branch, checked before any training so a missing permission fails in seconds."""
        visibility = "private" if self.private else "public"
        if self.dry_run:
            self.log(
                f"dry run: would create the {visibility} repo {self.repo_id} (if missing) and branch {self.branch}"
            )
            return
        self.token = require_token(self.token)
        from huggingface_hub.errors import HfHubHTTPError

        try:
            self.api.create_repo(self.repo_id, private=self.private, exist_ok=True)
            self.api.create_branch(self.repo_id, branch=self.branch, exist_ok=True)
        except HfHubHTTPError as err:
            raise HubError(
                f"cannot create {self.repo_id} or its branch {self.branch} on the Hub: {str(err).splitlines()[0]}; "
                "check that the token has write access to that namespace"
            ) from err
        self.log(f"pushing keeps to {self.repo_id} on branch {self.branch} ({visibility})")

    # --- one push ------------------------------------------------------------------------------------
    def push(self, record: ExperimentRecord) -> dict | None:
        """Publish one kept experiment now; its hub.jsonl line, or None (dry run or failure)."""
        summary = self.summary
        files = revision_files(summary, record, self.repo_id, pushed(self.folder, self.repo_id))
        message = commit_message(summary, record)
        if self.dry_run:
            return self._show(summary, record, files, message)
        entry, error = self._attempts(summary, record, files, message, self.branch)
        if entry is not None:
            self.failures.pop(record.number, None)
            return entry
        self.failures[record.number] = error
        self.log(
            f"push of {record.experiment} to {self.repo_id} failed: {error}. The model is safe in "
            f"{self.folder / 'models' / record.experiment}; `hf-autoresearch push {summary.tag} --repo "
            f"{self.repo_id}` publishes what is missing"
        )
        return None

    def _attempts(self, summary: RunSummary, record: ExperimentRecord, files: dict, message: str, revision: str):
        """(hub.jsonl entry, "") of the first attempt that succeeds, or (None, the last error)."""
        target = HubTarget(self.api, self.repo_id, self.folder, self.branch)
        for number in range(1, self.retries + 1):
            try:
                return target.publish(summary, record, files, message, revision, self.log), ""
            except Exception as err:  # classified just below
                error = describe(err)
                if not retryable(err):
                    return None, f"{error} (not retried: the Hub refused it)"
                if number == self.retries:
                    return None, f"{error} (after {self.retries} tries)"
                self.log(f"push of {record.experiment} failed ({error}); retry {number}/{self.retries - 1}")
                time.sleep(self.retry_wait * number)
        return None, "no attempt made"

    def _show(self, summary: RunSummary, record: ExperimentRecord, files: dict, message: str) -> None:
        """--dry-run: say what would be pushed and leave the card on disk to read."""
        out = self.folder / "hub-dry-run" / record.experiment
        out.mkdir(parents=True, exist_ok=True)
        (out / "README.md").write_bytes(files["README.md"])
        size = sum(len(v) if isinstance(v, bytes) else v.stat().st_size for v in files.values())
        self.log(
            f"dry run: would push {record.experiment} to {self.repo_id}@{self.branch} and tag it "
            f"{hub_tag(summary.tag, record.number)}: {len(files)} files, {size / 2**20:.1f} MiB "
            f"({', '.join(sorted(files))})\n  message: {message}\n  card: {out / 'README.md'}"
        )
        return None

    def promote_best(self) -> dict | None:
        """Put the best experiment on main (one more commit there); the branch and tags stay as they are."""
        summary = self.summary
        best = summary.best
        if best is None:
            return None
        files = revision_files(summary, best, self.repo_id, pushed(self.folder, self.repo_id))
        message = f"Promote {commit_message(summary, best)}"
        if self.dry_run:
            self.log(f"dry run: would put {best.experiment} on {self.repo_id}@main: {message}")
            return None
        entry, error = self._attempts(summary, best, files, message, "main")
        if entry is None:
            raise HubError(f"promotion of {best.experiment} to main failed: {error}")
        return entry

    # --- in the background during a run ------------------------------------------------------------
    def on_record(self, run, record: ExperimentRecord) -> None:
        if record.status == "keep":
            self.submit(record)

    def submit(self, record: ExperimentRecord) -> None:
        if self._thread is None:
            self._abandoned = False
            self._thread = threading.Thread(target=self._work, name="hub-push", daemon=True)
            self._thread.start()
        self._queue.put(record)

    def _work(self) -> None:
        while True:
            record = self._queue.get()
            if record is None:
                return
            if self._abandoned:
                self.failures[record.number] = "not pushed: the publisher was closed"
                continue
            self._current = record
            try:
                self.push(record)
            except Exception as err:  # a card that cannot be built must not kill the thread
                self.failures[record.number] = describe(err)
                self.log(f"push of {record.experiment} failed: {err}")
            finally:
                self._current = None

    def close(self, promote: bool | None = None, timeout: float | None = None) -> dict[int, str]:
        """Wait (at most `timeout` s, default close_timeout) for the queued pushes, promote if asked.

        Returns the failures by experiment number (-1: the promotion); a push still running at the timeout is one
        of them, and is left to finish in the background (it records itself if it does).
        """
        timeout = self.close_timeout if timeout is None else timeout
        if self._thread is not None:
            waiting = self._queue.qsize() + (self._current is not None)
            if waiting:
                self.log(f"waiting for {waiting} Hub push(es) to finish (at most {timeout:.0f} s)")
            self._queue.put(None)
            self._thread.join(timeout)
            if self._thread.is_alive():
                self._abandon(timeout)
                if self.promote if promote is None else promote:
                    self.failures[-1] = "not promoted to main: pushes were still running"
                promote = False
            self._thread = None
        if self.promote if promote is None else promote:
            best = self.summary.best
            if best is not None and best.number in self.failures:
                self.log(f"not promoting {best.experiment}: its push failed")
            else:
                try:
                    self.promote_best()
                except Exception as err:
                    self.failures[-1] = f"promotion to main failed: {err}"
                    self.log(self.failures[-1])
        return self.failures

    def _abandon(self, timeout: float) -> None:
        """Close timed out: the push in flight and every queued one are reported as not pushed."""
        self._abandoned = True
        left = [self._current] if self._current is not None else []
        while True:
            try:
                record = self._queue.get_nowait()
            except queue.Empty:
                break
            if record is not None:
                left.append(record)
        self._queue.put(None)  # the worker ends after the push in flight
        for record in left:
            self.failures[record.number] = f"not pushed: still waiting after {timeout:.0f} s when the run closed"
        names = ", ".join(r.experiment for r in left) or "none"
        self.log(
            f"gave up waiting for the Hub after {timeout:.0f} s; not pushed: {names}. The models are in "
            f"{self.folder / 'models'}; `hf-autoresearch push {self.summary.tag} --repo {self.repo_id}` publishes them"
        )

    def push_missing(self) -> list[dict]:
        """Publish every kept experiment of the run that is not on the Hub yet (the `push` command)."""
        done = pushed(self.folder, self.repo_id)
        entries = []
        for record in self.summary.kept:
            if record.number in done:
                continue
            entry = self.push(record)
            if entry:
                entries.append(entry)
        return entries
