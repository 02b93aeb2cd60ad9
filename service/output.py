"""Human-readable output for the command line (rich tables)."""

from __future__ import annotations

import json

from rich.console import Console
from rich.table import Table

from vecdial import EvalRow, Hits, SweepPoint


def _console() -> Console:
    """At least 120 columns, so tables stay readable when piped or in CI logs."""
    return Console(width=max(Console().width, 120))


def _fmt(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def print_eval_table(rows: list[EvalRow], title: str) -> None:
    table = Table(title=title)
    for column in ("budget", "recall@10", "recall@100", "nDCG@10", "MRR@10", "bytes read/vec", "batch QPS"):
        table.add_column(column, justify="left" if column == "budget" else "right", no_wrap=True)
    for row in rows:
        table.add_row(
            row.budget,
            _fmt(row.recall_at_10),
            _fmt(row.recall_at_100),
            _fmt(row.ndcg_at_10),
            _fmt(row.mrr_at_10),
            f"{row.bytes_read_per_vector:.1f}",
            f"{row.batch_qps:.0f}",
        )
    _console().print(table)


def print_sweep_table(points: list[SweepPoint], title: str) -> None:
    table = Table(title=title)
    for column in ("budget", "recall@10", "ms/query", "bytes read/vec", "Pareto"):
        table.add_column(column, justify="left" if column == "budget" else "right", no_wrap=True)
    for point in sorted(points, key=lambda p: p.ms_per_query):
        table.add_row(
            point.budget,
            f"{point.recall_at_10:.3f}",
            f"{point.ms_per_query:.3f}",
            f"{point.bytes_read_per_vector:.1f}",
            "*" if point.pareto else "",
        )
    _console().print(table)


def print_hits(result: Hits) -> None:
    """result: searched with_text=True."""
    console = _console()
    for q in range(len(result)):
        table = Table(title=f"query {q}" if len(result) > 1 else None)
        table.add_column("rank", justify="right")
        table.add_column("score", justify="right")
        table.add_column("id")
        table.add_column("text", overflow="ellipsis", no_wrap=True, max_width=70 if result.payloads is None else 40)
        if result.payloads is not None:
            table.add_column("payload", overflow="fold")
        for rank, hit in enumerate(result[q], start=1):
            row = [str(rank), f"{hit['score']:.4f}", str(hit["id"]), (hit.get("text") or "").replace("\n", " ")]
            table.add_row(*row, *([json.dumps(hit["payload"], ensure_ascii=False)] if result.payloads is not None else []))
        console.print(table)
    stages = ", ".join(f"{s.stage} -> {s.candidates} in {s.ms:.2f} ms, {s.bytes_read} B" for s in result.explain.stages)
    applied = result.explain.filter
    where = f"; filter: {applied['matched_rows']} items matched, applied by {applied['strategy']}" if applied else ""
    console.print(f"budget {result.explain.budget}: {stages}; total {result.explain.total_ms:.2f} ms{where}", soft_wrap=True)
