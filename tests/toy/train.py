"""Toy train.py: learns nothing, saves the threshold it is given."""

import json
import os
from pathlib import Path

THRESHOLD = 10  # characters above which a text is long; search: int(5, 80)


def main():
    rows = [json.loads(line) for line in Path(os.environ["AUTORESEARCH_DATA_DIR"], "train.jsonl").open()]
    assert set(rows[0]) == {"sentence", "size"}, rows[0]  # the task's columns, not the source's
    out = Path(os.environ.get("AUTORESEARCH_OUTPUT_DIR", "output"))
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps({"threshold": THRESHOLD}))
    (out / "summary.json").write_text(json.dumps({"training_seconds": 0.0, "num_train_rows": len(rows)}))
    print("---\nthreshold:", THRESHOLD)


if __name__ == "__main__":
    main()
