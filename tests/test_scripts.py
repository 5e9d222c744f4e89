"""The benchmark scripts are not run by CI (they take minutes to hours), so at least their imports and arguments
are checked: a helper that moved between modules breaks `--help` here rather than a night's benchmark."""

from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import ROOT

SCRIPTS = sorted(p for p in (ROOT / "scripts").glob("*.py") if "argparse" in p.read_text())


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_script_imports_and_parses_its_arguments(script):
    done = subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "usage:" in done.stdout
