"""Experiments proposed and not yet recorded, kept so that a killed run loses none of them.

Each proposal's commit is kept on a ref, `refs/autoresearch/<tag>/exp-NNNN` (it survives the resets of the run's
worktree, and shows what was tried: `git show refs/autoresearch/<tag>/exp-0007`), and what the agent said about it
in `<run>/pending/exp-NNNN.json`. The file goes when the experiment is recorded; the ref stays. `--resume` re-runs
the experiments whose file is there and whose number the ledger lacks.

The git side of a candidate whose parent went stale lives here too: re-applying its change onto the current best.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from hf_autoresearch.ledger import UNDECIDED, ExperimentRecord, atomic_write, experiment_id
from hf_autoresearch.workspace import Workspace, git, succeeds


class Pending:
    def __init__(self, folder: Path, workspace: Workspace, tag: str):
        self.folder = Path(folder) / "pending"
        self.workspace = workspace
        self.ref_prefix = f"refs/autoresearch/{tag}"

    def ref(self, number: int) -> str:
        return f"{self.ref_prefix}/{experiment_id(number)}"

    def add(self, record: ExperimentRecord) -> None:
        """Keep the proposal's commit on its ref, then its record (proposal, agent usage) in pending/."""
        git(self.workspace.worktree, "update-ref", self.ref(record.number), record.commit)
        self.folder.mkdir(parents=True, exist_ok=True)
        atomic_write(self.folder / f"{record.experiment}.json", record.to_json())

    def remove(self, number: int) -> None:
        (self.folder / f"{experiment_id(number)}.json").unlink(missing_ok=True)

    def numbers(self) -> list[int]:
        return sorted(int(p.stem[4:]) for p in self.folder.glob("exp-*.json")) if self.folder.is_dir() else []

    def load(self, recorded: set[int]) -> list[ExperimentRecord]:
        """The experiments a killed session left in flight, ready to be judged again (files of recorded ones go)."""
        records = []
        for number in self.numbers():
            file = self.folder / f"{experiment_id(number)}.json"
            commit = git(self.workspace.worktree, "rev-parse", "--verify", "-q", self.ref(number), check=False)
            try:
                record = ExperimentRecord.from_json(file.read_text())
            except (OSError, ValueError, TypeError):
                record = None
            if number in recorded or record is None or not commit or commit != record.commit:
                file.unlink(missing_ok=True)
                continue
            record.status, record.reason, record.trials, record.decision = UNDECIDED, "", [], {}
            records.append(record)
        return records

    def train_py_at(self, commit: str) -> str:
        return git(self.workspace.worktree, "show", f"{commit}:{self.workspace.train_py_rel}", strip=False)


def reapply(
    workspace: Workspace,
    record: ExperimentRecord,
    best: ExperimentRecord,
    keeps: list[ExperimentRecord],
    rewrite: Callable[[ExperimentRecord, str], str | None] | None = None,
):
    """Re-apply `record.commit`'s change (on `record.parent`) onto `best`, in the run's worktree: (new commit, its
    train.py), or why it failed. `keeps`: the keeps since the parent, in order.

    `rewrite(record, best's train.py)`, when the agent has one, writes the proposal as the whole configuration it is
    onto the best's train.py (an optuna trial: its values, every other line of the best's file kept); it answers None
    when the record is not its own. Otherwise the change is cherry-picked (3-way)."""
    workspace.reset(best.commit)
    try:
        source = rewrite(record, workspace.train_py.read_text()) if rewrite is not None else None
        if source is not None:
            if source == workspace.train_py.read_text():
                return f"makes no change on top of {best.experiment}: its configuration is already kept"
            workspace.train_py.write_text(source)
            return workspace.commit(
                f"{record.experiment}: {record.description} (written onto {best.experiment})"
            ), source
        commit = workspace.cherry_pick(record.commit)
        if commit is not None:
            return commit, workspace.train_py.read_text()
    finally:
        workspace.reset(best.commit)
    for keep in keeps:  # name the first keep it collides with
        if not succeeds(workspace.worktree, "merge-tree", "--write-tree", keep.commit, record.commit):
            return f"conflicts with {keep.experiment}"
    return f"makes no change on top of {best.experiment}: the same edit is already kept"
