"""The run's git worktree: the agent edits train.py there, on branch autoresearch/<tag>.

The user's checkout and branch are never touched: every commit and reset happens in the worktree.
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


def git(cwd: Path, *args: str, check: bool = True) -> str:
    """Run one git command in `cwd` (commits authored by hf-autoresearch); stdout, or "" on failure if not check."""
    try:
        return Git(cwd).execute(["git", *args], env={**os.environ, **AUTHOR})
    except GitCommandError as err:
        if check:
            raise WorkspaceError(f"git {' '.join(args)} failed in {cwd}: {str(err.stderr).strip()}") from err
        return ""


def repo_root(path: Path) -> Path:
    root = git(path, "rev-parse", "--show-toplevel", check=False)
    if not root:
        raise WorkspaceError(
            f"{path} is not inside a git repository; the run keeps its history with git: "
            "`git init && git add -A && git commit -m init` first"
        )
    return Path(root)


def check_branch_free(root: Path, branch: str) -> None:
    if git(root, "rev-parse", "--verify", "-q", f"refs/heads/{branch}", check=False):
        raise WorkspaceError(
            f"branch {branch} already exists; use --resume, another --tag, or `git branch -D {branch}`"
        )


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
        """Add a worktree on a new `branch` at the user's HEAD; commit the recipe as found in the working tree."""
        recipe_dir = Path(recipe_dir).resolve()
        root = repo_root(recipe_dir)
        if not git(root, "rev-parse", "--verify", "-q", "HEAD", check=False):
            raise WorkspaceError(f"{root} has no commits yet; commit the recipe first")
        if git(root, "rev-parse", "--verify", "-q", f"refs/heads/{branch}", check=False):
            raise WorkspaceError(
                f"branch {branch} already exists; use --resume, another --tag, or `git branch -D {branch}`"
            )
        git(root, "worktree", "prune")
        git(root, "worktree", "add", "-q", "-b", branch, str(worktree), "HEAD")
        ws = cls(worktree, recipe_dir.relative_to(root))
        # the user's uncommitted edits of the recipe are the baseline they mean to improve
        target = ws.worktree / ws.recipe_rel
        shutil.copytree(
            recipe_dir,
            target,
            dirs_exist_ok=True,
            ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "data", "output", "trainer"),
        )
        if ws.changed_files():
            git(ws.worktree, "add", "-A", "--", ws.recipe_rel.as_posix())
            git(ws.worktree, "commit", "-q", "-m", "autoresearch: recipe as found in the working tree")
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
        out = git(self.worktree, "status", "--porcelain", "--untracked-files=all")
        return sorted({line[3:].split(" -> ")[-1].strip('"') for line in out.splitlines() if line.strip()})

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
