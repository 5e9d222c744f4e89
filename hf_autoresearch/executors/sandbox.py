"""`--sandbox`: run training under bubblewrap so the run folder and the evaluation data are not there at all.

Inside, the whole file system is read-only except the experiment's scratch folder and the Hugging Face hub
cache; the run folder of every run (splits, ledger, worktree), a local data source (which holds the test split) and the
`datasets` cache (which holds a Hub data set's test split) are covered by empty tmpfs mounts, and so is /tmp.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from hf_autoresearch.errors import UserError


def available() -> bool:
    return shutil.which("bwrap") is not None


def wrap(command: list[str], scratch: Path, hidden: list[Path], needed: list[str] = ()) -> list[str]:
    """`command` run under bwrap with `hidden` folders replaced by empty ones and only `scratch` writable.

    /tmp is emptied too; what training needs that lives there (the Python environment, this package's checkout,
    a local base model in `needed`) is mounted back read-only first, and the hidden folders are covered after.
    """
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        raise UserError("--sandbox needs bubblewrap (`apt-get install bubblewrap` or your distribution's package)")
    args = [bwrap, "--ro-bind", "/", "/", "--dev-bind", "/dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp"]
    tmp = Path("/tmp").resolve()
    keep = [Path(sys.prefix), Path(sys.base_prefix), Path(__file__).resolve().parents[1], *map(Path, needed)]
    for path in sorted({p.resolve() for p in keep if p.exists()}):
        if path.is_relative_to(tmp):
            args += ["--ro-bind", str(path), str(path)]
    for folder in sorted({Path(h).resolve() for h in hidden if Path(h).exists()}):
        args += ["--tmpfs", str(folder)]
    hub_cache = Path(os.environ.get("HF_HUB_CACHE", Path.home() / ".cache" / "huggingface" / "hub"))
    if hub_cache.is_dir():  # downloads of the base model must still work
        args += ["--bind", str(hub_cache), str(hub_cache)]
    args += ["--bind", str(scratch), str(scratch), "--chdir", str(scratch / "work"), "--die-with-parent", "--"]
    return args + command


def hidden_paths(run_dir: Path, data_source: str) -> list[Path]:
    """What training must not see: every run (splits, ledgers), a local data source and the datasets cache."""
    paths = [Path(run_dir)]
    if Path(data_source).expanduser().exists():
        paths.append(Path(data_source).expanduser())
    paths.append(Path(os.environ.get("HF_DATASETS_CACHE", Path.home() / ".cache" / "huggingface" / "datasets")))
    return paths
