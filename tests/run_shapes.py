"""What the harness writes into a run folder, made with the harness's own code wherever it can be, for tests of what
reads a run (summary, status, report, model card): the baseline's noise floor (decision.NoiseFloor.to_dict), the
claude agent's usage (agents.pricing.Usage), larger-baseline.json (larger_model.score_larger_model with training and
evaluation stubbed) and model folders with real safetensors headers."""

from __future__ import annotations

from pathlib import Path

from hf_autoresearch import larger_model
from hf_autoresearch.agents.pricing import DEFAULT_PRICES, Usage, request_cost
from hf_autoresearch.driver.decision import NoiseFloor
from hf_autoresearch.executors.runner import TrainingResult
from hf_autoresearch.ledger import ExperimentRecord, Ledger


def baseline_decision(scores: list[float], direction: str = "maximize") -> dict:
    """The decision the loop records on the baseline: its runs' scores as the noise floor."""
    noise = NoiseFloor(list(scores), list(range(len(scores))))
    return {"rule": "baseline", "noise": noise.to_dict(), "direction": direction}


def agent_usage(input_tokens: int, output_tokens: int, cache_read: int = 0, requests: int = 1) -> tuple[dict, float]:
    """(agent_usage, agent_cost) as the claude agent records them for one proposal."""
    usage = Usage(
        model="claude-sonnet-5-5",
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cache_read_input_tokens=cache_read,
        requests=requests,
    )
    tokens = {k: v for k, v in usage.as_dict().items() if k.endswith("_tokens")}
    return usage.as_dict(), request_cost(tokens, DEFAULT_PRICES["claude-sonnet-5-5"])


def set_usage(folder: Path, usages: dict[int, tuple[dict, float]]) -> list[ExperimentRecord]:
    """Rewrite the ledger through Ledger.append with agent usage on the given experiments."""
    records = Ledger(folder).records()
    for r in records:
        r.agent_usage, r.agent_cost = usages.get(r.number, ({}, 0.0))
    (folder / "ledger.jsonl").unlink()
    for r in records:
        Ledger(folder).append(r)
    return records


def save_weights(model_dir: Path, shapes: dict[str, tuple[int, ...]]) -> int:
    """A real safetensors file with tensors of `shapes` (zeros); the number of parameters it holds."""
    import numpy as np
    from safetensors.numpy import save_file

    model_dir.mkdir(parents=True, exist_ok=True)
    tensors = {name: np.zeros(shape, dtype=np.float32) for name, shape in shapes.items()}
    save_file(tensors, model_dir / "model.safetensors")
    return sum(int(np.prod(shape)) for shape in shapes.values())


def write_larger_baseline(
    folder: Path,
    monkeypatch,
    model: str = "acme/larger-encoder",
    selection: float = 0.61,
    holdout: float = 0.60,
    shapes: dict | None = None,
    status: str = "ok",
    training_seconds: float = 55.0,
) -> dict:
    """larger-baseline.json written by `larger_model.score_larger_model` itself; training and evaluation stubbed."""
    shapes = shapes or {"embeddings": (1000, 64), "head": (64, 5)}
    scores = {"selection": selection, "holdout": holdout}

    def fake_training(job):
        output = job.scratch / "output"
        save_weights(output, shapes)
        (output / "config.json").write_text('{"architectures": ["BertForSequenceClassification"]}')
        (output / "summary.json").write_text(f'{{"training_seconds": {training_seconds}}}')
        return TrainingResult(status, 1 if status == "crash" else 0, training_seconds + 5, 3.0, output, "tail", 100.0)

    class FakeEvaluator:
        def __init__(self, setup, workdir):
            pass

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def score(self, model_dir, rows_file):
            split = Path(rows_file).stem
            return {"scores": {"accuracy": scores[split], "macro_f1": scores[split] * 0.9}, "wall_seconds": 1.0}

    monkeypatch.setattr(larger_model, "run_training", fake_training)
    monkeypatch.setattr(larger_model, "Evaluator", FakeEvaluator)
    config_recipe = folder / "worktree" / "recipes" / "intent-categorization"
    return larger_model.score_larger_model(
        config_recipe, folder.parent, tag=folder.name, model=model, budget=60, log=lambda *_: None
    )
