"""The frozen evaluation: score saved models with the task's predictor and a local metric module.

`Evaluator` keeps one evaluation process warm (torch, transformers and the metric imported once) and asks it to
score one saved model on one split at a time; each new model is loaded fresh, and nothing from the recipe folder
is ever imported (trust_remote_code stays off). The process is restarted if it dies. It speaks one JSON line a
request on stdin and one JSON line an answer on stdout: `python -m hf_autoresearch.evaluation SETUP.json`.
"""

from __future__ import annotations

import inspect
import json
import select
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

SAMPLES = 20  # generations saved per evaluation, for the report and the agent


class EvaluationError(RuntimeError):
    """The saved model could not be scored; the message says why."""


@dataclass
class EvalSetup:
    """What the evaluation process needs for every model it scores."""

    task: str  # a registered task name or a "module:Class" import path
    splits_dir: str  # <run>/splits: labels and split files
    metric_path: str
    metric_options: dict = field(default_factory=dict)
    python_path: list[str] = field(default_factory=list)  # where a task given by import path lives


def eval_setup(task: str, splits_dir: Path, metric_dir: Path, metric_options: dict) -> EvalSetup:
    """The setup of an evaluation process; a task given by import path ("module:Class") gets its folder on the
    evaluation's python path, so the process can import it as the harness did."""
    from hf_autoresearch.tasks import get_task

    task_module = type(get_task(task)).__module__
    python_path = []
    if not task_module.startswith("hf_autoresearch."):
        depth = task_module.count(".") + 1
        python_path.append(str(Path(sys.modules[task_module].__file__).resolve().parents[depth - 1]))
    return EvalSetup(
        task=task,
        splits_dir=str(splits_dir),
        metric_path=str(metric_dir),
        metric_options=dict(metric_options),
        python_path=python_path,
    )


# --- inside the evaluation process ---------------------------------------------------------------------------
class _Scorer:
    def __init__(self, setup: EvalSetup):
        import torch

        from hf_autoresearch.metrics import load_metric
        from hf_autoresearch.tasks import get_task

        sys.path[:0] = setup.python_path
        self.setup = setup
        self.task = get_task(setup.task)
        self.metric = load_metric(Path(setup.metric_path))
        self.extra = {k: v for k, v in setup.metric_options.items()}
        labels_file = Path(setup.splits_dir) / "train" / "labels.json"
        self.label_names = json.loads(labels_file.read_text()) if labels_file.is_file() else []
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        self.model_dir, self.predict = None, None

    def _load(self, model_dir: str) -> None:
        if model_dir == self.model_dir:
            return
        self.release()
        if not any((Path(model_dir) / f).is_file() for f in ("config.json", "adapter_config.json")):
            raise EvaluationError(f"no saved model in {model_dir}: train.py must save to AUTORESEARCH_OUTPUT_DIR")
        self.predict = self.task.load_predictor(Path(model_dir), Path(self.setup.splits_dir), self.device)
        self.model_dir = model_dir
        print(f"[evaluation] loaded {model_dir}", file=sys.stderr, flush=True)

    def release(self) -> None:
        """Drop the loaded model (its memory, on GPU its cache) so training can use it."""
        self.model_dir, self.predict = None, None
        import gc

        import torch

        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    def score(self, model_dir: str, rows_file: str, samples: str | None = None) -> dict:
        from hf_autoresearch.data import read_jsonl, write_jsonl

        started = time.monotonic()
        self._load(model_dir)
        rows = read_jsonl(Path(rows_file))
        out = self.predict(rows)
        scores = compute_metric(self.metric, out, self.extra, self.label_names)
        if samples:
            write_jsonl(_samples(out, SAMPLES, self.label_names), Path(samples))
        return {"scores": scores, "num_rows": len(rows), "seconds": time.monotonic() - started}

    def preview(self, model_dir: str, rows: list[dict]) -> dict:
        """Predictions on a few rows (training rows, for the agent), with their references."""
        self._load(model_dir)
        return {"preview": _samples(self.predict(rows), len(rows), self.label_names)}


def compute_metric(metric, out, options: dict, label_names: list[str]) -> dict:
    """`metric.compute` on a predictor's output, with the extras its `_compute` takes: class scores, label names,
    the rows' groups (`query_ids`, for ranking), and the recipe's metric options."""
    accepted = inspect.signature(metric._compute).parameters
    kwargs = dict(options)
    if "scores" in accepted:
        kwargs["scores"] = out.scores
    if "label_names" in accepted:
        kwargs["label_names"] = label_names
    if "query_ids" in accepted:
        kwargs["query_ids"] = out.groups
    return metric.compute(predictions=out.predictions, references=out.references, **kwargs)


def _samples(out, n: int, label_names: list[str]) -> list[dict]:
    def show(value) -> str:
        if isinstance(value, int) and 0 <= value < len(label_names):
            return label_names[value]
        if isinstance(value, dict):  # query expansion's reference: {"query", "expansion"}
            return str(value.get("expansion", value))
        return str(value)

    inputs = out.inputs or [""] * len(out.predictions)
    return [
        {"input": i, "prediction": show(p), "reference": show(r)}
        for i, p, r in list(zip(inputs, out.predictions, out.references, strict=False))[:n]
    ]


def main(argv: list[str]) -> int:
    """Answer one JSON line on stdout for each JSON request line on stdin; everything else goes to stderr."""
    protocol = sys.stdout
    sys.stdout = sys.stderr  # library prints must not corrupt the protocol

    def answer(obj: dict) -> None:
        protocol.write(json.dumps(obj) + "\n")
        protocol.flush()

    try:
        scorer = _Scorer(EvalSetup(**json.loads(Path(argv[0]).read_text())))
    except Exception as err:
        answer({"error": f"the evaluation could not start: {type(err).__name__}: {err}"})
        return 2
    answer({"ready": True})
    for line in sys.stdin:
        request = json.loads(line)
        try:
            if request["op"] == "score":
                answer(scorer.score(request["model_dir"], request["rows"], request.get("samples")))
            elif request["op"] == "preview":
                answer(scorer.preview(request["model_dir"], request["rows"]))
            elif request["op"] == "release":
                scorer.release()
                answer({"released": True})
        except Exception as err:  # one model that cannot be scored is that experiment's crash, not the process's
            what = "could not load the saved model" if scorer.model_dir != request.get("model_dir") else "failed"
            answer({"error": f"scoring {what}: {type(err).__name__}: {err}"})
    return 0


# --- in the harness -------------------------------------------------------------------------------------------
class Evaluator:
    """A warm evaluation process: started on first use, restarted if it dies, closed with `close()`."""

    def __init__(self, setup: EvalSetup, workdir: Path, timeout: float = 1800, env: dict | None = None):
        self.setup, self.workdir, self.timeout, self.env = setup, Path(workdir), timeout, env
        self.proc: subprocess.Popen | None = None
        self.log_path = self.workdir / "evaluation.log"
        self.started_seconds = 0.0  # time spent starting processes (imports, metric load)

    def _start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "setup.json").write_text(json.dumps(asdict(self.setup)))
        started = time.monotonic()
        with self.log_path.open("a") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "hf_autoresearch.evaluation", str(self.workdir / "setup.json")],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
                cwd=self.workdir,
                env=self.env,
                start_new_session=True,  # Ctrl-C reaches the harness, which closes this process itself
            )
        self._read()  # {"ready": true}, or the reason it could not start
        self.started_seconds += time.monotonic() - started

    def _read(self) -> dict:
        ready, _, _ = select.select([self.proc.stdout], [], [], self.timeout)
        line = self.proc.stdout.readline() if ready else ""
        if not ready:
            self.close()
            raise EvaluationError(f"evaluation took longer than {self.timeout:.0f} s")
        if not line.strip():
            tail = self._tail()
            self.close()
            raise EvaluationError(f"the evaluation process died:\n{tail}")
        answer = json.loads(line)
        if "error" in answer:
            if "could not start" in answer["error"]:
                self.close()
            raise EvaluationError(answer["error"])
        return answer

    def _ask(self, request: dict) -> dict:
        if self.proc is None or self.proc.poll() is not None:
            self._start()
        try:
            self.proc.stdin.write(json.dumps(request) + "\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            pass  # the process died; _read reports why
        return self._read()

    def score(self, model_dir: Path, rows_file: Path, samples: Path | None = None) -> dict:
        """Scores, row count and seconds (in-process, and wall) of the model in `model_dir` on `rows_file`."""
        started = time.monotonic()
        answer = self._ask(
            {"op": "score", "model_dir": str(model_dir), "rows": str(rows_file), "samples": samples and str(samples)}
        )
        answer["wall_seconds"] = time.monotonic() - started
        return answer

    def preview(self, model_dir: Path, rows: list[dict]) -> list[dict]:
        return self._ask({"op": "preview", "model_dir": str(model_dir), "rows": rows})["preview"]

    def release(self) -> None:
        """Let the process drop its model while something else (training) needs the memory."""
        if self.proc is not None and self.proc.poll() is None:
            self._ask({"op": "release"})

    def _tail(self, lines: int = 15) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").strip().splitlines()[-lines:])

    def close(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            try:
                proc.stdin.close()
                proc.wait(timeout=10)
            except (BrokenPipeError, subprocess.TimeoutExpired):
                proc.kill()
                proc.wait()
        proc.stdout.close()

    def __enter__(self) -> Evaluator:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
