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


def test_the_keep_rule_benchmark_reproduces_the_old_rate_and_holds_the_new_one():
    """scripts/keep_rule_sim.py, small: the old rule (loaded from git history) keeps ~5.8% of no-effect edits at
    K = 3, as issue 19 measured; the new rule, driven by the real decision code, keeps under 1% of them."""
    import numpy as np

    sys.path.insert(0, str(ROOT / "scripts"))
    import keep_rule_sim

    rng = np.random.default_rng(0)
    old_power, _ = keep_rule_sim.old_probe(keep_rule_sim.old_rule_module(), 3, 4000, rng)
    assert 0.045 < old_power[0] < 0.075 and old_power[3] > 0.7
    keeps, runs, carried, probes = keep_rule_sim.new_nights(3, 4000, 2, rng, 0.01)
    assert probes[0][0] < 0.015 and probes[0][3] > 0.15  # P(keep) at no effect, and at a 3-sigma gain
    assert runs.sum() / (4000 * 2) < 1.5
