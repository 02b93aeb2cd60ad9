"""What a version offers: the budget modes it serves, their knob ranges and their cost.

The HTTP API, the CLI and Python describe collections from this, so a client can
pick a budget without knowing the storage layout.
"""

from __future__ import annotations

from vecdial.indexer.modes import MODES, RESCORER, STAGE_KINDS, ModeInfo
from vecdial.indexer.modes.dense import dense_costs

__all__ = ["ModeInfo", "dense_costs", "describe_modes"]


def describe_modes(version, swept: bool) -> list[ModeInfo]:
    """Every registered mode this version serves, then funnel, and auto once it is swept."""
    modes = [info for mode in MODES.values() if (info := mode.describe(version)) is not None]
    served = {info.mode: info for info in modes}
    # A funnel's cost starts with its head's: shown is the first registered head this version serves.
    heads = [served[kind] for kind in STAGE_KINDS if kind != RESCORER and kind in served]
    cost = heads[0].bytes_per_vector if heads else None
    note = f"{' or '.join(info.mode for info in heads)} shortlist, then {RESCORER} rescoring stages"
    modes.append(ModeInfo("funnel", {"stages": (1, 8)}, cost, note))
    if swept:
        knobs: dict[str, tuple[int | float, int | float]] = {
            "target_recall": (0, 1),
            "max_latency_ms": (0, 60_000),
            "max_bytes_per_vector": (0, version.dense.bytes_per_vector(version.dim)),
        }
        modes.append(
            ModeInfo("auto", knobs, None, "the fastest swept budget whose recall@10 lower bound meets the target within the limits")
        )
    return modes
