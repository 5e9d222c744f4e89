"""progress.png: every experiment's selection score in order, after autoresearch's progress plot.

Discards faded, the running best as a step line, failures marked along the bottom, the holdout of each keep, the
noise band around the baseline and the larger baseline when the run has them; all read from summary.RunSummary.
"""

from __future__ import annotations

from pathlib import Path

from hf_autoresearch.formatting import plural
from hf_autoresearch.reporting.summary import RunSummary, short

FAILED = {
    "crash": ("X", "#d62728", "crash"),
    "timeout": ("X", "#ff7f0e", "timeout"),
    "invalid": ("s", "#9467bd", "invalid edit"),
}
KEEP, DISCARD, BEST, HOLDOUT = "#2ca02c", "#9a9a9a", "#1a7f37", "#1f77b4"


def running_best(info: RunSummary) -> list[tuple[int, float]]:
    """(experiment number, best selection so far) at every keep."""
    return [(r.number, r.selection) for r in info.kept if r.selection is not None]


def plot_progress(info: RunSummary, path: Path) -> Path:
    """progress.png: every experiment's selection score, the running best, the holdout of keeps, the failures along
    the bottom, and the reference lines (noise band, recipe baseline, larger model)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(12, 6.75), dpi=150)
    values = _reference_lines(ax, info)
    values += _scored_experiments(ax, info)
    _failures(ax, info.records, values)
    _titles_and_axes(ax, info)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def _reference_lines(ax, info: RunSummary) -> list[float]:
    """The band a keep had to clear around the baseline, the larger model and the baseline; the values they put on
    the axis."""
    values = []
    noise, larger, base, needed = info.noise, info.larger, info.baseline, info.threshold
    if noise is not None:  # the gain a keep needed, around the baseline's mean: what the rule calls noise
        low, high = noise.mean - needed, noise.mean + needed
        label = f"baseline ± the gain a keep needs ({needed:.4f}; the baseline's σ {noise.std:.4f})"
        ax.axhspan(low, high, color=HOLDOUT, alpha=0.10, lw=0, label=label)
        values += [low, high]
    if larger is not None and larger.selection is not None:
        label = f"larger baseline {short(Path(larger.model).name, 40)}: {larger.selection:.4f}"
        ax.axhline(larger.selection, color="#6f42c1", ls="--", lw=1.4, label=label)
        values.append(larger.selection)
    if base is not None and base.selection is not None:
        ax.axhline(base.selection, color="#555555", ls=":", lw=1.0, label=f"baseline: {base.selection:.4f}")
    return values


def _scored_experiments(ax, info: RunSummary) -> list[float]:
    """Discarded and kept experiments, the running best, the holdout of keeps; the values they put on the axis."""
    records = info.records
    kept = [r for r in records if r.status == "keep" and r.selection is not None]
    discarded = [r for r in records if r.status == "discard" and r.selection is not None]
    if discarded:
        xs, ys = [r.number for r in discarded], [r.selection for r in discarded]
        ax.scatter(xs, ys, s=28, color=DISCARD, alpha=0.45, lw=0, label="discarded", zorder=3)
    steps = running_best(info)
    if steps:
        last = max(r.number for r in records)
        xs = [n for n, _ in steps] + [last]
        ys = [s for _, s in steps] + [steps[-1][1]]
        ax.step(xs, ys, where="post", color=BEST, lw=2.2, alpha=0.85, label="running best", zorder=4)
    if kept:
        xs, ys = [r.number for r in kept], [r.selection for r in kept]
        ax.scatter(xs, ys, s=70, color=KEEP, edgecolor="#0b4d1f", lw=0.8, label="kept (selection)", zorder=5)
    with_holdout = [r for r in kept if r.holdout is not None]
    if with_holdout:
        ax.scatter(
            [r.number for r in with_holdout],
            [r.holdout for r in with_holdout],
            s=42,
            marker="D",
            facecolor="none",
            edgecolor=HOLDOUT,
            lw=1.2,
            label="holdout of keeps (reported, never decides)",
            zorder=5,
        )
    for r in (r for r in kept if r.number != 0):  # the baseline needs no label
        ax.annotate(
            short(r.description, 36),
            (r.number, r.selection),
            xytext=(6, 7),
            textcoords="offset points",
            fontsize=8,
            rotation=16,
            color="#0b4d1f",
            zorder=6,
        )
    return [r.selection for r in kept + discarded] + [r.holdout for r in with_holdout]


def _failures(ax, records, values: list[float]) -> None:
    """Failures have no score: they sit along the bottom of the axes, under a faint floor. Sets the y range."""
    ymin, ymax = (min(values), max(values)) if values else (0.0, 1.0)
    if not values:
        ax.text(0.5, 0.55, "no experiment produced a score yet", transform=ax.transAxes, ha="center", color="#555555")
        ax.set_yticks([])
    pad = (ymax - ymin) * 0.12 or 0.05
    ax.set_ylim(ymin - 2 * pad, ymax + 3.2 * pad)
    marker_y = ymin - 1.4 * pad
    if any(r.status in FAILED for r in records):
        ax.axhline(ymin - 0.8 * pad, color="#cccccc", lw=0.8, ls="--", zorder=1)
        ax.text(0.005, marker_y, "no score ", transform=ax.get_yaxis_transform(), ha="right", va="center", fontsize=8)
    for status, (marker, color, label) in FAILED.items():
        failed = [r.number for r in records if r.status == status]
        if failed:
            ax.scatter(
                failed,
                [marker_y] * len(failed),
                marker=marker,
                s=60,
                color=color,
                label=f"{label} ({len(failed)})",
                zorder=5,
            )


def _titles_and_axes(ax, info: RunSummary) -> None:
    from matplotlib.ticker import MaxNLocator

    counted = f"{plural(len(info.experiments), 'experiment')}, {plural(info.counts['keep'], 'kept improvement')}"
    ax.set_title(f"{info.recipe_name} · run {info.tag}: {counted}", fontsize=13, loc="left", pad=22)
    cfg, base, steps = info.config, info.baseline, running_best(info)
    model = Path(cfg.model).name if cfg.model.startswith("/") else cfg.model  # a local folder: its name is enough
    subtitle = f"{short(model, 60)} · {cfg.budget:.0f} s budget · agent {cfg.agent}"
    if steps and base is not None and base.selection is not None and steps[-1][0] != base.number:
        subtitle += f" · best {steps[-1][1]:.4f} vs baseline {base.selection:.4f}"
    ax.text(0, 1.015, subtitle, transform=ax.transAxes, fontsize=9, color="#555555")
    ax.set_xlabel("experiment")
    better = "higher" if info.direction == "maximize" else "lower"
    ax.set_ylabel(f"selection {info.metric} ({better} is better)")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if info.records:
        ax.set_xlim(-0.6, max(r.number for r in info.records) + 1.2)
    ax.grid(alpha=0.25)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.11), ncol=4, fontsize=8.5, frameon=False)
