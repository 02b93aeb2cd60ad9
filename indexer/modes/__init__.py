"""The registry of budget modes. A new mode is one module beside these and one line here.

Budgets (their union and string form), plans, the executor, describe and the
sweep all iterate `MODES`; nothing else is keyed on mode names.
"""

from typing import Any

from vecdial.indexer.modes.base import Mode, ModeInfo, Part, Query, VersionView
from vecdial.indexer.modes.binary import BINARY
from vecdial.indexer.modes.dense import DENSE, EXACT
from vecdial.indexer.modes.rabitq import RABITQ
from vecdial.indexer.modes.settings import BuildSettings, RecordedBuild
from vecdial.indexer.modes.sparse import SPARSE

MODES: dict[str, Mode] = {mode.name: mode for mode in (EXACT, DENSE, BINARY, RABITQ, SPARSE)}

# Modes that find candidates, and so may head a funnel stage (`Mode.candidates` overridden).
STAGE_KINDS: tuple[str, ...] = tuple(name for name, mode in MODES.items() if type(mode).candidates is not Mode.candidates)
# The mode that rescores a funnel's survivors: every later stage, and the full-size last one (`full`).
RESCORER: str = next(name for name in STAGE_KINDS if MODES[name].rescores)


def warm_budgets(version: VersionView) -> list[str]:
    """One budget per kernel every registered mode runs on `version` (see `Mode.warm_budgets`)."""
    return [budget for mode in MODES.values() for budget in mode.warm_budgets(version)]


def build_settings_of(manifest: RecordedBuild) -> BuildSettings:
    """The settings a version was built with, as far as its manifest records them (what a reindex
    changes from): each registered mode reads its own entry (`Mode.recorded_settings`).
    sample_size, batch_size and seed are not recorded: defaults."""
    recorded: dict[str, Any] = {}
    for name, mode in MODES.items():
        recorded.update(mode.recorded_settings(manifest.codecs.get(name)))
    return BuildSettings(
        **recorded,
        lexical=manifest.lexical is not None or not manifest.has_texts,
        partitions=manifest.partitions or None,  # none recorded: let the new size decide
    )


__all__ = ["MODES", "RESCORER", "STAGE_KINDS", "build_settings_of", "Mode", "ModeInfo", "Part", "Query", "VersionView", "warm_budgets"]
