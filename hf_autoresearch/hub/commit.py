"""One attempt at publishing one revision, safe to repeat, and which failures are worth repeating it for.

An attempt first asks the Hub what is already there: the tag `<tag>-exp-NNNN` (then only hub.jsonl may lack the
line), else the branch's commits, whose descriptions carry a marker line naming the run, experiment and git commit
(then only the tag is missing; the commit may lie under later ones). Only what is missing is done, so a retry
after a commit whose answer was lost makes no second commit, and hub.jsonl gets one line per pushed experiment.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from hf_autoresearch.hub.names import hub_tag
from hf_autoresearch.hub.pushes import record_push
from hf_autoresearch.hub.revision import KEEP_ON_HUB, commit_description, commit_marker
from hf_autoresearch.ledger import ExperimentRecord
from hf_autoresearch.reporting.summary import RunSummary


def _transport_errors() -> tuple[type[Exception], ...]:
    """The HTTP client's network errors (huggingface_hub 2 uses httpx2, 1.x httpx)."""
    errors: list[type[Exception]] = [ConnectionError, TimeoutError]
    for name in ("httpx2", "httpx"):
        try:
            errors.append(__import__(name).TransportError)
        except (ImportError, AttributeError):
            pass
    return tuple(errors)


def retryable(err: Exception) -> bool:
    """A server error (5xx), rate limit (429), timeout (408) or network error: worth another attempt.

    Any other client error (4xx) and metadata the Hub rejects (a ValueError from huggingface_hub) are not. 412 is
    retried: it is our own parent-commit check failing because the branch moved, and the next attempt reads the
    head again.
    """
    from huggingface_hub.errors import HfHubHTTPError

    if isinstance(err, HfHubHTTPError):
        status = err.response.status_code if err.response is not None else None
        return status is None or status >= 500 or status in (408, 412, 429)
    return isinstance(err, _transport_errors())


def describe(err: Exception) -> str:
    """One line: the error, with the HTTP status and the Hub's own message when it sent one."""
    text = f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
    response = getattr(err, "response", None)
    if response is not None and getattr(response, "status_code", None):
        server = getattr(err, "server_message", None)
        text = f"HTTP {response.status_code} {text}" + (f" {server.strip()}" if server else "")
    return text


@dataclass
class HubTarget:
    api: object  # huggingface_hub.HfApi
    repo_id: str
    folder: Path  # the run folder, holding hub.jsonl
    branch: str  # autoresearch/<tag>

    def publish(
        self, summary: RunSummary, record: ExperimentRecord, files: dict, message: str, revision: str, log=print
    ) -> dict:
        """Publish `files` as `record`'s revision on `revision` (the run branch, or main to promote); its line."""
        promoted = revision != self.branch
        tag = "" if promoted else hub_tag(summary.tag, record.number)
        refs = self.api.list_repo_refs(self.repo_id)
        tags = {t.name: t.target_commit for t in refs.tags}
        heads = {b.name: b.target_commit for b in refs.branches}
        if tag in tags:
            oid = tags[tag]  # commit and tag are there: only hub.jsonl may lack the line
        else:
            oid = self._landed(summary, record, revision, heads.get(revision))
            if oid is None:
                oid = self._commit(summary, record, files, message, revision, heads.get(revision))
            if tag:
                self.api.create_tag(self.repo_id, tag=tag, revision=oid, tag_message=message, exist_ok=True)
        entry = {
            "number": record.number,
            "experiment": record.experiment,
            "git_commit": record.commit,
            "repo_id": self.repo_id,
            "revision": revision,
            "hub_commit": oid,
            "tag": tag,
            "url": f"{self.api.endpoint}/{self.repo_id}/commit/{oid}",
            "promoted": promoted,
            "pushed_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        record_push(self.folder, entry)
        log(f"pushed {record.experiment} to {self.repo_id}@{revision} as {oid[:12]}" + (f" ({tag})" if tag else ""))
        return entry

    def _landed(self, summary: RunSummary, record: ExperimentRecord, revision: str, head: str | None) -> str | None:
        """This experiment's commit on `revision` from an earlier attempt (found by its marker line), else None.

        On the run branch it may lie under later commits: a keep whose commit landed but whose tag did not, pushed
        again after an earlier keep's failed push was redone on top of it. On main only the head counts: an earlier
        promotion of the same experiment under later ones is no reason not to promote it again.
        """
        if head is None:
            return None
        marker = commit_marker(summary, record)
        commits = self.api.list_repo_commits(self.repo_id, revision=head)
        if revision != self.branch:
            commits = commits[:1]
        return next((c.commit_id for c in commits if marker in (c.message or "")), None)

    def _commit(
        self, summary: RunSummary, record: ExperimentRecord, files: dict, message: str, revision: str, parent
    ) -> str:
        from huggingface_hub import CommitOperationAdd, CommitOperationDelete

        stale = set(self.api.list_repo_files(self.repo_id, revision=revision)) - set(files) - set(KEEP_ON_HUB)
        operations = [CommitOperationDelete(path_in_repo=p) for p in sorted(stale)]
        operations += [CommitOperationAdd(path_in_repo=p, path_or_fileobj=src) for p, src in files.items()]
        commit = self.api.create_commit(
            self.repo_id,
            operations,
            commit_message=message,
            commit_description=commit_description(summary, record),
            revision=revision,
            parent_commit=parent,  # fails (412) rather than commit on a head this attempt did not see
        )
        return commit.oid
