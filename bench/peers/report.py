"""The peers bench's output: the per-setting table, the summary at recall targets, the plot."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

TARGETS = (0.90, 0.95, 0.99)


@dataclass
class Row:
    system: str  # peer key
    name: str
    setting: str
    build_s: float
    single_qps: float | None
    p99_ms: float | None
    timed: int
    batch_qps: float | None
    recall: float
    recall_real: float | None = None  # 1M set: recall over the true neighbours that are real rows
    ram_heap: float | None = None  # resident bytes per vector
    ram_mapped: float | None = None

    @property
    def ram(self) -> float | None:
        return None if self.ram_heap is None else self.ram_heap + (self.ram_mapped or 0.0)


def _f(value: float | None, spec: str = ",.0f") -> str:
    return "-" if value is None else format(value, spec)


def _ram(row: Row) -> str:
    if row.ram_heap is None:
        return "-"
    return f"{row.ram_heap:,.0f}" + (f" + {row.ram_mapped:,.0f} mapped" if row.system == "vecdial" else "")


def flat_of(rows: list[Row]) -> Row | None:
    return next((r for r in rows if r.system == "flat"), None)


def _ratio(value: float | None, base: float | None) -> str:
    return "-" if value is None or not base else f"{value / base:.2f}"


def settings_table(rows: list[Row], title: str, caption: str) -> Table:
    flat = flat_of(rows)
    real = any(r.recall_real is not None for r in rows)
    table = Table(title=title, caption=caption)
    columns = ["system", "setting", "build s", "1-query QPS", "x flat", "p99 ms", "batch QPS", "x flat", "R@10"]
    columns += ["R@10 real"] if real else []
    columns += ["RAM B/vec"]
    for column in columns:
        table.add_column(column, justify="left" if column in ("system", "setting") else "right")
    for r in rows:
        cells = [
            r.name,
            r.setting,
            f"{r.build_s:,.1f}",
            _f(r.single_qps) + ("" if not r.timed or r.timed == rows[0].timed else f" ({r.timed}q)"),
            _ratio(r.single_qps, flat.single_qps if flat else None),
            _f(r.p99_ms, ".2f"),
            _f(r.batch_qps),
            _ratio(r.batch_qps, flat.batch_qps if flat else None),
            f"{r.recall:.3f}",
        ]
        cells += [_f(r.recall_real, ".3f")] if real else []
        cells += [_ram(r)]
        table.add_row(*cells)
    return table


def fastest(rows: list[Row], system: str, target: float, mode: str) -> Row | None:
    """The setting of `system` with R@10 >= target and the highest QPS in `mode` ('single' | 'batch')."""
    attr = f"{mode}_qps"
    meets = [r for r in rows if r.system == system and r.recall >= target and getattr(r, attr) is not None]
    return max(meets, key=lambda r: getattr(r, attr), default=None)


def summary_table(rows: list[Row]) -> Table:
    flat = flat_of(rows)
    table = Table(title="Fastest setting per system at each recall@10 target (ratios: over IndexFlatIP in this run)")
    for column in ("R@10 >=", "system", "1 at a time: setting", "QPS", "x flat", "R@10", "RAM B/vec", "batch: setting", "QPS", "x flat"):
        table.add_column(column, justify="left" if "setting" in column or column == "system" else "right")
    systems = list(dict.fromkeys(r.system for r in rows))
    names = {r.system: r.name for r in rows}
    for target in TARGETS:
        for system in systems:
            one, batch = fastest(rows, system, target, "single"), fastest(rows, system, target, "batch")
            if one is None and batch is None:
                table.add_row(f"{target:.2f}", names[system], "not reached", "-", "-", "-", "-", "not reached", "-", "-")
                continue
            table.add_row(
                f"{target:.2f}",
                names[system],
                one.setting if one else "not reached",
                _f(one.single_qps if one else None),
                _ratio(one.single_qps if one else None, flat.single_qps if flat else None),
                f"{one.recall:.3f}" if one else "-",
                _f(one.ram if one else None),
                batch.setting if batch else "not reached",
                _f(batch.batch_qps if batch else None),
                _ratio(batch.batch_qps if batch else None, flat.batch_qps if flat else None),
            )
        table.add_section()
    return table


def dominance_lines(rows: list[Row]) -> list[str]:
    """Per target and mode: is any peer setting at the target both faster and smaller (resident RAM) than vecdial's fastest?"""
    lines = []
    for target in TARGETS:
        for mode, label in (("single", "one at a time"), ("batch", "batch")):
            ours = fastest(rows, "vecdial", target, mode)
            if ours is None:
                lines.append(f"R@10 >= {target:.2f}, {label}: vecdial does not reach the target with the budgets run.")
                continue
            speed = getattr(ours, f"{mode}_qps")
            head = f"R@10 >= {target:.2f}, {label}: vecdial's fastest is {ours.setting} ({speed:,.0f} QPS, {_f(ours.ram)} B/vec resident)"
            if ours.ram is None:
                lines.append(head + "; RAM not measured, so 'smaller' cannot be judged.")
                continue
            better = [
                r
                for r in rows
                if r.system not in ("vecdial", "flat")
                and r.recall >= target
                and r.ram is not None
                and getattr(r, f"{mode}_qps") is not None
                and getattr(r, f"{mode}_qps") > speed
                and r.ram < ours.ram
            ]
            if better:
                best = max(better, key=lambda r: getattr(r, f"{mode}_qps"))
                systems = sorted({r.name for r in better})
                lines.append(
                    head + f"; YES, faster and smaller: {', '.join(systems)} "
                    f"(e.g. {best.name} {best.setting}: {getattr(best, f'{mode}_qps'):,.0f} QPS, {best.ram:,.0f} B/vec)."
                )
            else:
                lines.append(head + "; no peer setting is both faster and smaller.")
            lighter = [
                r
                for r in rows
                if r.system not in ("vecdial", "flat")
                and r.recall >= target
                and r.ram is not None
                and getattr(r, f"{mode}_qps") is not None
                and getattr(r, f"{mode}_qps") > speed
                and r.ram < ours.ram_heap
            ]
            lines.append(
                f"    counting only vecdial's heap ({ours.ram_heap:,.0f} B/vec; its mapped pages are shared, evictable page cache): "
                + (
                    f"faster and smaller: {', '.join(sorted({r.name for r in lighter}))}."
                    if lighter
                    else "no peer setting is both faster and smaller."
                )
            )
    return lines


def print_report(rows: list[Row], title: str, caption: str, notes: list[str]) -> None:
    console = Console(width=240)
    console.print(settings_table(rows, title, caption))
    console.print(summary_table(rows))
    for line in dominance_lines(rows):
        console.print(line, highlight=False)
    for note in notes:
        console.print(f"note: {note}", highlight=False)


def pareto(points: list[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point beats on both coordinates (higher is better), by recall."""
    order = sorted(range(len(points)), key=lambda i: (-points[i][0], -points[i][1]))
    front, best = [], -1.0
    for i in order:
        if points[i][1] > best:
            front.append(i)
            best = points[i][1]
    return sorted(front, key=lambda i: points[i][0])


def plot(rows: list[Row], path: Path, title: str) -> Path | None:
    """Recall@10 vs one-query QPS (log) per system, the Pareto front marked; None if matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    timed = [r for r in rows if r.single_qps]
    fig, ax = plt.subplots(figsize=(10, 6.5), dpi=120)
    for system in dict.fromkeys(r.system for r in timed):  # every setting a dot; the system's own front a line
        mine = [r for r in timed if r.system == system]
        own = [mine[i] for i in pareto([(r.recall, r.single_qps) for r in mine])]
        style = dict(linewidth=2.5, markersize=7) if system == "vecdial" else dict(linewidth=1.2, markersize=5)
        (line,) = ax.plot([r.recall for r in own], [r.single_qps for r in own], marker="o", label=mine[0].name, **style)
        ax.scatter([r.recall for r in mine], [r.single_qps for r in mine], s=10, color=line.get_color(), alpha=0.45)
    front = [timed[i] for i in pareto([(r.recall, r.single_qps) for r in timed])]
    ax.plot([r.recall for r in front], [r.single_qps for r in front], "k--", linewidth=1, drawstyle="steps-pre", zorder=0)
    ax.scatter(
        [r.recall for r in front],
        [r.single_qps for r in front],
        s=140,
        facecolors="none",
        edgecolors="black",
        linewidths=1.4,
        label="Pareto front",
        zorder=5,
    )
    ax.set_yscale("log")
    ax.set_xlabel("recall@10 (vs exact IndexFlatIP)")
    ax.set_ylabel("one-query-at-a-time QPS (1 thread, log scale)")
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path)
    plt.close(fig)
    return path
