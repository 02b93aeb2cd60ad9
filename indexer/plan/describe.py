"""What a version offers: the budget modes it serves, their knob ranges and their cost.

The HTTP API and the CLI describe collections from this, so a client can pick a
budget without knowing the storage layout.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from vecdial.indexer.plan.budget import MAX_RESCORE
from vecdial.indexer.eval.sweep import load_sweep
from vecdial.indexer.disk.version import Version


@dataclass(frozen=True)
class ModeInfo:
    """One budget mode: knob -> (min, max), and bytes of index data a candidate scan reads per vector."""

    mode: str
    knobs: dict[str, tuple[int | float, int | float]] = field(default_factory=dict)
    bytes_per_vector: int | None = None
    note: str = ""


def describe_modes(version: Version) -> list[ModeInfo]:
    dense = version.dense
    full = dense.bytes_per_vector(version.dim)
    modes = [
        ModeInfo("exact", {}, full, "every dim of every vector: the reference"),
        ModeInfo("dense", {"dim": (1, version.dim)}, dense.bytes_per_vector(min(64, version.dim)), f"bytes follow dim: {dense_costs(version)}"),
        ModeInfo(
            "binary",
            {"rescore": (0, MAX_RESCORE)},
            version.binary.code_bytes,
            f"Hamming shortlist of k x rescore, each candidate rescored reads {full} bytes",
        ),
    ]
    if version.sparse is not None:
        max_active = int(version.sparse.max_active)
        modes.append(
            ModeInfo(
                "sparse",
                {"active": (1, max_active), "rescore": (0, MAX_RESCORE)},
                int(version.sparse.resident_bytes // max(version.size, 1)),
                "inverted index: postings of the query's top `active` units; bytes are the index's per vector",
            )
        )
    modes.append(ModeInfo("funnel", {"stages": (1, 8)}, version.binary.code_bytes, "binary or sparse shortlist, then dense rescoring stages"))
    if load_sweep(version):
        modes.append(ModeInfo("auto", {"target_recall": (0, 1)}, None, "the fastest swept budget whose recall@10 meets the target"))
    return modes


def dense_costs(version: Version) -> dict[int, int]:
    """Bytes a dense scan reads per vector at each block boundary dim."""
    block = version.dense.block
    dims = sorted({*range(block, version.dim + 1, block), version.dim})
    return {dim: version.dense.bytes_per_vector(dim) for dim in dims}

