"""The frozen evaluation: score a saved model on one split, in a process of its own.

It loads only the model's weights and config (never code: trust_remote_code stays off, and nothing from the
recipe folder is imported) and scores with a local `evaluate` module under hf_autoresearch/metrics.
Run as `python -m hf_autoresearch.evaluation ARGS.json RESULT.json`; `evaluate_split` does that for the harness.
"""

from __future__ import annotations

import json
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
    rows_file: str
    labels_file: str
    metric_path: str
    text_column: str
    label_column: str


def _predict_classification(request: EvalRequest, rows: list[dict]) -> tuple[list[int], list[int]]:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    labels = json.loads(Path(request.labels_file).read_text())
    label2id = {name: i for i, name in enumerate(labels)}
    device = "cuda" if torch.cuda.is_available() else "cpu"
    tokenizer = AutoTokenizer.from_pretrained(request.model_dir, trust_remote_code=False)
    model = AutoModelForSequenceClassification.from_pretrained(request.model_dir, trust_remote_code=False)
    model.to(device).eval()
    id2label = {int(k): str(v) for k, v in model.config.id2label.items()}

    predictions = []
    with torch.inference_mode():
        for start in range(0, len(rows), EVAL_BATCH_SIZE):
            texts = [str(r[request.text_column]) for r in rows[start : start + EVAL_BATCH_SIZE]]
            batch = tokenizer(texts, truncation=True, max_length=EVAL_MAX_LENGTH, padding=True, return_tensors="pt")
            logits = model(**batch.to(device)).logits
            predictions += [label2id.get(id2label.get(i, ""), -1) for i in logits.argmax(-1).tolist()]
    references = [label2id[str(r[request.label_column])] for r in rows]
    return predictions, references


PREDICTORS = {"classification": _predict_classification}


def run_request(request: EvalRequest) -> dict:
    """Score the model in this process (the subprocess entry point)."""
    import evaluate

    from hf_autoresearch.data import read_jsonl

    if not (Path(request.model_dir) / "config.json").is_file():
        raise EvaluationError(f"no saved model in {request.model_dir}: train.py must save to AUTORESEARCH_OUTPUT_DIR")
    started = time.monotonic()
    rows = read_jsonl(Path(request.rows_file))
    predictions, references = PREDICTORS[request.task](request, rows)
    scores = evaluate.load(request.metric_path).compute(predictions=predictions, references=references)
    return {"scores": scores, "num_rows": len(rows), "seconds": time.monotonic() - started}


def evaluate_split(request: EvalRequest, workdir: Path, timeout: float = 1800) -> dict:
    """Run the frozen evaluation of `request` in a fresh Python process; returns scores, row count and seconds."""
    workdir.mkdir(parents=True, exist_ok=True)
    args_file, result_file = workdir / "eval-request.json", workdir / "eval-result.json"
    args_file.write_text(json.dumps(asdict(request)))
    result_file.unlink(missing_ok=True)
    try:
        done = subprocess.run(
            [sys.executable, "-m", "hf_autoresearch.evaluation", str(args_file), str(result_file)],
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=workdir,
        )
    except subprocess.TimeoutExpired as err:
        raise EvaluationError(f"evaluation took longer than {timeout:.0f} s") from err
    if done.returncode != 0 or not result_file.is_file():
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-15:])
        raise EvaluationError(f"evaluation failed (exit {done.returncode}):\n{tail}")
    return json.loads(result_file.read_text())


def main(argv: list[str]) -> int:
    request = EvalRequest(**json.loads(Path(argv[0]).read_text()))
    try:
        result = run_request(request)
    except EvaluationError as err:
        print(err, file=sys.stderr)
        return 2
    Path(argv[1]).write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
