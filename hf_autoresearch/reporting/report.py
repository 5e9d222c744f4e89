"""`hf-autoresearch report TAG`: progress.png (plot.py), report.md and report.html in the run folder.

The report renders summary.RunSummary (best against baseline against larger baseline, gains, noise, rate, cost),
then what each kept edit changed, then every experiment.
"""

from __future__ import annotations

import html
import re
from pathlib import Path

from hf_autoresearch.formatting import plural, score
from hf_autoresearch.reporting.plot import plot_progress
from hf_autoresearch.reporting.summary import RunSummary, format_params, relative_gain, short, signed_gain


def _signed(value: float | None) -> str:
    return "" if value is None else f"{value:+.4f}"


# --- the report as blocks, written out as markdown (then html from the markdown) ------------------------------
def _gain(info: RunSummary, value: float | None, ref: float | None) -> str:
    """Absolute gain (positive: better, whatever the direction) and the same relative to the reference."""
    absolute = signed_gain(value, ref, info.direction)
    if absolute is None:
        return ""
    relative = relative_gain(value, ref, info.direction)
    return f"{absolute:+.4f}" + ("" if relative is None else f" ({relative:+.1%})")


def _summary_rows(info: RunSummary) -> list[list[str]]:
    """Baseline, best (gains over the baseline) and the larger baseline (the best's gains over it)."""
    base, best, larger = info.baseline, info.best, info.larger
    model = f"`{info.config.model}`"
    rows = []
    if base is not None:
        rows.append(
            [
                f"baseline ({base.experiment})",
                model,
                format_params(info.params_of(base)),
                score(base.selection),
                score(base.holdout),
                "",
                "",
            ]
        )
    if best is not None and best is not base:
        rows.append(
            [
                f"**best ({best.experiment})**",
                model,
                format_params(info.params),
                f"**{score(best.selection)}**",
                f"**{score(best.holdout)}**",
                _gain(info, best.selection, base.selection),
                _gain(info, best.holdout, base.holdout),
            ]
        )
    if larger is not None and larger.ok:
        ref = best or base
        rows.append(
            [
                "larger baseline",
                f"`{larger.model}`",
                format_params(larger.num_params),
                score(larger.selection),
                score(larger.holdout),
                "best " + _gain(info, ref.selection, larger.selection) if ref else "",
                "best " + _gain(info, ref.holdout, larger.holdout) if ref else "",
            ]
        )
    return rows


def _facts(info: RunSummary) -> list[str]:
    after, counts = info.experiments, info.counts
    facts = [
        f"{plural(len(after), 'experiment')} after the baseline: "
        + ", ".join(f"{n} {s}" for s, n in counts.items() if n),
        f"keep rate {info.keep_rate:.0%} ({counts['keep']} of {len(after)})"
        if info.keep_rate is not None
        else "no experiments after the baseline yet",
        f"{info.experiments_per_hour:.1f} experiments per hour ({info.hours:.2f} h in experiments: agent, training, "
        "evaluation)"
        if info.experiments_per_hour is not None
        else "no time recorded",
    ]
    if info.agent_cost is not None:
        per = f", ${info.cost_per_keep:.2f} per kept improvement" if info.cost_per_keep is not None else ""
        facts.append(f"agent cost ${info.agent_cost:.2f}{per}")
    if info.noise is not None:
        facts.append(
            f"noise floor: the baseline trained {len(info.noise.scores)} times scores {score(info.noise.mean)} ± "
            f"{info.noise.std:.4f} (std); {info.rule_line()}"
        )
    if info.gap is not None:
        warning = " — the holdout did not improve: the keeps may fit the selection split"
        facts.append(
            f"selection gain {info.gain('selection'):+.4f}, holdout gain {info.gain('holdout'):+.4f}, gap "
            f"{info.gap:+.4f}" + (warning if info.holdout_disagrees else "")
        )
    if info.larger is not None and not info.larger.ok:
        facts.append(f"the larger baseline `{info.larger.model}` ended in {info.larger.status}")
    return facts


def report_blocks(info: RunSummary, image: str = "progress.png", hub: dict[int, dict] | None = None) -> list[tuple]:
    hub = hub or {}
    records = info.records
    kept_after = [r for r in info.experiments if r.status == "keep"]
    cfg = info.config
    blocks: list[tuple] = [
        ("h1", f"Run {info.tag} · {info.recipe_name}"),
        (
            "p",
            f"Model `{cfg.model}` on `{cfg.data}`, agent `{cfg.agent}`, {cfg.budget:.0f} s of training per "
            f"experiment, metric `{info.metric}` ({info.direction}). Git branch `{cfg.branch}`; started "
            f"{cfg.started_at}.",
        ),
        ("h2", "Summary"),
        (
            "table",
            ["", "model", "params", "selection", "holdout", "selection gain", "holdout gain"],
            _summary_rows(info),
        ),
        ("ul", _facts(info)),
        ("img", image, f"progress of run {info.tag}"),
    ]
    blocks.append(("h2", "Kept experiments"))
    if not kept_after:
        blocks.append(("p", "No experiment beat the baseline."))
    previous = info.baseline
    for r in kept_after:
        gain = signed_gain(r.selection, previous.selection, info.direction)
        line = (
            f"selection **{score(r.selection)}** ({_signed(gain)} over {previous.experiment if previous else '–'}), "
            f"holdout {score(r.holdout)}; trained {r.train_seconds:.0f} s; git commit `{r.commit[:12]}`"
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
            [
                r.experiment,
                r.status,
                score(r.selection),
                score(r.holdout),
                f"{r.train_seconds:.0f}",
                r.commit[:8],
                what,
            ]
        )
    blocks.append(
        ("table", ["experiment", "status", "selection", "holdout", "train s", "commit", "description"], rows)
    )
    return blocks


def _is_number(cell: str) -> bool:
    return bool(re.fullmatch(r"\**[+-]?[\d.]+[KMB]?\**( \([+-][\d.]+%\))?|–|\?|", cell.replace("best ", "")))


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


def _highlight(code: str, language: str, attrs: str) -> str:
    return _diff_html(code) if language == "diff" else ""  # "": markdown-it escapes the code as it is


def to_html(markdown: str, title: str) -> str:
    """The markdown report as one self-contained html page (CommonMark with tables, by markdown-it-py)."""
    from markdown_it import MarkdownIt

    body = MarkdownIt("commonmark", {"highlight": _highlight}).enable("table").render(markdown)
    head = f"<meta charset='utf-8'><title>{html.escape(title)}</title><style>{STYLE}</style>"
    return f"<!doctype html><html><head>{head}</head><body>\n{body}</body></html>\n"


def _hub_entries(folder: Path) -> dict[int, dict]:
    from hf_autoresearch.hub import pushed

    return pushed(folder)


def write_report(folder: Path) -> dict[str, Path]:
    """Write progress.png, report.md and report.html into the run folder; their paths."""
    info = RunSummary.load(folder)
    folder = info.folder
    paths = {"png": folder / "progress.png", "md": folder / "report.md", "html": folder / "report.html"}
    plot_progress(info, paths["png"])
    blocks = report_blocks(info, paths["png"].name, _hub_entries(folder))
    markdown = to_markdown(blocks)
    paths["md"].write_text(markdown)
    paths["html"].write_text(to_html(markdown, f"hf-autoresearch run {info.tag}"))
    return paths
