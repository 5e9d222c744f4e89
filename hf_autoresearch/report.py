"""`hf-autoresearch report TAG`: progress.png, report.md and report.html in the run folder.

The plot follows autoresearch's progress.png: every experiment's selection score in order, discards faded, the
running best as a step line, failures marked at the bottom, with the noise band around the baseline and the larger
baseline when the run has them. The report says what the run found and what each kept edit changed.
"""

from __future__ import annotations

import html
import re
from pathlib import Path

from hf_autoresearch.runinfo import RunInfo, larger_baseline, noise_floor, short, total_agent_cost

FAILED = {
    "crash": ("X", "#d62728", "crash"),
    "timeout": ("X", "#ff7f0e", "timeout"),
    "invalid": ("s", "#9467bd", "invalid edit"),
}
KEEP, DISCARD, BEST, HOLDOUT = "#2ca02c", "#9a9a9a", "#1a7f37", "#1f77b4"


def _fmt(value: float | None, digits: int = 4) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def _signed(value: float | None) -> str:
    return "" if value is None else f"{value:+.4f}"


def running_best(info: RunInfo) -> list[tuple[int, float]]:
    """(experiment number, best selection so far) at every keep."""
    return [(r.number, r.selection) for r in info.kept if r.selection is not None]


# --- the plot ----------------------------------------------------------------------------------------
def plot_progress(info: RunInfo, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    records = info.records
    fig, ax = plt.subplots(figsize=(12, 6.75), dpi=150)
    kept = [r for r in records if r.status == "keep" and r.selection is not None]
    discarded = [r for r in records if r.status == "discard" and r.selection is not None]
    values = [r.selection for r in kept + discarded]
    values += [r.holdout for r in kept if r.holdout is not None]
    noise, larger = noise_floor(info), larger_baseline(info)
    base = info.baseline
    k = (noise or {}).get("z") or 2.0
    if noise and noise.get("mean") is not None:
        low, high = noise["mean"] - k * noise["std"], noise["mean"] + k * noise["std"]
        ax.axhspan(
            low, high, color=HOLDOUT, alpha=0.10, lw=0, label=f"noise floor: baseline ± {k:g}σ (σ={noise['std']:.4f})"
        )
        values += [low, high]
    if larger and larger.get("selection") is not None:
        ax.axhline(
            larger["selection"],
            color="#6f42c1",
            ls="--",
            lw=1.4,
            label=f"larger baseline {short(larger['model'], 40)}: {larger['selection']:.4f}",
        )
        values.append(larger["selection"])
    if base is not None and base.selection is not None:
        ax.axhline(base.selection, color="#555555", ls=":", lw=1.0, label=f"baseline: {base.selection:.4f}")

    if discarded:
        ax.scatter(
            [r.number for r in discarded],
            [r.selection for r in discarded],
            s=28,
            color=DISCARD,
            alpha=0.45,
            lw=0,
            label="discarded",
            zorder=3,
        )
    steps = running_best(info)
    if steps:
        last = max(r.number for r in records)
        xs = [n for n, _ in steps] + [last]
        ys = [s for _, s in steps] + [steps[-1][1]]
        ax.step(xs, ys, where="post", color=BEST, lw=2.2, alpha=0.85, label="running best", zorder=4)
    if kept:
        ax.scatter(
            [r.number for r in kept],
            [r.selection for r in kept],
            s=70,
            color=KEEP,
            edgecolor="#0b4d1f",
            lw=0.8,
            label="kept (selection)",
            zorder=5,
        )
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
    for r in kept:
        if r.number == 0:
            continue
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

    # failures have no score: mark them along the bottom of the axes
    ymin, ymax = (min(values), max(values)) if values else (0.0, 1.0)
    if not values:
        ax.text(0.5, 0.55, "no experiment produced a score yet", transform=ax.transAxes, ha="center", color="#555555")
        ax.set_yticks([])
    pad = (ymax - ymin) * 0.12 or 0.05
    ax.set_ylim(ymin - 2 * pad, ymax + 3.2 * pad)
    marker_y = ymin - 1.4 * pad
    if any(r.status in FAILED for r in records):  # a faint floor under which the runs without a score sit
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

    n_after = sum(r.number > 0 for r in records)
    n_kept = sum(r.status == "keep" and r.number > 0 for r in records)
    counted = f"{_plural(n_after, 'experiment')}, {_plural(n_kept, 'kept improvement')}"
    ax.set_title(
        f"{info.recipe_name} · run {info.tag}: {counted}",
        fontsize=13,
        loc="left",
        pad=22,
    )
    cfg = info.config
    model = str(cfg.get("model", ""))
    model = Path(model).name if model.startswith("/") else model  # a local folder: its name says enough here
    subtitle = f"{short(model, 60)} · {cfg.get('budget', 0):.0f} s budget · agent {cfg.get('agent', '')}"
    if steps and base is not None and base.selection is not None and steps[-1][0] != base.number:
        subtitle += f" · best {steps[-1][1]:.4f} vs baseline {base.selection:.4f}"
    ax.text(0, 1.015, subtitle, transform=ax.transAxes, fontsize=9, color="#555555")
    ax.set_xlabel("experiment")
    better = "higher" if info.direction == "maximize" else "lower"
    ax.set_ylabel(f"selection {info.metric} ({better} is better)")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if records:
        ax.set_xlim(-0.6, max(r.number for r in records) + 1.2)
    ax.grid(alpha=0.25)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.11), ncol=4, fontsize=8.5, frameon=False)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


# --- the report as blocks, written out as markdown and html ------------------------------------------
def _summary_rows(info: RunInfo) -> list[list[str]]:
    base, best, larger = info.baseline, info.best, larger_baseline(info)
    rows = []

    def gain(value: float | None, ref: float | None) -> str:
        if value is None or ref is None:
            return ""
        rel = f" ({(value - ref) / abs(ref):+.1%})" if ref else ""
        return f"{value - ref:+.4f}{rel}"

    if base is not None:
        rows.append(
            [
                "baseline (exp-0000)",
                f"`{info.config.get('model', '')}`",
                _fmt(base.selection),
                _fmt(base.holdout),
                "",
                "",
            ]
        )
    if best is not None and best is not base:
        rows.append(
            [
                f"**best ({best.experiment})**",
                f"`{info.config.get('model', '')}`",
                f"**{_fmt(best.selection)}**",
                f"**{_fmt(best.holdout)}**",
                gain(best.selection, base.selection if base else None),
                gain(best.holdout, base.holdout if base else None),
            ]
        )
    if larger:
        ref = best or base
        rows.append(
            [
                "larger baseline",
                f"`{larger['model']}`" + (f" ({larger['params_M']:.0f}M)" if larger.get("params_M") else ""),
                _fmt(larger["selection"]),
                _fmt(larger["holdout"]),
                "best " + gain(ref.selection, larger["selection"]) if ref else "",
                "best " + gain(ref.holdout, larger["holdout"]) if ref else "",
            ]
        )
    return rows


def report_blocks(info: RunInfo, image: str = "progress.png", hub: dict[int, dict] | None = None) -> list[tuple]:
    hub = hub or {}
    records = info.records
    after = [r for r in records if r.number > 0]
    kept_after = [r for r in after if r.status == "keep"]
    counts = {s: sum(r.status == s for r in after) for s in ("keep", "discard", "crash", "timeout", "invalid")}
    hours = sum(r.total_seconds for r in records) / 3600
    cost = total_agent_cost(records)
    noise = noise_floor(info)
    cfg = info.config
    blocks: list[tuple] = [
        ("h1", f"Run {info.tag} · {info.recipe_name}"),
        (
            "p",
            f"Model `{cfg.get('model', '')}` on `{cfg.get('data', '')}`, agent `{cfg.get('agent', '')}`, "
            f"{cfg.get('budget', 0):.0f} s of training per experiment, metric `{info.metric}` ({info.direction}). "
            f"Git branch `{cfg.get('branch', '')}`; started {cfg.get('started_at', '')}.",
        ),
        ("h2", "Summary"),
        ("table", ["", "model", "selection", "holdout", "selection gain", "holdout gain"], _summary_rows(info)),
    ]
    facts = [
        f"{_plural(len(after), 'experiment')} after the baseline: "
        + ", ".join(f"{n} {s}" for s, n in counts.items() if n),
        f"keep rate {len(kept_after) / len(after):.0%} ({len(kept_after)} of {len(after)})"
        if after
        else "no experiments after the baseline yet",
        f"{len(records) / hours:.1f} experiments per hour ({hours:.2f} h in experiments: agent, training, evaluation)"
        if hours > 0
        else "no time recorded",
    ]
    if cost is not None:
        per = f", ${cost / len(kept_after):.2f} per kept improvement" if kept_after else ""
        facts.append(f"agent cost ${cost:.2f}{per}")
    if noise:
        facts.append(
            f"noise floor: the baseline retrained scores {_fmt(noise['mean'])} ± {noise['std']:.4f} (std)"
            + (f"; keeps had to gain more than {noise['threshold']:.4f}" if noise.get("threshold") else "")
        )
    best, base = info.best, info.baseline
    if best is not None and base is not None and best is not base and None not in (best.holdout, base.holdout):
        sel_gain = (best.selection - base.selection) * (1 if info.direction == "maximize" else -1)
        hold_gain = (best.holdout - base.holdout) * (1 if info.direction == "maximize" else -1)
        facts.append(
            f"selection gain {sel_gain:+.4f}, holdout gain {hold_gain:+.4f}"
            + (
                " — the holdout did not improve: the keeps may fit the selection split"
                if hold_gain <= 0 < sel_gain
                else ""
            )
        )
    blocks += [("ul", facts), ("img", image, f"progress of run {info.tag}")]

    blocks.append(("h2", "Kept experiments"))
    if not kept_after:
        blocks.append(("p", "No experiment beat the baseline."))
    previous = base
    for r in kept_after:
        gain = None if previous is None or previous.selection is None else r.selection - previous.selection
        line = (
            f"selection **{_fmt(r.selection)}** ({_signed(gain)} over {previous.experiment if previous else '–'}), "
            f"holdout {_fmt(r.holdout)}; trained {r.train_seconds:.0f} s; git commit `{r.commit[:12]}`"
        )
        if r.number in hub:
            line += f"; Hub revision `{hub[r.number]['tag']}` (`{hub[r.number]['hub_commit'][:12]}`)"
        blocks += [("h3", f"{r.experiment}: {short(r.description, 100)}"), ("p", line)]
        if r.diff:
            blocks.append(("code", "diff", r.diff.rstrip()))
        previous = r

    blocks.append(("h2", "All experiments"))
    rows = []
    for r in records:
        what = short(r.description, 70) + (f" ({short(r.reason.splitlines()[0], 60)})" if r.reason else "")
        rows.append(
            [r.experiment, r.status, _fmt(r.selection), _fmt(r.holdout), f"{r.train_seconds:.0f}", r.commit[:8], what]
        )
    blocks.append(
        ("table", ["experiment", "status", "selection", "holdout", "train s", "commit", "description"], rows)
    )
    return blocks


def _is_number(cell: str) -> bool:
    return bool(re.fullmatch(r"\**[+-]?[\d.]+\**( \([+-][\d.]+%\))?|–|", cell.replace("best ", "")))


def to_markdown(blocks: list[tuple]) -> str:
    out = []
    for kind, *rest in blocks:
        if kind in ("h1", "h2", "h3"):
            out.append("#" * int(kind[1]) + " " + rest[0])
        elif kind == "p":
            out.append(rest[0])
        elif kind == "ul":
            out.append("\n".join(f"- {item}" for item in rest[0]))
        elif kind == "img":
            out.append(f"![{rest[1]}]({rest[0]})")
        elif kind == "code":
            out.append(f"```{rest[0]}\n{rest[1]}\n```")
        elif kind == "table":
            header, rows = rest
            numeric = [
                all(_is_number(row[i]) for row in rows) and any(row[i] for row in rows) for i in range(len(header))
            ]
            lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---:" if n else "---" for n in numeric) + "|"]
            lines += ["| " + " | ".join(c.replace("|", "/") for c in row) + " |" for row in rows]
            out.append("\n".join(lines))
    return "\n\n".join(out) + "\n"


def _inline(text: str) -> str:
    text = html.escape(text)
    text = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", text)
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", text)


STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;
color:#1f2328;line-height:1.5}
table{border-collapse:collapse;margin:1em 0}
td,th{border:1px solid #d0d7de;padding:4px 10px;text-align:left}
th{background:#f6f8fa}
code{background:#f6f8fa;padding:1px 4px;border-radius:4px;font-size:90%}
pre{background:#f6f8fa;padding:10px;overflow-x:auto;font-size:85%}
img{max-width:100%}
.add{color:#1a7f37}.del{color:#cf222e}.hunk{color:#8250df}
"""


def _diff_html(text: str) -> str:
    lines = []
    for line in text.splitlines():
        css = "add" if line.startswith("+") and not line.startswith("+++") else ""
        css = css or ("del" if line.startswith("-") and not line.startswith("---") else "")
        css = css or ("hunk" if line.startswith("@@") else "")
        lines.append(f'<span class="{css}">{html.escape(line)}</span>' if css else html.escape(line))
    return "\n".join(lines)


def to_html(blocks: list[tuple], title: str) -> str:
    head = f"<meta charset='utf-8'><title>{html.escape(title)}</title><style>{STYLE}</style>"
    out = [f"<!doctype html><html><head>{head}</head><body>"]
    for kind, *rest in blocks:
        if kind in ("h1", "h2", "h3"):
            out.append(f"<{kind}>{_inline(rest[0])}</{kind}>")
        elif kind == "p":
            out.append(f"<p>{_inline(rest[0])}</p>")
        elif kind == "ul":
            out.append("<ul>" + "".join(f"<li>{_inline(i)}</li>" for i in rest[0]) + "</ul>")
        elif kind == "img":
            out.append(f'<img src="{html.escape(rest[0])}" alt="{html.escape(rest[1])}">')
        elif kind == "code":
            body = _diff_html(rest[1]) if rest[0] == "diff" else html.escape(rest[1])
            out.append(f"<pre><code>{body}</code></pre>")
        elif kind == "table":
            header, rows = rest
            head = "".join(f"<th>{_inline(h)}</th>" for h in header)
            body = "".join("<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in row) + "</tr>" for row in rows)
            out.append(f"<table><tr>{head}</tr>{body}</table>")
    out.append("</body></html>")
    return "\n".join(out)


def _hub_entries(folder: Path) -> dict[int, dict]:
    from hf_autoresearch.hub import pushed

    return pushed(folder)


def write_report(folder: Path) -> dict[str, Path]:
    """Write progress.png, report.md and report.html into the run folder; their paths."""
    info = RunInfo.load(folder)
    folder = info.folder
    paths = {"png": folder / "progress.png", "md": folder / "report.md", "html": folder / "report.html"}
    plot_progress(info, paths["png"])
    blocks = report_blocks(info, paths["png"].name, _hub_entries(folder))
    paths["md"].write_text(to_markdown(blocks))
    paths["html"].write_text(to_html(blocks, f"hf-autoresearch run {info.tag}"))
    return paths
