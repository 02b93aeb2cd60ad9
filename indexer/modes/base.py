"""What a mode is: one codec's budget knobs, its candidate stage, how it is built, opened and
kept for new writes, its cost and its sweep points.

A mode module defines a `Mode` subclass and registers an instance in
`indexer.modes`; budgets, plans, the build, opening a version (with its shape
checks), the write segment, the executor, describe and the sweep all iterate
that registry.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import numpy as np

from vecdial.indexer.modes.knobs import BudgetModel, FunnelStage
from vecdial.indexer.stores.alive import AliveRows
from vecdial.indexer.vectors import Rows

if TYPE_CHECKING:
    from vecdial.indexer.codecs.partition import Partitions
    from vecdial.indexer.codecs.rotation import Rotation
    from vecdial.indexer.stores.blocks import BlockStore


@dataclass(frozen=True)
class ModeInfo:
    """One budget mode: knob -> (min, max), and bytes of index data a candidate scan reads per vector."""

    mode: str
    knobs: dict[str, tuple[int | float, int | float]] = field(default_factory=dict)
    bytes_per_vector: int | None = None
    note: str = ""


class VersionView(Protocol):
    """What modes see of a version (`indexer/disk/version.py` `Version`, which opens the modes'
    stores and so cannot be imported here): its shape, its codecs and each mode's store."""

    @property
    def dim(self) -> int: ...

    @property
    def size(self) -> int: ...

    @property
    def rotation(self) -> Rotation: ...

    @property
    def dense(self) -> BlockStore: ...

    @property
    def partitions(self) -> Partitions | None: ...

    def store(self, mode: str) -> Any:
        """That mode's store (None if the version has none)."""


class Stores(Protocol):
    """The stores of one part: a version's (memory-mapped) or the write segment's (in RAM)."""

    size: int

    def store(self, mode: str) -> Any:
        """That mode's store over this part's rows (None if the part has none)."""


class Builder(Protocol):
    """Writes one mode's files during a build, fed every input batch once, in order."""

    def add(self, start: int, unit: np.ndarray) -> None:
        """Rows start.. of the input as (b, dim) float32 unit vectors."""

    def finish(self, vectors: Rows, show_progress: bool) -> dict[str, Any]:
        """Flush the files; return what the manifest records for this mode. vectors: all (N, dim)."""

    def codec_arrays(self) -> dict[str, np.ndarray]:
        """Learned parameters kept in the version's codecs.npz."""


class SegmentRows(Protocol):
    """One mode's codes for rows written since a version was built, append-only."""

    def add(self, start: int, unit: np.ndarray) -> None:
        """Encode rows start.. (b, dim) unit float32 as the version's build would."""

    def store(self, n: int) -> Any:
        """The first n rows as this mode's store; later adds never change it."""


@dataclass(frozen=True)
class Part:
    """Rows one search scans with the same store code: `stores`, minus the dead rows in `alive`;
    with `ranges` (starts, stops: (nq, P) int64), only each query's probed cells' rows; with
    `ef`, found by a graph walk keeping that many candidates (a version's rows only)."""

    stores: Stores
    alive: AliveRows | None = None
    ranges: tuple[np.ndarray, np.ndarray] | None = None
    ef: int = 0

    @property
    def live(self) -> int:
        return self.stores.size if self.alive is None else self.alive.count


class Query:
    """The queries of one search, with every form a stage needs made once and shared by all parts.

    unit: (nq, dim) float32 unit vectors; `version` supplies the codecs (rotation,
    binary thresholds, sparse encoder) every part was encoded with.
    """

    def __init__(self, unit: np.ndarray, version: VersionView):
        self.unit = unit
        self.version = version
        self._forms: dict[Any, Any] = {}

    def form(self, key: Any, make: Any) -> Any:
        """`make()` the first time `key` is asked for, then the same value."""
        value = self._forms.get(key)
        if value is None:
            value = self._forms[key] = make()
        return value

    @property
    def rotated(self) -> np.ndarray:
        return self.form("rotated", lambda: self.version.rotation.apply(self.unit))


class Mode:
    """A budget mode. Subclasses set the class attributes and override what they serve."""

    name: ClassVar[str]
    budget: ClassVar[type[BudgetModel]]
    knob: ClassVar[str | None] = None  # the size knob of its funnel stages ("dim", "active") or None
    size_label: ClassVar[str | None] = None  # how explain names a stage's size (default: the knob)
    refine: ClassVar[str | None] = None  # the integer knob a sweep bisects between points that bracket a recall target
    rescores: ClassVar[bool] = False  # True: a funnel stage after the first may be this mode (see `rescore`)

    def funnel(self, budget: BudgetModel) -> list[FunnelStage]:
        """The stages a budget of this mode is; a last stage with `keep` is rescored at full dim."""
        raise NotImplementedError

    def max_size(self, version: VersionView) -> int:
        """The largest stage size this version serves; BudgetError if it cannot serve the mode."""
        raise NotImplementedError

    def default_size(self, version: VersionView) -> int:
        return self.max_size(version)

    def refine_knob(self, budget: BudgetModel) -> str | None:
        """The integer knob a sweep bisects for this budget (the mode's `refine`)."""
        return self.refine

    def ef_for(self, budget: BudgetModel, version: VersionView) -> int:
        """The graph breadth (`ef`) a budget of this mode asks for; 0: the mode walks no graph."""
        return 0

    def candidates(self, part: Part, query: Query, size: int, keep: int) -> tuple[np.ndarray, np.ndarray, int]:
        """The best `keep` live rows of `part` -> rows (nq, keep) int64 (-1 pad), scores (nq, keep)
        float32 (-inf pad), bytes of index data read per query."""
        raise NotImplementedError

    def rescore(self, part: Part, query: Query, rows: np.ndarray, size: int, keep: int) -> tuple[np.ndarray, np.ndarray, int]:
        """A later funnel stage (modes with `rescores` only): candidate rows (nq, c) of `part` (-1 pad)
        scored at `size`; the best `keep` per query -> rows, scores, bytes of index data read per query."""
        raise NotImplementedError

    def builder(self, sample: np.ndarray, n: int, out: Path, settings: Any, cells: Any = None) -> Builder | None:
        """Fit on `sample` (s, dim) unit vectors and start this mode's files for n rows in `out`;
        None if the mode stores nothing or the settings leave it out. cells: the version's
        Partitions (rows come cell after cell), or None."""
        return None

    def recorded_settings(self, params: dict[str, Any] | None) -> dict[str, Any]:
        """The build settings (BuildSettings knobs) this mode's manifest entry `params` records,
        for a reindex to start from; params None: the version was built without this mode."""
        return {}

    def open(self, path: Path, params: dict[str, Any], manifest: Any, codecs: dict[str, np.ndarray]) -> Any:
        """This mode's store in a version directory, checked against the manifest (CorruptIndex)."""
        raise NotImplementedError

    def segment_rows(self, version: VersionView) -> SegmentRows | None:
        """Where writes made since `version` keep this mode's codes (None: the mode needs none)."""
        return None

    def describe(self, version: VersionView) -> ModeInfo | None:
        return None

    def sweep_budgets(self, version: VersionView) -> list[str]:
        return []

    def warm_budgets(self, version: VersionView) -> list[str]:
        """Budgets whose searches, one of each, load (on a fresh install: compile) every kernel this
        mode runs on `version`; by default its first sweep point. [] if it serves nothing here."""
        return self.sweep_budgets(version)[:1]
