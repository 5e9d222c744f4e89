"""The model card of one kept experiment: metadata with eval results, then how it scores and how it was made.

The scores, the noise floor and the larger-baseline comparison come from summary.RunSummary, the same numbers
`status` and `report` print. The pipeline tag and the class that loads the model come from the recipe's task.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from hf_autoresearch.formatting import score
from hf_autoresearch.hub.names import REPO_ID, hub_tag
from hf_autoresearch.ledger import ExperimentRecord
from hf_autoresearch.reporting.summary import RunSummary, format_params, short

# what a saved model's architecture says, for a run whose task name is not known
_ARCHITECTURES = (
    ("ForSequenceClassification", "text-classification", "AutoModelForSequenceClassification"),
    ("ForCausalLM", "text-generation", "AutoModelForCausalLM"),
    ("ForConditionalGeneration", "text-generation", "AutoModelForCausalLM"),
)


def task_card_facts(task: str | None) -> tuple[str | None, str | None]:
    """(pipeline_tag, auto_class) of a recipe's task, from the task registry; (None, None) when unknown."""
    from hf_autoresearch.tasks import UnknownTask, get_task

    if not task:
        return None, None
    try:
        found = get_task(task)
    except UnknownTask:  # a task this installation does not have: the saved model's config says what it is
        return None, None
    return found.pipeline_tag, found.auto_class


@dataclass(frozen=True)
class ModelKind:
    pipeline: str | None  # the Hub's pipeline_tag
    auto_class: str  # what loads it: AutoModelFor... or, for an adapter, AutoPeftModelFor...
    adapter_base: str | None  # the base model a PEFT adapter names; None for full weights

    @property
    def library(self) -> str:
        return "peft" if self.adapter_base else "transformers"


def model_kind(model_dir: Path, task: str | None) -> ModelKind:
    """What the saved model is, from the recipe's task, else from the adapter or model config it was saved with."""
    pipeline, auto_class = task_card_facts(task)
    adapter = model_dir / "adapter_config.json"
    if adapter.is_file():
        data = json.loads(adapter.read_text())
        if auto_class is None:
            classifier = data.get("task_type") == "SEQ_CLS"
            pipeline = "text-classification" if classifier else "text-generation"
            auto_class = "AutoModelForSequenceClassification" if classifier else "AutoModelForCausalLM"
        peft_class = auto_class.replace("AutoModel", "AutoPeftModel", 1)
        return ModelKind(pipeline, peft_class, data.get("base_model_name_or_path") or "?")
    config = model_dir / "config.json"
    if auto_class is None and config.is_file():
        arch = (json.loads(config.read_text()).get("architectures") or [""])[0]
        pipeline, auto_class = next(((p, a) for s, p, a in _ARCHITECTURES if arch.endswith(s)), (None, None))
    return ModelKind(pipeline, auto_class or "AutoModel", None)


def hub_id(value: str) -> str | None:
    """`value` if it names a Hub repo (not a local folder), for card metadata the Hub checks."""
    if not value or Path(value).expanduser().exists():
        return None
    return value if re.fullmatch(REPO_ID, value) else None


def model_card(summary: RunSummary, record: ExperimentRecord, repo_id: str, on_hub: dict[int, dict] | None = None):
    """The card of one revision (a huggingface_hub ModelCard)."""
    from huggingface_hub import EvalResult, ModelCard, ModelCardData

    config = summary.config
    kind = model_kind(summary.folder / "models" / record.experiment, summary.task)
    data_id = hub_id(config.data)
    data_name = data_id or Path(config.data).name
    results = [
        EvalResult(
            task_type=kind.pipeline or "other",
            dataset_type=data_id or data_name,
            dataset_name=f"{data_name} ({split} split)",
            dataset_split=split,
            metric_type=name,
            metric_value=round(float(value), 6),
            metric_name=f"{name} ({split})",
        )
        for split in ("selection", "holdout")
        for name, value in sorted((record.scores.get(split) or {}).items())
        if isinstance(value, int | float) and not isinstance(value, bool)
    ]
    card_data = ModelCardData(
        model_name=repo_id.split("/")[-1],
        base_model=hub_id(kind.adapter_base or config.model),
        datasets=[data_id] if data_id else None,
        metrics=sorted({r.metric_type for r in results}) or None,
        eval_results=results or None,
        library_name=kind.library,
        pipeline_tag=kind.pipeline,
        tags=["hf-autoresearch", summary.recipe_name, f"autoresearch-run-{summary.tag}"],
    )
    body = _card_body(summary, record, repo_id, on_hub or {}, kind)
    return ModelCard(f"---\n{card_data.to_yaml()}\n---\n\n{body}")


def _results(summary: RunSummary, record: ExperimentRecord) -> list[str]:
    """This revision against the baseline and the larger baseline, with the parameters of each."""
    base, larger = summary.baseline, summary.larger
    params = summary.params_of(record)
    lines = [
        f"`{summary.metric}` ({summary.direction}); selection decides, holdout is reported only. Selection is the "
        "mean of the runs that did not decide the keep; holdout is this model's own score "
        f"({summary.holdout_label(record)}).",
        "",
        "| | parameters | selection | holdout |",
        "|---|---:|---:|---:|",
        f"| **this revision ({record.experiment})** | {format_params(params)} | **{score(record.selection)}** | "
        f"**{score(record.holdout)}** |",
    ]
    if base is not None and base.number != record.number:
        lines.append(
            f"| baseline ({base.experiment}, the recipe as written) | {format_params(summary.params_of(base))} | "
            f"{score(base.selection)} | {score(base.holdout)} |"
        )
    if larger is not None and larger.ok:
        lines.append(
            f"| larger baseline `{larger.model}` | {format_params(larger.num_params)} | {score(larger.selection)} | "
            f"{score(larger.holdout)} |"
        )
        gains = [
            f"{split} {gain:+.1%}"
            for split in ("selection", "holdout")
            if (gain := summary.vs_larger(split, record)) is not None
        ]
        size = (
            f" ({larger.num_params / params:.1f}x the parameters of this model)"
            if params and larger.num_params
            else ""
        )
        how = f"trained {larger.train_seconds:.0f} s" if larger.trained else "not trained"
        if gains:
            lines += [
                "",
                f"**Against the larger baseline** `{larger.model}`{size}, {how} with the recipe's original "
                f"`train.py`: this revision scores {', '.join(gains)} relative to it (positive: this one is better).",
            ]
    if summary.noise is not None:
        noise = summary.noise
        lines += [
            "",
            f"**Noise floor**: the baseline retrained with other seeds scores {score(noise.mean)} ± {noise.std:.4f} "
            f"(std, {len(noise.scores)} runs); {summary.rule_line()}.",
        ]
    return lines


def _card_body(
    summary: RunSummary, record: ExperimentRecord, repo_id: str, on_hub: dict[int, dict], kind: ModelKind
) -> str:
    config = summary.config
    revision = hub_tag(summary.tag, record.number)
    lines = [
        f"# {repo_id.split('/')[-1]} · {record.experiment} of run `{summary.tag}`",
        "",
        f"Made by hf-autoresearch on the recipe `{summary.recipe_name}`: an agent edited "
        "`train.py`, the edit trained under a fixed budget, a frozen evaluation scored it on the selection split, "
        "and the edit was kept because it beat the best before it. The holdout split was never used to decide.",
        "",
        f"- **experiment**: {record.experiment}: {record.description}",
        f"- **git commit of train.py**: `{record.commit}` (branch `{config.branch}`, file "
        f"`{summary.train_py_rel}`; the same file is in this revision as `train.py`)",
        f"- **base model**: `{kind.adapter_base or config.model}`"
        + (" (this revision is a PEFT adapter on it)" if kind.adapter_base else ""),
        f"- **data**: `{config.data}`",
        f"- **budget**: {config.budget:.0f} s of training; trained {record.train_seconds:.0f} s, seed {record.seed}",
        "",
        "## Results",
        "",
        *_results(summary, record),
        "",
        "## Lineage of keeps",
        "",
        "| experiment | git commit | selection | holdout | Hub revision | what |",
        "|---|---|---:|---:|---|---|",
    ]
    for r in summary.lineage(record.number):
        rev = f"`{hub_tag(summary.tag, r.number)}`" if r.number in on_hub or r.number == record.number else "–"
        lines.append(
            f"| {r.experiment} | `{r.commit[:12]}` | {score(r.selection)} | {score(r.holdout)} | {rev} | "
            f"{short(r.description, 80).replace('|', '/')} |"
        )
    diff = summary.diff_from_baseline(record)
    lines += ["", "## train.py against the baseline", ""]
    lines += ["```diff", diff.rstrip(), "```"] if diff else ["This is the baseline: `train.py` as the recipe has it."]
    lines += ["", "## How to load it", "", "```python"]
    load = f'{kind.auto_class}.from_pretrained("{repo_id}", revision="{revision}")'
    if kind.adapter_base:
        lines += [f"from peft import {kind.auto_class}", "", f"model = {load}"]
    else:
        lines += [
            f"from transformers import {kind.auto_class}, AutoTokenizer",
            "",
            f"model = {load}",
            f'tokenizer = AutoTokenizer.from_pretrained("{repo_id}", revision="{revision}")',
        ]
    lines += [
        "```",
        "",
        f"Every kept experiment of this run is a tag `{summary.tag}-exp-NNNN` on branch `autoresearch/{summary.tag}`; "
        "`train.py` in each revision is the exact script that produced it (run it with `accelerate launch train.py`; "
        "it reads its data and output folders from `AUTORESEARCH_*` variables, see `autoresearch.json`).",
        "",
    ]
    return "\n".join(lines)
