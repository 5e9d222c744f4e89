import subprocess
import sys
import time

from conftest import ROOT


def test_help_is_fast_and_lists_the_commands():
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "hf_autoresearch.cli", "--help"], capture_output=True, text=True)
    assert done.returncode == 0
    assert time.monotonic() - started < 2
    for command in ("run", "status", "recipes"):
        assert command in done.stdout


def test_recipes_lists_and_validates(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "hf_autoresearch.cli", "recipes", str(ROOT / "recipes")], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "✓ intent-categorization" in done.stdout
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "recipe.toml").write_text('name = "broken"\n')
    done = subprocess.run(
        [sys.executable, "-m", "hf_autoresearch.cli", "recipes", str(tmp_path)], capture_output=True, text=True
    )
    assert done.returncode == 1
    assert "✗ broken" in done.stdout and "missing key task" in done.stdout


def test_status_without_runs_is_a_clear_error(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "hf_autoresearch.cli", "status", "--run-dir", str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert done.returncode != 0 and "no run" in done.stderr
