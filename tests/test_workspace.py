import pytest
from conftest import git

from hf_autoresearch.workspace import Workspace, WorkspaceError


@pytest.fixture
def workspace(project, tmp_path):
    return Workspace.create(project / "recipes" / "intent-categorization", tmp_path / "wt", "autoresearch/w")


def test_worktree_is_on_its_own_branch_and_user_checkout_untouched(project, workspace):
    assert git(workspace.worktree, "branch", "--show-current") == "autoresearch/w"
    assert git(project, "branch", "--show-current") == "main"
    assert workspace.train_py.is_file()
    with pytest.raises(WorkspaceError, match="already exists"):
        Workspace.create(project / "recipes" / "intent-categorization", project.parent / "wt2", "autoresearch/w")


def test_uncommitted_recipe_edits_become_the_baseline_commit(project, tmp_path):
    train = project / "recipes" / "intent-categorization" / "train.py"
    train.write_text(train.read_text().replace("EPOCHS = 3", "EPOCHS = 4"))
    ws = Workspace.create(train.parent, tmp_path / "wt", "autoresearch/x")
    assert "EPOCHS = 4" in ws.train_py.read_text()
    assert git(ws.worktree, "log", "-1", "--format=%s") == "autoresearch: recipe as found in the working tree"
    assert git(project, "status", "--porcelain") == "M recipes/intent-categorization/train.py"


def test_check_edit(workspace):
    assert workspace.check_edit() == "the edit changed nothing"
    source = workspace.train_py.read_text()
    workspace.train_py.write_text(source.replace("EPOCHS = 3", "EPOCHS = (3"))
    assert "does not compile" in workspace.check_edit()
    workspace.train_py.write_text(source.replace("EPOCHS = 3", "EPOCHS = 2"))
    assert workspace.check_edit() is None
    (workspace.worktree / "notes.txt").write_text("x")
    assert "notes.txt" in workspace.check_edit()
    head = workspace.head()
    workspace.reset(head)
    assert workspace.check_edit() == "the edit changed nothing"


def test_not_a_git_repository(tmp_path):
    (tmp_path / "r").mkdir()
    with pytest.raises(WorkspaceError, match="git init"):
        Workspace.create(tmp_path / "r", tmp_path / "wt", "autoresearch/y")


def test_changed_files_reads_paths_git_would_quote_or_that_look_like_renames(workspace):
    names = ["notes with space.txt", "données.txt", "a -> b.py", 'say "hi".txt']
    for name in names:
        (workspace.worktree / name).write_text("x")
    assert workspace.changed_files() == sorted(names)
    assert "données.txt" in workspace.check_edit()


def test_changed_files_reports_both_sides_of_a_rename(workspace):
    git(workspace.worktree, "mv", workspace.train_py_rel, "moved.py")
    assert workspace.changed_files() == sorted(["moved.py", workspace.train_py_rel])


def test_a_start_that_fails_after_git_made_the_branch_leaves_nothing_behind(project, tmp_path):
    """git creates the branch before it finds that the worktree folder is in the way: a new start must work."""
    recipe = project / "recipes" / "intent-categorization"
    in_the_way = tmp_path / "wt"
    in_the_way.mkdir()
    (in_the_way / "keep.txt").write_text("mine")
    with pytest.raises(WorkspaceError, match="already exists"):
        Workspace.create(recipe, in_the_way, "autoresearch/p")
    assert git(project, "branch", "--list", "autoresearch/p") == ""
    assert (in_the_way / "keep.txt").read_text() == "mine"  # a folder that was there is not ours to delete
    ws = Workspace.create(recipe, tmp_path / "wt2", "autoresearch/p")
    assert git(ws.worktree, "branch", "--show-current") == "autoresearch/p"


@pytest.mark.parametrize("failing_step, hook_name", [("worktree add", "post-checkout"), ("commit", "pre-commit")])
def test_a_start_that_fails_half_way_is_undone(project, tmp_path, failing_step, hook_name):
    hook = project / ".git" / "hooks" / hook_name
    hook.write_text("#!/bin/sh\nexit 1\n")
    hook.chmod(0o755)
    recipe = project / "recipes" / "intent-categorization"
    (recipe / "train.py").write_text((recipe / "train.py").read_text() + "\n# an uncommitted edit\n")
    with pytest.raises(WorkspaceError, match=failing_step):
        Workspace.create(recipe, tmp_path / "wt", "autoresearch/h")
    assert git(project, "branch", "--list", "autoresearch/h") == ""
    assert not (tmp_path / "wt").exists()
    assert str(tmp_path / "wt") not in git(project, "worktree", "list")
    hook.unlink()
    assert Workspace.create(recipe, tmp_path / "wt", "autoresearch/h").train_py.is_file()


def edit(ws: Workspace, old: str, new: str, message: str) -> str:
    ws.train_py.write_text(ws.train_py.read_text().replace(old, new))
    assert ws.check_edit() is None
    return ws.commit(message)


def detached(workspace: Workspace, path, commit: str) -> Workspace:
    """A second, detached worktree of the run: commits made elsewhere, as a stale candidate is."""
    git(workspace.worktree, "worktree", "add", "-q", "--detach", str(path), commit)
    return Workspace(path, workspace.recipe_rel)


def test_a_stale_candidate_is_re_applied_and_the_branch_only_moves_forward(workspace, tmp_path):
    base = workspace.head()
    slot1, slot2 = detached(workspace, tmp_path / "slot1", base), detached(workspace, tmp_path / "slot2", base)
    assert git(slot1.worktree, "branch", "--show-current") == ""  # detached
    assert slot1.head() == slot2.head() == base and slot1.recipe_rel == workspace.recipe_rel
    first = edit(slot1, "MAX_LENGTH = 128", "MAX_LENGTH = 64", "shorter")
    second = edit(slot2, "SAVE_RESERVE_SECONDS = 5", "SAVE_RESERVE_SECONDS = 8", "more reserve")
    assert workspace.head() == base  # committing in a slot does not move the branch

    assert workspace.fast_forward("autoresearch/w", first)
    assert workspace.head() == first and "MAX_LENGTH = 64" in workspace.train_py.read_text()
    assert workspace.changed_files() == []  # the checked-out worktree followed the branch
    assert not workspace.fast_forward("autoresearch/w", second)  # second's parent is stale: not a fast-forward
    assert workspace.head() == first

    slot2.reset(first)  # re-apply the stale candidate onto the current best, as a slot would
    rebased = slot2.cherry_pick(second)
    assert rebased and rebased != second
    assert git(slot2.worktree, "log", "-1", "--format=%s") == "more reserve"
    source = slot2.train_py.read_text()
    assert "MAX_LENGTH = 64" in source and "SAVE_RESERVE_SECONDS = 8" in source
    assert workspace.fast_forward("autoresearch/w", rebased) and workspace.head() == rebased


def test_cherry_pick_returns_none_on_conflict_or_no_change_and_leaves_the_worktree_clean(workspace, tmp_path):
    base = workspace.head()
    slot = detached(workspace, tmp_path / "slot", base)
    candidate = edit(slot, "MAX_LENGTH = 128", "MAX_LENGTH = 32", "32 tokens")
    best = edit(workspace, "MAX_LENGTH = 128", "MAX_LENGTH = 64", "64 tokens")
    assert workspace.cherry_pick(candidate) is None  # both changed the same line
    assert workspace.head() == best and workspace.changed_files() == []
    assert "MAX_LENGTH = 64" in workspace.train_py.read_text()
    slot.reset(best)
    assert slot.cherry_pick(best) is None  # nothing left to apply
    assert slot.head() == best and slot.changed_files() == []
    assert workspace.fast_forward("autoresearch/w", base) is False  # backwards is never a fast-forward
    assert workspace.head() == best


def test_fast_forward_a_branch_no_worktree_has_checked_out(workspace, tmp_path):
    base = workspace.head()
    git(workspace.worktree, "branch", "autoresearch/side", base)
    slot = detached(workspace, tmp_path / "slot", base)
    ahead = edit(slot, "EPOCHS = 3", "EPOCHS = 2", "fewer epochs")
    assert workspace.fast_forward("autoresearch/side", ahead)
    assert git(workspace.worktree, "rev-parse", "autoresearch/side") == ahead
    assert workspace.head() == base
