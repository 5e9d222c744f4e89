"""The replay agent: applies DIR/*.patch in name order, one patch an experiment."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from hf_autoresearch.agents.base import DEFAULT_MAX_INVALID_STREAK, Agent, InvalidProposal, Proposal, ProposalContext
from hf_autoresearch.errors import UserError

SUBJECT = re.compile(r"^Subject:\s*(?:\[PATCH[^\]]*\]\s*)?(.+)$", re.MULTILINE)


def patch_description(patch: Path) -> str:
    """The patch's `Subject:` line (without a `[PATCH n/m]` prefix), else its file name."""
    match = SUBJECT.search(patch.read_text(errors="replace"))
    return match.group(1).strip() if match else patch.stem


class ReplayAgent(Agent):
    """Each patch is a unified diff of train.py with `a/train.py` / `b/train.py` headers, as `git diff` writes
    them from the recipe folder. Patches already in the ledger are skipped, so `--resume` continues in order."""

    name = "replay"

    def __init__(self, patches_dir: str | Path, max_invalid_streak: int | None = DEFAULT_MAX_INVALID_STREAK):
        self.max_invalid_streak = max_invalid_streak
        self._proposed: dict[int, str] = {}  # experiment number -> patch, for proposals made by this object
        self.patches_dir = Path(patches_dir).resolve()
        if not self.patches_dir.is_dir():
            raise UserError(f"--patches {patches_dir}: no such folder")
        self.patches = sorted(self.patches_dir.glob("*.patch"))
        if not self.patches:
            raise UserError(f"--patches {patches_dir}: holds no *.patch files")

    def propose(self, context: ProposalContext) -> Proposal | None:
        self.give_up_if_stuck(context)
        recorded = {record.number for record in context.history}
        # patches handed out for other experiments that are still training (parallel workers) are not pending
        in_flight = {p for n, p in self._proposed.items() if n != context.number and n not in recorded}
        done = {record.proposal.get("patch") for record in context.history} | in_flight
        pending = [p for p in self.patches if p.name not in done]
        if not pending:
            return None
        patch = pending[0]
        details = {"agent": self.name, "patch": patch.name}
        self._proposed[context.number] = patch.name
        recipe_dir = context.train_py.parent.relative_to(context.worktree)
        command = ["git", "apply", "--whitespace=nowarn"]
        if str(recipe_dir) != ".":
            command.append(f"--directory={recipe_dir.as_posix()}")
        applied = subprocess.run([*command, str(patch)], cwd=context.worktree, capture_output=True, text=True)
        if applied.returncode != 0:
            # patches are usually written against the recipe's train.py, not the current best: like `patch` with
            # fuzz, retry ignoring the context lines (the lines the patch removes must still match exactly)
            retry = subprocess.run([*command, "-C0", str(patch)], cwd=context.worktree, capture_output=True, text=True)
            if retry.returncode != 0:
                raise InvalidProposal(f"patch {patch.name} does not apply: {applied.stderr.strip()}", details)
            details["context_ignored"] = True
        return Proposal(description=patch_description(patch), details=details)
