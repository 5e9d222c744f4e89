"""Local `evaluate` modules; the frozen evaluation uses only these, loaded by `load_metric` from their own file.

`evaluate.load(path)` would import a copy it keeps under ~/.cache/huggingface/modules (and reuses while the
original is unchanged), so an edit of that copy would change scores unseen by the tamper check. `load_metric`
executes the very file the tamper check hashes.
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import sys
import types
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


def load_metric(module: str | Path):
    """An instance of the `evaluate.Metric` subclass in metric `module` (a name or a folder holding <name>.py),
    imported from that file itself; `.compute(predictions=..., references=...)` as with `evaluate.load`."""
    import evaluate

    folder = metric_path(str(module))
    file = folder / f"{folder.name}.py"
    source = file.read_bytes()
    package = f"hf_autoresearch_metric_{file.stem}_{hashlib.sha256(source).hexdigest()[:12]}"
    name = f"{package}.{file.stem}"
    # the folder as a package of its own, so the module's relative imports (`from .helper import x`) find the
    # files beside it, which the tamper check hashes with it
    holder = types.ModuleType(package)
    holder.__path__ = [str(folder)]
    spec = importlib.util.spec_from_file_location(name, file)
    loaded = importlib.util.module_from_spec(spec)
    sys.modules[package], sys.modules[name] = holder, loaded  # dataclasses and pickling look classes up by name
    try:
        spec.loader.exec_module(loaded)
    except BaseException:
        sys.modules.pop(name, None)
        sys.modules.pop(package, None)
        raise
    classes = [
        obj
        for obj in vars(loaded).values()
        if inspect.isclass(obj)
        and issubclass(obj, evaluate.EvaluationModule)
        and obj.__module__ == name
        and not inspect.isabstract(obj)
    ]
    if len(classes) != 1:
        raise ValueError(f"{file} must define exactly one evaluate.Metric subclass, found {len(classes)}")
    return classes[0](keep_in_memory=True)  # nothing written to the metrics cache, so slots never share files
