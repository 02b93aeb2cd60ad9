"""Sweep reports a person can keep and share: JSON, CSV, a PNG of recall against latency with
the Pareto front and the budgets `auto` would choose, and one self-contained HTML page.

The format follows the file's suffix (`.json`, `.csv`, `.png`, `.html`). PNG and HTML need
matplotlib (`pip install 'vecdial[report]'`), drawn headless; JSON and CSV need nothing.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from vecdial.indexer.disk.atomic import write_bytes_atomic, write_text_atomic
from vecdial.indexer.errors import BudgetError, InvalidInput
from vecdial.indexer.plan.calibration import SweepPoint, choose

# The recall targets a report shows auto's choice for.
TARGETS = (0.9, 0.95, 0.99)
FORMATS = (".json", ".csv", ".png", ".html")


def choices(points: Sequence[SweepPoint], targets: Sequence[float] = TARGETS) -> dict[float, SweepPoint | None]:
    """target -> the point `auto:target_recall=target` picks (None: no point meets it)."""
    out: dict[float, SweepPoint | None] = {}
    for target in targets:
        try:
            out[target] = choose(points, target)
        except BudgetError:
            out[target] = None
    return out


def to_json(points: Sequence[SweepPoint], source: str) -> str:
    chosen = {str(t): (p.budget if p else None) for t, p in choices(points).items()}
    return json.dumps({"queries": source, "auto": chosen, "points": [asdict(p) for p in points]}, indent=2)


def to_csv(points: Sequence[SweepPoint]) -> str:
    out = io.StringIO()
    fields = list(asdict(points[0])) if points else ["budget"]
    writer = csv.DictWriter(out, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for point in points:
        writer.writerow(asdict(point))
    return out.getvalue()


def to_png(points: Sequence[SweepPoint], title: str) -> bytes:
    """Recall@10 (with its lower bound) against one-query latency, log scale; the Pareto front
    joined; auto's choice for each target ringed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        from matplotlib import pyplot as plt
    except ImportError:
        raise InvalidInput("PNG and HTML reports need matplotlib: pip install 'vecdial[report]' (JSON and CSV need nothing)") from None
    figure, axes = plt.subplots(figsize=(9, 5.5), dpi=110)
    for point in points:
        low = point.recall_lower if point.recall_lower is not None else point.recall_at_10
        axes.errorbar(
            point.ms_per_query,
            point.recall_at_10,
            yerr=[[point.recall_at_10 - low], [0]],
            fmt="o",
            color="#1f77b4" if point.pareto else "#9aa5b1",
            capsize=2,
            markersize=4,
        )
        axes.annotate(
            point.budget,
            (point.ms_per_query, point.recall_at_10),
            fontsize=6,
            xytext=(3, 3),
            textcoords="offset points",
            color="#333" if point.pareto else "#888",
        )
    front = sorted((p for p in points if p.pareto), key=lambda p: p.ms_per_query)
    axes.plot([p.ms_per_query for p in front], [p.recall_at_10 for p in front], "-", color="#1f77b4", label="Pareto front")
    for target, chosen in choices(points).items():
        axes.axhline(target, color="#d62728", linewidth=0.5, linestyle=":")
        if chosen is not None:
            axes.plot(chosen.ms_per_query, chosen.recall_at_10, "o", markersize=12, markerfacecolor="none", markeredgecolor="#d62728")
            axes.annotate(
                f"auto:{target:g}",
                (chosen.ms_per_query, chosen.recall_at_10),
                fontsize=7,
                color="#d62728",
                xytext=(-10, -14),
                textcoords="offset points",
            )
    axes.set_xscale("log")
    axes.set_xlabel("ms per query, one at a time (log)")
    axes.set_ylabel("recall@10 (bar: 95% lower bound)")
    axes.set_title(title, fontsize=9)
    axes.grid(True, which="both", linewidth=0.3)
    axes.legend(loc="lower right", fontsize=8)
    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return buffer.getvalue()


def to_html(points: Sequence[SweepPoint], title: str, source: str) -> str:
    """One page, no outside assets: the plot inlined, the table, auto's choices."""
    image = base64.b64encode(to_png(points, title)).decode("ascii")
    gap = any(p.documents_recall is not None for p in points)
    rows = "".join(
        f"<tr class='{'front' if p.pareto else ''}'><td>{html.escape(p.budget)}</td><td>{p.recall_at_10:.3f}</td>"
        f"<td>{'' if p.recall_lower is None else f'{p.recall_lower:.3f}'}</td><td>{p.ms_per_query:.3f}</td>"
        f"<td>{p.bytes_read_per_vector:g}</td><td>{'yes' if p.pareto else ''}</td>"
        + (
            f"<td>{'' if p.documents_recall is None else f'{p.documents_recall:.3f} ({p.documents_recall - p.recall_at_10:+.3f})'}</td>"
            if gap
            else ""
        )
        + "</tr>"
        for p in sorted(points, key=lambda p: p.ms_per_query)
    )
    gap_head = "<th>recall with documents as queries (gap)</th>" if gap else ""
    chosen = "".join(
        f"<li><code>auto:target_recall={t:g}</code> &rarr; {html.escape(p.describe()) if p else 'no measured budget meets it'}</li>"
        for t, p in choices(points).items()
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font:14px system-ui,sans-serif;margin:2em;max-width:1000px}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right}}td:first-child{{text-align:left;font-family:monospace}}
tr.front td{{font-weight:600}}img{{max-width:100%}}</style></head>
<body><h1>{html.escape(title)}</h1><p>Calibrated on {html.escape(source)}. Recall@10 against exact search;
the lower bound is one-sided 95% over the calibration queries, and it is what <code>auto</code> trusts.</p>
<img alt="recall against latency" src="data:image/png;base64,{image}">
<h2>What auto chooses</h2><ul>{chosen}</ul>
<h2>Every budget measured</h2><table><tr><th>budget</th><th>recall@10</th><th>lower bound</th><th>ms/query</th><th>bytes read/vector</th><th>Pareto</th>{gap_head}</tr>{rows}</table>
</body></html>
"""


def write_report(points: Sequence[SweepPoint], path: Path | str, title: str, source: str) -> Path:
    """Write the report in the format `path`'s suffix names; returns the path."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise InvalidInput(f"report {path.name}: name a .json, .csv, .png or .html file")
    if not points:
        raise InvalidInput("nothing to report: the sweep measured no budget")
    if suffix == ".png":
        write_bytes_atomic(path, to_png(points, title))
        return path
    text = {".json": lambda: to_json(points, source), ".csv": lambda: to_csv(points), ".html": lambda: to_html(points, title, source)}[
        suffix
    ]()
    write_text_atomic(path, text)
    return path
