"""The run's git worktrees: the agent edits train.py there; the best commit is branch autoresearch/<tag>.

The user's checkout and branch are never touched: every commit and reset happens in the run's one worktree, on
the branch. Slots need no worktree (a trial carries the text of its train.py); with several slots a candidate
committed on a parent that is no longer the best is re-applied onto the current best (`cherry_pick`), and the
branch only ever moves forward (`fast_forward`).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from git import Git, GitCommandError

from hf_autoresearch.errors import UserError

AUTHOR = {
    "GIT_AUTHOR_NAME": "hf-autoresearch",
    "GIT_AUTHOR_EMAIL": "hf-autoresearch@localhost",
    "GIT_COMMITTER_NAME": "hf-autoresearch",
    "GIT_COMMITTER_EMAIL": "hf-autoresearch@localhost",
}


class WorkspaceError(UserError):
    """The git side of a run cannot proceed; the message says what to do."""


def git(cwd: Path, *args: str, check: bool = True, strip: bool = True) -> str:
    """Run one git command in `cwd` (commits authored by hf-autoresearch); stdout, or "" on failure if not check."""
    try:
        return Git(cwd).execute(["git", *args], env={**os.environ, **AUTHOR}, strip_newline_in_stdout=strip)
    except GitCommandError as err:
        if check:
            raise WorkspaceError(f"git {' '.join(args)} failed in {cwd}: {str(err.stderr).strip()}") from err
        return ""


def succeeds(cwd: Path, *args: str) -> bool:
    """Whether a git command exits 0 (for questions like merge-base --is-ancestor)."""
    try:
        git(cwd, *args)
    except WorkspaceError:
        return False
    return True


def repo_root(path: Path) -> Path:
    root = git(path, "rev-parse", "--show-toplevel", check=False)
    if not root:
        raise WorkspaceError(
            f"{path} is not inside a git repository; the run keeps its history with git: "
            "`git init && git add -A && git commit -m init` first"
        )
    return Path(root)


def branch_exists(root: Path, branch: str) -> bool:
    return bool(git(root, "rev-parse", "--verify", "-q", f"refs/heads/{branch}", check=False))


def check_branch_free(root: Path, branch: str) -> None:
    if branch_exists(root, branch):
        raise WorkspaceError(
            f"branch {branch} already exists; use --resume, another --tag, or `git branch -D {branch}`"
        )


def _undo_start(root: Path, worktree: Path, branch: str, remove_folder: bool) -> None:
    """Remove what a failed Workspace.create made: its worktree (a folder that was there before is left) and
    its branch (free when the start began, so whatever now has that name was made by it)."""
    if remove_folder and worktree.exists():
        git(root, "worktree", "remove", "--force", str(worktree), check=False)
        shutil.rmtree(worktree, ignore_errors=True)
    git(root, "worktree", "prune", check=False)
    if branch_exists(root, branch):
        git(root, "branch", "-D", branch, check=False)


def parse_status_z(out: str) -> list[str]:
    """Paths in `git status --porcelain -z` output (NUL-separated, never quoted); a rename gives both paths."""
    fields = out.split("\0")
    paths, i = [], 0
    while i < len(fields):
        entry = fields[i]
        i += 1
        if len(entry) < 4:
            continue
        paths.append(entry[3:])
        if "R" in entry[:2] or "C" in entry[:2]:  # the original path follows as a field of its own
            paths.append(fields[i])
            i += 1
    return paths


class Workspace:
    def __init__(self, worktree: Path, recipe_rel: Path):
        self.worktree = Path(worktree)
        self.recipe_rel = Path(recipe_rel)

    @property
    def train_py(self) -> Path:
        return self.worktree / self.recipe_rel / "train.py"

    @property
    def train_py_rel(self) -> str:
        return (self.recipe_rel / "train.py").as_posix()

    @classmethod
    def create(cls, recipe_dir: Path, worktree: Path, branch: str) -> Workspace:
        """Add a worktree on a new `branch` at the user's HEAD; commit the recipe as found in the working tree.

        All or nothing: if any step fails (or Ctrl-C interrupts it), the worktree and the branch are removed again."""
        recipe_dir = Path(recipe_dir).resolve()
        root = repo_root(recipe_dir)
        if not git(root, "rev-parse", "--verify", "-q", "HEAD", check=False):
            raise WorkspaceError(f"{root} has no commits yet; commit the recipe first")
        check_branch_free(root, branch)
        git(root, "worktree", "prune")
        worktree = Path(worktree)
        existed = worktree.exists()
        try:
            # detached first, the branch last: until the start is complete there is no branch to block a new one
            git(root, "worktree", "add", "-q", "--detach", str(worktree), "HEAD")
            ws = cls(worktree, recipe_dir.relative_to(root))
            # the user's uncommitted edits of the recipe are the baseline they mean to improve
            shutil.copytree(
                recipe_dir,
                ws.worktree / ws.recipe_rel,
                dirs_exist_ok=True,
                ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "data", "output", "trainer"),
            )
            if ws.changed_files():
                git(ws.worktree, "add", "-A", "--", ws.recipe_rel.as_posix())
                git(ws.worktree, "commit", "-q", "-m", "autoresearch: recipe as found in the working tree")
            git(ws.worktree, "checkout", "-q", "-b", branch)
        except BaseException:
            # a half-made start must not block the next one
            _undo_start(root, worktree, branch, remove_folder=not existed)
            raise
        return ws

    @classmethod
    def reopen(cls, repo: Path, worktree: Path, branch: str, recipe_rel: Path) -> Workspace:
        """The worktree of a run being resumed; re-added from its branch if the folder was removed."""
        if not (Path(worktree) / ".git").exists():
            git(repo, "worktree", "prune")
            git(repo, "worktree", "add", "-q", str(worktree), branch)
        return cls(worktree, recipe_rel)

    def head(self) -> str:
        return git(self.worktree, "rev-parse", "HEAD")

    def changed_files(self) -> list[str]:
        """Paths (relative to the worktree) that differ from HEAD, untracked files included."""
        out = git(self.worktree, "status", "--porcelain", "-z", "--untracked-files=all", strip=False)
        return sorted(set(parse_status_z(out)))

    def check_edit(self) -> str | None:
        """Why the pending edit is invalid, or None if it changes only train.py and compiles."""
        changed = self.changed_files()
        if not changed:
            return "the edit changed nothing"
        others = [p for p in changed if p != self.train_py_rel]
        if others:
            return f"the edit touches files other than {self.train_py_rel}: {', '.join(others)}"
        try:
            compile(self.train_py.read_bytes(), self.train_py_rel, "exec")
        except (SyntaxError, ValueError) as err:
            return f"train.py does not compile: {type(err).__name__}: {err}"
        return None

    def diff(self) -> tuple[str, str]:
        """(unified diff, diff stat) of the pending edit against HEAD."""
        return git(self.worktree, "diff", "HEAD"), git(self.worktree, "diff", "--stat", "HEAD")

    def commit(self, message: str) -> str:
        git(self.worktree, "add", "--", self.train_py_rel)
        git(self.worktree, "commit", "-q", "-m", message)
        return self.head()

    def reset(self, commit: str) -> None:
        """Back to `commit`, dropping any edit and untracked file; the branch moves with it."""
        git(self.worktree, "reset", "-q", "--hard", commit)
        git(self.worktree, "clean", "-q", "-fdx")

    def cherry_pick(self, commit: str) -> str | None:
        """Re-apply `commit`'s change onto HEAD with a 3-way merge and commit it (same message); the new commit,
        or None when it conflicts or changes nothing on top of HEAD. The worktree is left clean either way."""
        if self.changed_files():
            raise WorkspaceError(f"{self.worktree} has uncommitted changes; reset it before re-applying {commit}")
        before = self.head()
        if succeeds(self.worktree, "cherry-pick", "--no-edit", commit) and self.head() != before:
            return self.head()
        git(self.worktree, "cherry-pick", "--abort", check=False)
        self.reset(before)
        return None

    def fast_forward(self, branch: str, commit: str) -> bool:
        """Move `branch` to `commit` if its tip is an ancestor of `commit` (True), else leave it (False).

        A worktree that has the branch checked out follows it (a merge --ff-only there); otherwise the ref is
        moved with a compare-and-swap, so a concurrent move is never overwritten.
        """
        tip = git(self.worktree, "rev-parse", "--verify", f"refs/heads/{branch}")
        commit = git(self.worktree, "rev-parse", "--verify", f"{commit}^{{commit}}")
        if not succeeds(self.worktree, "merge-base", "--is-ancestor", tip, commit):
            return False
        if tip == commit:
            return True
        checked_out = self._worktree_of(branch)
        if checked_out is not None:
            git(checked_out, "merge", "--ff-only", "-q", commit)
        else:
            git(self.worktree, "update-ref", f"refs/heads/{branch}", commit, tip)
        return True

    def _worktree_of(self, branch: str) -> Path | None:
        """The worktree that has `branch` checked out, if any."""
        current = None
        for line in git(self.worktree, "worktree", "list", "--porcelain").splitlines():
            if line.startswith("worktree "):
                current = Path(line[len("worktree ") :])
            elif line == f"branch refs/heads/{branch}":
                return current
        return None
