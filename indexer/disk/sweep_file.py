"""The sweep stored beside a version (`sweep.json`): derived data, not among its checksummed files."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from vecdial.indexer.disk.atomic import write_text_atomic
from vecdial.indexer.disk.layout import partial_sweep_file, sweep_file
from vecdial.indexer.errors import CorruptIndex
from vecdial.indexer.plan.calibration import SweepPoint
from vecdial.indexer.plan.per_query import QueryBins


def write_sweep(version_dir: Path, points: list[SweepPoint], queries: str, bins: QueryBins | None = None) -> Path:
    """bins: the difficulty bins the points' per-bin recalls are over (per-query `auto`), if any."""
    path = sweep_file(version_dir)
    body: dict = {"queries": queries, "points": [asdict(p) for p in points]}
    if bins is not None:
        body["bins"] = asdict(bins)
    write_text_atomic(path, json.dumps(body, indent=2))
    return path


def read_sweep(version_dir: Path) -> tuple[tuple[SweepPoint, ...], str] | None:
    """(points, what the queries were) or None if the version was never swept."""
    path = sweep_file(version_dir)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return tuple(SweepPoint(**p) for p in raw["points"]), str(raw.get("queries", "unknown"))
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError) as exc:
        raise CorruptIndex(f"{path} is not a readable sweep ({exc}): run `vecdial sweep` again") from None


def read_bins(version_dir: Path) -> QueryBins | None:
    """The difficulty bins of the version's sweep; None if never swept, or swept before per-query `auto`."""
    try:
        raw = json.loads(sweep_file(version_dir).read_text(encoding="utf-8")).get("bins")
        return None if raw is None else QueryBins(**raw)
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise CorruptIndex(f"{sweep_file(version_dir)} is not a readable sweep ({exc}): run `vecdial sweep` again") from None


def write_partial(version_dir: Path, key: str, points: list[SweepPoint]) -> None:
    """The points a running sweep has measured so far, for `read_partial` to resume from."""
    write_text_atomic(partial_sweep_file(version_dir), json.dumps({"key": key, "points": [asdict(p) for p in points]}))


def read_partial(version_dir: Path, key: str) -> list[SweepPoint]:
    """Points an interrupted sweep on the same queries (`key`) measured; [] if none or unreadable."""
    try:
        raw = json.loads(partial_sweep_file(version_dir).read_text(encoding="utf-8"))
        return [SweepPoint(**p) for p in raw["points"]] if raw.get("key") == key else []
    except (OSError, ValueError, KeyError, TypeError):
        return []


def remove_partial(version_dir: Path) -> None:
    partial_sweep_file(version_dir).unlink(missing_ok=True)
