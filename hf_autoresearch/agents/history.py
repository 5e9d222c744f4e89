"""The table of experiments in the agent's task prompt: what a researcher reads after each training.

One row an experiment: status, selection score (and each run's, for repeated trainings), the difference to the best,
the gain the rule saw and the gain it needed, the frozen evaluation's other metrics, steps and epochs done of those
planned, the loss curve in a few points, the learning rate reached, samples a second, start-up and save seconds,
peak memory, the description (and an invalid proposal's reason). The table stays bounded as a run grows: the
baseline, the latest keeps and the latest rows are shown, the others summed up in one line.
"""

from __future__ import annotations

from hf_autoresearch.agents.base import ProposalContext
from hf_autoresearch.agents.text import clip_chars, number, one_line
from hf_autoresearch.ledger import ExperimentRecord

TABLE_KEEPS = 15  # the latest kept experiments always have a row ...
TABLE_LATEST = 25  # ... and so do the latest experiments; the others are summed up in one line
CURVE_CELL_POINTS = 5  # loss values shown in a row (first, last and evenly between)
OTHER_METRICS = 3  # metrics besides the deciding one, per row
DESCRIPTION_CHARS = 160


def history_table(context: ProposalContext) -> str:
    header = (
        "| experiment | status | selection | vs best | gain (thr.) | other metrics | steps | epochs | loss curve "
        "| lr | samples/s | start s | save s | peak MB | description |"
    )
    rows = [header, "|" + "---|" * 15]
    records, omitted = table_records(context.history)
    if omitted:
        rows.append(f"| ... | {omitted_summary(omitted)} |")
    metric = context.recipe.metric.name
    for r in records:
        rows.append("| " + " | ".join(history_cells(r, context.best, metric)) + " |")
    return "\n".join(rows)


def table_records(records: list[ExperimentRecord]) -> tuple[list[ExperimentRecord], list[ExperimentRecord]]:
    """(the rows shown, the rows summed up): the baseline, the latest keeps and the latest experiments."""
    if len(records) <= TABLE_KEEPS + TABLE_LATEST:
        return list(records), []
    keeps = [r for r in records if r.status == "keep"]
    shown = {id(records[0])} | {id(r) for r in keeps[-TABLE_KEEPS:]} | {id(r) for r in records[-TABLE_LATEST:]}
    return [r for r in records if id(r) in shown], [r for r in records if id(r) not in shown]


def omitted_summary(omitted: list[ExperimentRecord]) -> str:
    counts: dict[str, int] = {}
    for r in omitted:
        counts[r.status] = counts.get(r.status, 0) + 1
    scores = [r.selection for r in omitted if r.selection is not None]
    spread = f"; their selection ranged {min(scores):.4f} to {max(scores):.4f}" if scores else ""
    numbers = f"{omitted[0].experiment} to {omitted[-1].experiment}" if len(omitted) > 1 else omitted[0].experiment
    return (
        f"{len(omitted)} older rows not shown ({numbers}: "
        + ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
        + f"){spread}; read_experiment_curve and read_experiment_diff reach any of them"
    )


def history_cells(r: ExperimentRecord, best: ExperimentRecord, metric: str) -> list[str]:
    score = "" if r.selection is None else f"{r.selection:.4f}"
    runs = [t.get("selection") for t in r.trials if isinstance(t, dict) and t.get("selection") is not None]
    if len(runs) > 1:
        score += " (" + ", ".join(f"{v:.4f}" for v in runs) + ")"
    delta = "" if r.selection is None or best.selection is None else f"{r.selection - best.selection:+.4f}"
    gain = r.decision.get("gain")
    decided = "" if gain is None else f"{gain:+.4f} ({r.decision.get('threshold', 0.0):.4f})"
    others = [
        f"{name} {value:.4f}"
        for name, value in (r.scores.get("selection") or {}).items()
        if name != metric and isinstance(value, int | float) and not isinstance(value, bool)
    ][:OTHER_METRICS]
    s, t = r.summary or {}, r.training or {}
    steps = t.get("completed_steps", s.get("num_steps"))
    planned = t.get("planned_steps")
    steps_cell = number(steps, "{:.0f}") + (f"/{planned}" if isinstance(planned, int) and planned > 0 else "")
    epochs = number(t.get("epochs", s.get("epochs")), "{:.2f}")
    if isinstance(t.get("planned_epochs"), int | float) and epochs:
        epochs += f"/{t['planned_epochs']:g}"
    peak = s.get("peak_vram_mb") or 0.0
    memory = f"{peak:.0f} GPU" if peak else (f"{r.peak_rss_mb:.0f} RSS" if r.peak_rss_mb else "")
    why = f" ({clip_chars(r.reason.splitlines()[0], DESCRIPTION_CHARS)})" if r.reason else ""
    return [
        r.experiment,
        r.status,
        score,
        delta,
        decided,
        ", ".join(others),
        steps_cell,
        epochs,
        loss_cell(t, s),
        number(t.get("learning_rate"), "{:.2e}"),
        number(t.get("samples_per_second"), "{:.1f}"),
        number(t.get("first_step_seconds"), "{:.0f}"),
        number(t.get("save_seconds"), "{:.0f}"),
        memory,
        clip_chars(one_line(r.description), DESCRIPTION_CHARS) + why,
    ]


def loss_cell(training: dict, summary: dict) -> str:
    """The logged loss at a few evenly spaced points, first to last; else the Trainer's average loss."""
    losses = [p["loss"] for p in training.get("points", []) if isinstance(p.get("loss"), int | float)]
    if not losses:
        return number(summary.get("train_loss"), "avg {:.4f}")
    if len(losses) > CURVE_CELL_POINTS:
        step = (len(losses) - 1) / (CURVE_CELL_POINTS - 1)
        losses = [losses[round(i * step)] for i in range(CURVE_CELL_POINTS)]
    return " ".join(f"{v:.3g}" for v in losses)
