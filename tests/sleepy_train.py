"""A train.py that trains nothing: it sleeps SLEEP seconds (never past the deadline), then saves the base model with
a classification head for the run's labels, so the frozen evaluation scores a real (random) model. For tests of the
machinery around training: executors, slots, killing, resuming."""

import json
import os
import shutil
import time
from pathlib import Path

SLEEP = 2.0  # seconds of "training"

data, out = Path(os.environ["AUTORESEARCH_DATA_DIR"]), Path(os.environ["AUTORESEARCH_OUTPUT_DIR"])
labels = json.loads((data / "labels.json").read_text())
deadline = float(
    os.environ.get("AUTORESEARCH_DEADLINE") or time.time() + float(os.environ["AUTORESEARCH_TIME_BUDGET"])
)
time.sleep(max(0.0, min(SLEEP, deadline - time.time() - 1)))
shutil.copytree(os.environ["AUTORESEARCH_MODEL"], out, dirs_exist_ok=True)
config = json.loads((out / "config.json").read_text())
config.update(
    architectures=["BertForSequenceClassification"],
    id2label={str(i): name for i, name in enumerate(labels)},
    label2id={name: i for i, name in enumerate(labels)},
)
(out / "config.json").write_text(json.dumps(config))
summary = {"training_seconds": SLEEP, "threads": os.environ.get("OMP_NUM_THREADS"), "pid": os.getpid()}
(out / "summary.json").write_text(json.dumps(summary))
print("---\n" + "\n".join(f"{k}: {v}" for k, v in summary.items()))
