"""Dense modes: `exact` and `dense:dim=D`, cosine over the first D rotated dims of the block store.

The dense mode owns the full vectors: rotated (PCA, or identity) and kept in
column blocks, so any prefix is served from one copy. It rescores every
funnel's survivors: a gather of the candidates' first D dims from the
(memory-mapped) blocks.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field

from vecdial.indexer.codecs.rotation import Rotation, fit_pca_rotation, identity_rotation
from vecdial.indexer.errors import CorruptIndex
from vecdial.indexer.modes.base import Mode, ModeInfo, Part, Query, VersionView
from vecdial.indexer.modes.knobs import BudgetModel, FunnelStage, probe_field
from vecdial.indexer.stores.blocks import (
    BLOCKS_FILE,
    NORMS_FILE,
    ROWS_FILE,
    BlockStore,
    prefix_sq_norms,
    row_major,
    split_blocks,
)
from vecdial.indexer.stores.rows import room_for
from vecdial.indexer.vectors import Rows

SWEEP_DIMS = (32, 64, 128, 256)


class ExactBudget(BudgetModel):
    """Every dim of every vector: the reference other budgets are measured against."""

    mode: Literal["exact"] = "exact"


class DenseBudget(BudgetModel):
    """Cosine over the first `dim` (rotated) dims: cost and bytes read follow `dim`."""

    mode: Literal["dense"] = "dense"
    dim: int = Field(gt=0, description="Leading dims to score with.")
    probe: int | float | None = probe_field()


class Dense(Mode):
    name = "dense"
    budget = DenseBudget
    knob = "dim"
    refine = "dim"
    rescores = True

    def funnel(self, budget: BudgetModel) -> list[FunnelStage]:
        assert isinstance(budget, DenseBudget)  # the registry parses this mode's budgets as its `budget`
        return [FunnelStage(kind="dense", dim=budget.dim)]

    def max_size(self, version: VersionView) -> int:
        return version.dim

    def candidates(self, part: Part, query: Query, size: int, keep: int) -> tuple[np.ndarray, np.ndarray, int]:
        dense = part.stores.store("dense").blocks
        if part.ranges is not None:
            return dense.scan_ranges(query.rotated, size, keep, *part.ranges, part.alive)
        return dense.scan(query.rotated, size, keep, part.alive)

    def rescore(self, part: Part, query: Query, rows: np.ndarray, size: int, keep: int) -> tuple[np.ndarray, np.ndarray, int]:
        """Candidates rows (nq, c) (-1 pad) rescored at `size` dims; the best `keep` per query."""
        dense = part.stores.store("dense").blocks
        candidates = int(np.count_nonzero(rows >= 0)) // max(len(rows), 1)
        found, scores = dense.best_rows(query.rotated, rows, size, min(keep, rows.shape[1]))
        return found, scores, candidates * dense.bytes_per_vector(size)

    def describe(self, version: VersionView) -> ModeInfo:
        costs = dense_costs(version)
        return ModeInfo(
            "dense", {"dim": (1, version.dim)}, version.dense.bytes_per_vector(min(64, version.dim)), f"bytes follow dim: {costs}"
        )

    def warm_budgets(self, version: VersionView) -> list[str]:
        dim = min(32, version.dim)
        return [f"dense:dim={dim}"] + ([f"dense:dim={dim},probe=1"] if version.partitions is not None else [])

    def sweep_budgets(self, version: VersionView) -> list[str]:
        probed = [f"dense:dim={d},probe=0.2" for d in SWEEP_DIMS[1:3] if d < version.dim] if version.partitions is not None else []
        return [f"dense:dim={d}" for d in SWEEP_DIMS if d < version.dim] + probed

    def builder(self, sample: np.ndarray, n: int, out: Path, settings: Any, cells: Any = None) -> DenseBuilder:
        rotation = fit_pca_rotation(sample) if settings.rotation == "pca" else identity_rotation(sample.shape[1])
        return DenseBuilder(rotation, n, out, settings)

    def recorded_settings(self, params: dict[str, Any] | None) -> dict[str, Any]:
        params = params or {}
        return {"rotation": params.get("rotation", "pca"), "block": params.get("block", 32), "dtype": params.get("dtype", "float32")}

    def open(self, path: Path, params: dict[str, Any], manifest: Any, codecs: dict[str, np.ndarray]) -> DenseIndex:
        blocks = BlockStore.open(path, manifest.dim, rows=bool(params.get("rows")))  # versions before the row copy have none
        n_blocks, block = -(-manifest.dim // params["block"]), params["block"]
        if blocks.blocks.shape != (n_blocks, manifest.count, block) or blocks.prefix_sq.shape != (n_blocks, manifest.count):
            raise CorruptIndex(
                f"{path}: dense blocks {blocks.blocks.shape} / norms {blocks.prefix_sq.shape}, "
                f"expected {(n_blocks, manifest.count, block)} / {(n_blocks, manifest.count)}; rebuild the index"
            )
        if blocks.rows is not None and blocks.rows.shape != (manifest.count, n_blocks, block):
            raise CorruptIndex(
                f"{path}: file {ROWS_FILE} has shape {blocks.rows.shape}, expected {(manifest.count, n_blocks, block)}; rebuild the index"
            )
        return DenseIndex(Rotation.from_arrays(codecs), blocks)

    def segment_rows(self, version: VersionView) -> DenseRows:
        return DenseRows(version.store("dense"))


class Exact(Mode):
    name = "exact"
    budget = ExactBudget

    def funnel(self, budget: BudgetModel) -> list[FunnelStage]:
        return [FunnelStage(kind="dense")]

    def describe(self, version: VersionView) -> ModeInfo:
        return ModeInfo("exact", {}, version.dense.bytes_per_vector(version.dim), "every dim of every vector: the reference")

    def sweep_budgets(self, version: VersionView) -> list[str]:
        return ["exact"]


def dense_costs(version: VersionView) -> dict[int, int]:
    """Bytes a dense scan reads per vector at each block boundary dim."""
    block = version.dense.block
    dims = sorted({*range(block, version.dim + 1, block), version.dim})
    return {dim: version.dense.bytes_per_vector(dim) for dim in dims}


@dataclass(frozen=True)
class DenseIndex:
    """rotation: the orthonormal basis rows are stored in; blocks: the rotated rows in column blocks."""

    rotation: Rotation
    blocks: BlockStore


class DenseBuilder:
    """Rotates every input batch and writes it into column blocks and prefix norms."""

    def __init__(self, rotation: Rotation, n: int, out: Path, settings: Any):
        self.rotation, self.block = rotation, settings.block
        self.params = {"rotation": settings.rotation, "block": settings.block, "dtype": settings.dtype}
        shape = (-(-rotation.dim // settings.block), n, settings.block)
        self._blocks = np.lib.format.open_memmap(out / BLOCKS_FILE, mode="w+", dtype=settings.dtype, shape=shape)
        self._norms = np.lib.format.open_memmap(out / NORMS_FILE, mode="w+", dtype=np.float32, shape=shape[:2])
        # The same rows in row order, which rescoring reads (stores/blocks.py: one or two pages a
        # candidate when cold, not one per block); float32 stores only, as the compiled loops are.
        self._rows = None
        if np.dtype(settings.dtype) == np.float32:
            self._rows = np.lib.format.open_memmap(out / ROWS_FILE, mode="w+", dtype=np.float32, shape=(n, shape[0], shape[2]))
            self.params["rows"] = True

    def add(self, start: int, unit: np.ndarray) -> None:
        rotated = self.rotation.apply(unit)
        self.put(start, split_blocks(rotated, self.block), prefix_sq_norms(rotated, self.block))

    def put(self, start: int, blocks: np.ndarray, norms: np.ndarray) -> None:
        """Rows start.. as encoded (here or in a shard): blocks (n_blocks, b, block), norms (n_blocks, b)."""
        stop = start + blocks.shape[1]
        self._blocks[:, start:stop, :] = blocks
        self._norms[:, start:stop] = norms
        if self._rows is not None:
            self._rows[start:stop] = row_major(blocks.astype(np.float32, copy=False))

    def finish(self, vectors: Rows, show_progress: bool) -> dict[str, Any]:
        for array in (self._blocks, self._norms, self._rows):
            if array is not None:
                array.flush()
        del self._blocks, self._norms, self._rows  # unmapped before the directory is fsynced and renamed
        return self.params

    def codec_arrays(self) -> dict[str, np.ndarray]:
        return self.rotation.to_arrays()


class DenseRows:
    """Rows written since a version was built, in its rotation, blocks and dtype.

    Block-major arrays grow by copying, so a store made for the first n rows
    keeps reading the arrays it was made from.
    """

    def __init__(self, index: DenseIndex):
        self.index = index
        blocks = index.blocks
        self._blocks = np.zeros((blocks.blocks.shape[0], 0, blocks.block), dtype=blocks.blocks.dtype)
        self._norms = np.zeros((blocks.blocks.shape[0], 0), dtype=np.float32)

    def add(self, start: int, unit: np.ndarray) -> None:
        stop = start + len(unit)
        self._blocks = room_for(self._blocks, start, stop, axis=1)
        self._norms = room_for(self._norms, start, stop, axis=1)
        rotated = self.index.rotation.apply(unit)
        block = self.index.blocks.block
        self._blocks[:, start:stop, :] = split_blocks(rotated, block)
        self._norms[:, start:stop] = prefix_sq_norms(rotated, block)

    def store(self, n: int) -> DenseIndex:
        return DenseIndex(self.index.rotation, BlockStore(self._blocks[:, :n], self._norms[:, :n], self.index.blocks.dim))


EXACT = Exact()
DENSE = Dense()
