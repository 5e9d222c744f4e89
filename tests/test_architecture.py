"""The package's import graph: no circles, lazy imports included (scripts/import_layers.py computes the figures)."""

from __future__ import annotations

import importlib.util
import textwrap

from conftest import ROOT


def _import_layers():
    spec = importlib.util.spec_from_file_location("import_layers", ROOT / "scripts" / "import_layers.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _package(root, files: dict[str, str]):
    for name, text in files.items():
        path = root / "pkg" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root / "pkg"


def test_the_package_has_no_import_circles():
    figures = _import_layers().figures(ROOT / "hf_autoresearch")
    assert figures["circles"] == []
    assert figures["files"] > 60 and figures["layers"] > 3


def test_a_lazy_import_that_closes_a_circle_is_found(tmp_path):
    """What the test above relies on: a circle through an import inside a function counts, and layers follow the
    module-level imports."""
    package = _package(
        tmp_path,
        {
            "__init__.py": "",
            "low.py": "def f():\n    from pkg import high\n",
            "high.py": "from pkg import low\n",
            "sub/__init__.py": "",
            "sub/leaf.py": "from pkg.high import low\n",
        },
    )
    figures = _import_layers().figures(package)
    assert figures["circles"] == [["pkg.high", "pkg.low"]]
    assert figures["back_up"] == [("pkg.low", "pkg.high")]
    assert figures["layers"] == 3  # low (and the __init__s) on layer 0, high on 1, sub.leaf on 2
