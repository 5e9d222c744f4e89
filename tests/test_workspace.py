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
