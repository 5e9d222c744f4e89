"""Local `evaluate` modules. `evaluate.load(path)` loads them offline; the frozen evaluation uses only these."""

from __future__ import annotations

from pathlib import Path

METRICS_DIR = Path(__file__).parent


def metric_path(module: str) -> Path:
    """The folder of metric `module`: a name under hf_autoresearch/metrics, or a path to a module folder."""
    candidate = METRICS_DIR / module
    if (candidate / f"{module}.py").is_file():
        return candidate
    path = Path(module)
    if path.is_dir() and (path / f"{path.name}.py").is_file():
        return path.resolve()
    known = sorted(p.name for p in METRICS_DIR.iterdir() if (p / f"{p.name}.py").is_file())
    raise FileNotFoundError(f"no metric module {module!r}; known: {', '.join(known)}")


def load_metric(path: Path):
    """The metric module at `path`, loaded offline."""
    import evaluate

    return evaluate.load(str(path))
