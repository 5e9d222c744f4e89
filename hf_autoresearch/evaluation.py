"""The frozen evaluation: score a saved model on one split, in a process of its own.

It loads only the model's weights and config (never code: trust_remote_code stays off, and nothing from the
recipe folder is imported) and scores with a local `evaluate` module under hf_autoresearch/metrics.
`EvaluationProcess` runs it as `python -m hf_autoresearch.evaluation REQUEST.json` and asks for one split at a time.
"""

from __future__ import annotations

import json
import select
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

EVAL_BATCH_SIZE = 64
EVAL_MAX_LENGTH = 256


class EvaluationError(RuntimeError):
    """The saved model could not be scored; the message says why."""


@dataclass
class EvalRequest:
    task: str
    model_dir: str
    labels_file: str
    metric_path: str
    text_column: str
    label_column: str


def _predict_classification(request: EvalRequest):
    """Load the classifier once; return a function rows -> (predicted ids, reference ids)."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    labels = json.loads(Path(request.labels_file).read_text())
    label2id = {name: i for i, name in enumerate(labels)}
    device = "cuda" if torch.cuda.is_available() else "cpu"
    tokenizer = AutoTokenizer.from_pretrained(request.model_dir, trust_remote_code=False)
    model = AutoModelForSequenceClassification.from_pretrained(request.model_dir, trust_remote_code=False)
    model.to(device).eval()
    id2label = {int(k): str(v) for k, v in model.config.id2label.items()}

    def predict(rows: list[dict]) -> tuple[list[int], list[int]]:
        texts = [str(r[request.text_column]) for r in rows]
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # similar lengths batch with little padding
        predicted = [-1] * len(texts)
        with torch.inference_mode():
            for start in range(0, len(order), EVAL_BATCH_SIZE):
                ix = order[start : start + EVAL_BATCH_SIZE]
                batch = tokenizer(
                    [texts[i] for i in ix],
                    truncation=True,
                    max_length=EVAL_MAX_LENGTH,
                    padding=True,
                    return_tensors="pt",
                )
                for i, label_id in zip(ix, model(**batch.to(device)).logits.argmax(-1).tolist(), strict=True):
                    predicted[i] = label2id.get(id2label.get(label_id, ""), -1)
        references = [label2id[str(r[request.label_column])] for r in rows]
        return predicted, references

    return predict


def _predict_query_expansion(request: EvalRequest):
    """Load the generator once (merged weights, or a PEFT adapter plus its base); return rows -> (texts, refs)."""
    import torch

    from hf_autoresearch.tasks import query_expansion

    device = "cuda" if torch.cuda.is_available() else "cpu"
    model, tokenizer = query_expansion.load_for_generation(request.model_dir, device)

    def predict(rows: list[dict]) -> tuple[list[str], list[dict]]:
        queries = [str(r["query"]) for r in rows]
        predictions = query_expansion.generate(model, tokenizer, queries)
        references = [
            {"query": q, "expansion": query_expansion.output_text(r["output"])}
            for q, r in zip(queries, rows, strict=True)
        ]
        return predictions, references

    return predict


PREDICTORS = {"classification": _predict_classification, "query-expansion": _predict_query_expansion}


class _Scorer:
    """Holds the loaded model and metric inside the evaluation process."""

    def __init__(self, request: EvalRequest):
        import evaluate

        if not any((Path(request.model_dir) / f).is_file() for f in ("config.json", "adapter_config.json")):
            raise EvaluationError(
                f"no saved model in {request.model_dir}: train.py must save to AUTORESEARCH_OUTPUT_DIR"
            )
        self.request = request
        self.metric = evaluate.load(request.metric_path)
        self.predict = PREDICTORS[request.task](request)

    def score(self, rows_file: str) -> dict:
        from hf_autoresearch.data import read_jsonl

        started = time.monotonic()
        rows = read_jsonl(Path(rows_file))
        predictions, references = self.predict(rows)
        scores = self.metric.compute(predictions=predictions, references=references)
        return {"scores": scores, "num_rows": len(rows), "seconds": time.monotonic() - started}


class EvaluationProcess:
    """The frozen evaluation of one saved model, in a fresh Python process that loads the model once.

    The harness asks for one split at a time (`score`), so the holdout is scored only after the keep decision,
    without paying for a second process start. Use as a context manager.
    """

    def __init__(self, request: EvalRequest, workdir: Path, timeout: float = 1800):
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / "request.json").write_text(json.dumps(asdict(request)))
        self.stderr_path = workdir / "evaluation.log"
        self.timeout = timeout
        self._stderr = self.stderr_path.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "hf_autoresearch.evaluation", str(workdir / "request.json")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
            cwd=workdir,
        )

    def score(self, rows_file: Path) -> dict:
        """Scores, row count and in-process seconds for the rows in `rows_file`."""
        started = time.monotonic()
        try:
            self.proc.stdin.write(f"{rows_file}\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            pass  # the process died while loading; the empty read below reports why
        ready, _, _ = select.select([self.proc.stdout], [], [], self.timeout)
        line = self.proc.stdout.readline() if ready else ""
        if not ready:
            self.close()
            raise EvaluationError(f"evaluation took longer than {self.timeout:.0f} s")
        answer = json.loads(line) if line.strip() else {"error": f"evaluation process died:\n{self._tail()}"}
        if "error" in answer:
            raise EvaluationError(answer["error"])
        answer["wall_seconds"] = time.monotonic() - started
        return answer

    def _tail(self, lines: int = 15) -> str:
        self._stderr.flush()
        return "\n".join(self.stderr_path.read_text(errors="replace").strip().splitlines()[-lines:])

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
                self.proc.wait(timeout=30)
            except (BrokenPipeError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        self._stderr.close()

    def __enter__(self) -> EvaluationProcess:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def main(argv: list[str]) -> int:
    """Read rows-file paths from stdin, answer one JSON line each on stdout; everything else goes to stderr."""
    protocol = sys.stdout
    sys.stdout = sys.stderr  # library prints must not corrupt the protocol
    request = EvalRequest(**json.loads(Path(argv[0]).read_text()))

    def answer(obj: dict) -> None:
        protocol.write(json.dumps(obj) + "\n")
        protocol.flush()

    try:
        scorer = _Scorer(request)
    except Exception as err:  # report any load failure as an answer: the harness records it as a crash
        answer({"error": f"could not load the saved model: {type(err).__name__}: {err}"})
        return 2
    for line in sys.stdin:
        try:
            answer(scorer.score(line.strip()))
        except Exception as err:
            answer({"error": f"scoring failed: {type(err).__name__}: {err}"})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
