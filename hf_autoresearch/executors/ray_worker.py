"""The worker side of --executor ray: what a Ray task runs on a node.

A worker process keeps, per run, the splits and the metric unpacked once into a scratch folder (never shown to
train.py) and a warm evaluation process; each trial trains in a folder of its own beside them and sends back its
result, its log, its samples and (as a separate object) its saved model. Before scoring, the evaluation code on the
node is checked against the hashes taken when the run started (`absolute_hashes` maps them onto this node's
installed package and the shipped metric).
"""

from __future__ import annotations

import atexit
import dataclasses
import io
import os
import shutil
import tarfile
import tempfile
import uuid
from pathlib import Path

from hf_autoresearch.evaluation import EvalSetup, Evaluator
from hf_autoresearch.executors import reaper
from hf_autoresearch.executors.runner import OWNER_VARIABLE
from hf_autoresearch.executors.trial import TrialEnv, TrialResult, TrialSpec, run_trial, samples_file, score
from hf_autoresearch.tamper import PACKAGE

SCRATCH_PREFIX = "hf-autoresearch-ray-"


def absolute_hashes(hashes: dict[str, str], metric_dir: Path) -> dict[str, str]:
    """The inverse on a worker: its own installed package, the metric as shipped."""
    roots = {"metric": Path(metric_dir), "package": PACKAGE, "path": Path("/")}
    return {str(roots[key.split("/", 1)[0]] / key.split("/", 1)[1]): digest for key, digest in hashes.items()}


def scratch_folder() -> Path:
    """A folder under /tmp for this process, which also removes those of dead processes: Ray kills a worker's
    children with it (the reaper too), so a killed worker's folder is swept by the next one."""
    for old in Path(tempfile.gettempdir()).glob(f"{SCRATCH_PREFIX}*"):
        try:
            os.kill(int((old / "owner.pid").read_text()), 0)
        except ProcessLookupError:
            shutil.rmtree(old, ignore_errors=True)
        except (OSError, ValueError):  # no pid file yet, or not ours to signal
            pass
    folder = Path(tempfile.mkdtemp(prefix=SCRATCH_PREFIX))
    (folder / "owner.pid").write_text(str(os.getpid()))
    return folder


def pack(folder: Path) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for path in sorted(Path(folder).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                tar.add(path, arcname=path.relative_to(folder).as_posix())
    return buffer.getvalue()


def unpack(data: bytes, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        tar.extractall(folder, filter="data")
    return folder


class _Workdir:
    """What a Ray worker process keeps between the trials of a run: the splits and metric unpacked once (eval/, never
    given to train.py) and a warm evaluation process, like a local slot's. Trainings run in scratch folders beside."""

    def __init__(self, data: dict):
        self.root = scratch_folder()
        self.splits = self.root / "eval" / "splits"
        unpack(data["train"], self.splits / "train")
        (self.splits / "selection.jsonl").write_bytes(data["selection"])
        self.metric = unpack(data["metric"], self.root / "eval" / data["metric_name"])
        e = data["env"]
        self.env = TrialEnv(
            splits=self.splits,
            model=e["model"],
            budget=e["budget"],
            grace=e["grace"],
            metric=e["metric"],
            metric_dir=self.metric,
            evaluation_hashes=absolute_hashes(data["hashes"], self.metric),
            hashed_extra=tuple(Path(p) for p in data["hashed_extra"]),
            accelerate_args=tuple(e["accelerate_args"]),
            sandbox_hidden=(self.root / "eval",) if e["sandbox"] else None,
        )
        s = data["setup"]
        setup = EvalSetup(s["task"], str(self.splits), str(self.metric), s["metric_options"], s["python_path"])
        self.owner = f"ray-{uuid.uuid4().hex[:12]}"
        self.watchdog = reaper.start(self.owner, [self.root])  # the worker killed (a cancel): its processes go too
        env = {**os.environ, OWNER_VARIABLE: self.owner}
        self.evaluator = Evaluator(setup, self.root / "eval" / "process", env=env)

    def close(self) -> None:
        self.evaluator.close()
        reaper.stop(self.watchdog)
        shutil.rmtree(self.root, ignore_errors=True)


_WORKDIRS: dict[str, _Workdir] = {}  # in a Ray worker process: the run it serves now (and the GPUs it was given)


def _workdir(data: dict) -> _Workdir:
    key = f"{data['run']}|{os.environ.get('CUDA_VISIBLE_DEVICES', '')}"  # Ray may give a reused worker other GPUs
    if key not in _WORKDIRS:
        for old in _WORKDIRS.values():
            old.close()
        _WORKDIRS.clear()
        _WORKDIRS[key] = _Workdir(data)
        atexit.register(_WORKDIRS[key].close)
    return _WORKDIRS[key]


def train_task(spec: TrialSpec, data: dict, job: dict) -> tuple[tuple[TrialResult, str, str], bytes]:
    import ray

    work = _workdir(data)
    task = Path(tempfile.mkdtemp(prefix="trial-", dir=work.root))
    try:
        spec.log_path = task / "train.log"
        env = dataclasses.replace(work.env, samples_dir=task / "samples")
        result = run_trial(spec, env, task / "scratch", work.evaluator, owner=work.owner, **job)
        result.slot = f"ray:{ray.get_runtime_context().get_node_id()[:8]}"
        log = spec.log_path.read_text(errors="replace") if spec.log_path.is_file() else ""
        saved = samples_file(env.samples_dir, spec.number, "selection")
        samples = saved.read_text() if saved.is_file() else ""
        model = pack(result.model_dir) if result.status == "ok" else b""
        result.model_dir = None
    finally:
        shutil.rmtree(task, ignore_errors=True)
    return (result, log, samples), model


def holdout_task(result: TrialResult, model: bytes, data: dict, holdout: bytes) -> TrialResult:
    work = _workdir(data)
    task = Path(tempfile.mkdtemp(prefix="holdout-", dir=work.root))
    rows = work.splits / "holdout.jsonl"
    try:
        rows.write_bytes(holdout)  # there only while it is scored
        result.model_dir = unpack(model, task / "model")
        score(result, "holdout", dataclasses.replace(work.env, samples_dir=None), work.evaluator)
        result.model_dir = None
    finally:
        rows.unlink(missing_ok=True)
        shutil.rmtree(task, ignore_errors=True)
    return result
