"""The larger model scored beside a run (larger-baseline.json, written by larger_model.py) and parameter counts."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

LARGER_BASELINE_FILE = "larger-baseline.json"


def count_parameters(model_dir: str | Path) -> int | None:
    """Parameters stored in a saved model's safetensors files (read from their headers, no weights loaded).

    For a PEFT adapter folder, the parameters of the base it names are added when the base is a local folder.
    None when the folder holds no readable safetensors file.
    """
    folder = Path(model_dir)
    total = 0
    for file in sorted(folder.glob("*.safetensors")):
        try:
            with file.open("rb") as f:
                size = int.from_bytes(f.read(8), "little")
                header = json.loads(f.read(size)) if 0 < size < 100_000_000 else None
        except (OSError, ValueError):  # not a safetensors file (a stand-in, a torn copy)
            header = None
        if not isinstance(header, dict):
            return None
        total += sum(math.prod(v["shape"]) for k, v in header.items() if k != "__metadata__")
    adapter = folder / "adapter_config.json"
    if adapter.is_file():
        base = json.loads(adapter.read_text()).get("base_model_name_or_path", "")
        total += (count_parameters(base) if base and Path(base).is_dir() else None) or 0
    return total or None


def read_baseline(folder: Path) -> dict | None:
    """larger-baseline.json of a run as `hf-autoresearch baseline` wrote it, or None."""
    try:
        return json.loads((Path(folder) / LARGER_BASELINE_FILE).read_text())
    except (OSError, json.JSONDecodeError):
        return None


@dataclass(frozen=True)
class LargerBaseline:
    """The larger model scored beside the run (larger-baseline.json)."""

    model: str
    status: str  # ok, crash, timeout
    reason: str
    trained: bool
    selection: float | None
    holdout: float | None
    num_params: int | None
    train_seconds: float  # the training loop's own time when train.py reported it, else the process time

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @classmethod
    def read(cls, folder: Path) -> LargerBaseline | None:
        data = read_baseline(folder)
        if data is None:
            return None
        return cls(
            model=data["model"],
            status=data["status"],
            reason=data.get("reason", ""),
            trained=data["trained"],
            selection=data.get("selection"),
            holdout=data.get("holdout"),
            num_params=data.get("num_params"),
            train_seconds=data.get("training_seconds") or data.get("train_seconds") or 0.0,
        )
