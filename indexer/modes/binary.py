"""Binary mode: `binary:rescore=R`, a Hamming shortlist of k x R sign-bit codes (FAISS),
rescored with the full float vectors (R=0: Hamming order alone)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field

from vecdial.indexer.codecs.binary import BinaryCodec, code_bytes_for, fit_binary
from vecdial.indexer.errors import CorruptIndex
from vecdial.indexer.modes.base import Mode, ModeInfo, Part, Query, VersionView
from vecdial.indexer.modes.knobs import MAX_RESCORE, BudgetModel, FunnelStage, probe_field
from vecdial.indexer.stores.binary import CODES_FILE, HNSW_FILE, BinaryStore, binary_scores, build_hnsw
from vecdial.indexer.stores.lazy import CodesIndex, Lazy
from vecdial.indexer.stores.rows import room_for
from vecdial.indexer.vectors import Rows

SWEEP_RESCORES = (0, 2, 5, 10, 20, 40, 100)
# (rescore, probe) points a partitioned version is also measured at.
SWEEP_PROBED = ((20, 0.05), (20, 0.1), (40, 0.2), (40, 0.3))


class BinaryBudget(BudgetModel):
    """Hamming shortlist of k x rescore codes, rescored with full vectors (0: no rescoring)."""

    mode: Literal["binary"] = "binary"
    rescore: int = Field(10, ge=0, le=MAX_RESCORE, description="Shortlist size as a multiple of k.")
    probe: int | float | None = probe_field()


class Binary(Mode):
    name = "binary"
    budget = BinaryBudget
    size_label = "bits"
    refine = "rescore"

    def funnel(self, budget: BudgetModel) -> list[FunnelStage]:
        assert isinstance(budget, BinaryBudget)  # the registry parses this mode's budgets as its `budget`
        return [FunnelStage(kind="binary", keep=budget.rescore or None)]

    def max_size(self, version: VersionView) -> int:
        return version.dim

    def candidates(self, part: Part, query: Query, size: int, keep: int) -> tuple[np.ndarray, np.ndarray, int]:
        codes = query.form("binary", lambda: query.version.store("binary").codec.encode(query.unit))
        store = part.stores.store("binary").store
        if part.ranges is not None:
            rows, scores, compared = store.search_ranges(codes, keep, *part.ranges, size, part.alive)
            return rows, scores, compared // len(rows) * store.code_bytes
        rows, distances = store.search(codes, keep, part.alive)
        return rows, binary_scores(distances, rows, size), part.stores.size * store.code_bytes

    def describe(self, version: VersionView) -> ModeInfo:
        full = version.dense.bytes_per_vector(version.dim)
        note = f"Hamming shortlist of k x rescore, each candidate rescored reads {full} bytes"
        return ModeInfo("binary", {"rescore": (0, MAX_RESCORE)}, version.store("binary").code_bytes, note)

    def warm_budgets(self, version: VersionView) -> list[str]:
        probed = ["binary:rescore=1,probe=1"] if version.partitions is not None else []
        return ["binary:rescore=1", "binary:rescore=0", *probed]

    def sweep_budgets(self, version: VersionView) -> list[str]:
        probed = [f"binary:rescore={r},probe={p}" for r, p in SWEEP_PROBED] if version.partitions is not None else []
        return [f"binary:rescore={r}" for r in SWEEP_RESCORES] + probed

    def builder(self, sample: np.ndarray, n: int, out: Path, settings: Any, cells: Any = None) -> BinaryBuilder:
        return BinaryBuilder(fit_binary(sample, center=settings.binary_center), n, out, settings)

    def recorded_settings(self, params: dict[str, Any] | None) -> dict[str, Any]:
        params = params or {}
        return {"binary_center": params.get("center", False), "binary_index": params.get("index", "flat")}

    def open(self, path: Path, params: dict[str, Any], manifest: Any, codecs: dict[str, np.ndarray]) -> BinaryIndex:
        shape = np.load(path / CODES_FILE, mmap_mode="r").shape  # the header only: codes load on first use
        if shape != (manifest.count, code_bytes_for(manifest.dim)):
            raise CorruptIndex(
                f"{path}: binary codes {shape}, expected {(manifest.count, code_bytes_for(manifest.dim))}; rebuild the index"
            )
        kind = params.get("index", "flat")
        return BinaryIndex(BinaryCodec.from_arrays(codecs), Lazy(lambda: BinaryStore.open(path, kind)), shape[1])

    def segment_rows(self, version: VersionView) -> BinaryRows:
        return BinaryRows(version.store("binary").codec)


class BinaryIndex(CodesIndex[BinaryStore]):
    """codec: the thresholds bits are taken at; store: the FAISS index over every row's code."""

    def __init__(self, codec: BinaryCodec, store: Lazy[BinaryStore], code_bytes: int):
        super().__init__(store, code_bytes)
        self.codec = codec


class BinaryBuilder:
    """Packs every input batch into sign bits; a graph over them at the end if asked for."""

    def __init__(self, codec: BinaryCodec, n: int, out: Path, settings: Any):
        self.codec, self.out = codec, out
        self.params = {"center": settings.binary_center, "index": settings.binary_index}
        self._codes = np.lib.format.open_memmap(out / CODES_FILE, mode="w+", dtype=np.uint8, shape=(n, codec.code_bytes))

    def add(self, start: int, unit: np.ndarray) -> None:
        self._codes[start : start + len(unit)] = self.codec.encode(unit)

    def finish(self, vectors: Rows, show_progress: bool) -> dict[str, Any]:
        self._codes.flush()
        if self.params["index"] == "hnsw":
            import faiss

            faiss.write_index_binary(build_hnsw(np.asarray(self._codes)), str(self.out / HNSW_FILE))
        del self._codes
        return self.params

    def codec_arrays(self) -> dict[str, np.ndarray]:
        return self.codec.to_arrays()


class BinaryRows:
    """Codes of rows written since a version was built; a flat FAISS index per store asked for."""

    def __init__(self, codec: BinaryCodec):
        self.codec = codec
        self._codes = np.zeros((0, codec.code_bytes), dtype=np.uint8)

    def add(self, start: int, unit: np.ndarray) -> None:
        stop = start + len(unit)
        self._codes = room_for(self._codes, start, stop)
        self._codes[start:stop] = self.codec.encode(unit)

    def store(self, n: int) -> BinaryIndex:
        return BinaryIndex(self.codec, Lazy(value=BinaryStore.from_codes(self._codes[:n])), self.codec.code_bytes)


BINARY = Binary()
