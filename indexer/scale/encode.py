"""The per-shard steps of a build as pure functions over rows: what an engine runs in a loop
or as Ray tasks, with the same result.

A build fits every codec on one sample (the driver), then makes two passes over the input:
the cell of every row (k-means partitions), then every mode's codes in the stored order.
Each pass is cut into shards, runs of whole build batches (`settings.batch_size` rows), and
inside a shard the rows go through the very batches the in-process loop uses, so FAISS and
BLAS see the same shapes and the codes come out byte for byte the same.

Modes whose builder splits into "encode rows" and "write codes at a position" (dense
blocks and prefix norms, binary sign bits) are encoded inside the shard; any other mode
(RaBitQ, whose fast-scan index packs codes as rows are added, and the sparse autoencoder,
which trains at the end) gets the shard's unit rows and encodes on the driver, in order.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from vecdial.indexer.codecs.binary import BinaryCodec
from vecdial.indexer.codecs.partition import centroid_index
from vecdial.indexer.codecs.rotation import Rotation
from vecdial.indexer.modes.binary import BinaryBuilder
from vecdial.indexer.modes.dense import DenseBuilder
from vecdial.indexer.stores.blocks import prefix_sq_norms, split_blocks
from vecdial.indexer.vectors import check_finite, normalize_rows

Codes = dict[str, dict[str, np.ndarray]]  # mode -> its arrays for a shard's rows


def shard_ranges(n: int, batch_size: int, shard_rows: int) -> list[tuple[int, int]]:
    """[start, stop) runs covering 0..n, each a whole number of batches (the last may be short)."""
    step = max(1, shard_rows // batch_size) * batch_size
    return [(start, min(start + step, n)) for start in range(0, n, step)]


def unit_rows(batch: np.ndarray, start: int) -> np.ndarray:
    """Input rows (b, dim) -> (b, dim) float32 unit rows; InvalidInput names a bad row by position."""
    batch = np.asarray(batch, dtype=np.float32)
    check_finite(batch, f"input vector (batch at {start})")
    return normalize_rows(batch, f"input vector (batch at {start})")


def assign_cells(rows: np.ndarray, start: int, centroids: np.ndarray, batch_size: int) -> np.ndarray:
    """The nearest cell of each of rows (b, dim), input positions start..: (b,) int64."""
    nearest = centroid_index(centroids)
    cells = np.empty(len(rows), dtype=np.int64)
    for at in range(0, len(rows), batch_size):
        unit = unit_rows(rows[at : at + batch_size], start + at)
        cells[at : at + len(unit)] = nearest.search(unit, 1)[1][:, 0]
    return cells


@dataclass(frozen=True)
class DenseEncoder:
    """The dense mode's per-row step: rotate, cut into column blocks, prefix norms."""

    rotation: Rotation
    block: int
    dtype: str

    def encode(self, unit: np.ndarray) -> dict[str, np.ndarray]:
        rotated = self.rotation.apply(unit)
        return {"blocks": split_blocks(rotated, self.block).astype(self.dtype), "norms": prefix_sq_norms(rotated, self.block)}

    @staticmethod
    def write(builder: DenseBuilder, start: int, codes: dict[str, np.ndarray]) -> None:
        builder.put(start, codes["blocks"], codes["norms"])


@dataclass(frozen=True)
class BinaryEncoder:
    """The binary mode's per-row step: sign bits (around the fitted thresholds), packed."""

    codec: BinaryCodec

    def encode(self, unit: np.ndarray) -> dict[str, np.ndarray]:
        return {"codes": self.codec.encode(unit)}

    @staticmethod
    def write(builder: BinaryBuilder, start: int, codes: dict[str, np.ndarray]) -> None:
        builder._codes[start : start + len(codes["codes"])] = codes["codes"]


def split_encoder(builder: Any) -> DenseEncoder | BinaryEncoder | None:
    """The shard-side encoder of a fitted builder, or None: it encodes on the driver."""
    if type(builder) is DenseBuilder and hasattr(builder, "_blocks"):
        return DenseEncoder(builder.rotation, builder.block, builder.params["dtype"])
    if type(builder) is BinaryBuilder and hasattr(builder, "_codes"):
        return BinaryEncoder(builder.codec)
    return None


@dataclass(frozen=True)
class ShardCodecs:
    """What every shard task needs, shipped once: the build's batch size, and the fitted
    encoder of each mode encoded in shards; `unit`: some mode encodes on the driver, so a
    shard also returns its unit rows."""

    batch_size: int
    encoders: dict[str, DenseEncoder | BinaryEncoder] = field(default_factory=dict)
    unit: bool = False

    @classmethod
    def of(cls, builders: dict[str, Any], batch_size: int) -> ShardCodecs:
        encoders = {name: e for name, b in builders.items() if (e := split_encoder(b)) is not None}
        return cls(batch_size, encoders, unit=len(encoders) < len(builders))


def encode_shard(rows: np.ndarray, start: int, codecs: ShardCodecs) -> Codes:
    """Rows (b, dim) in stored order, positions start.. -> each mode's codes for them, plus
    `{"unit": {"rows": (b, dim)}}` when a mode encodes on the driver. Batch by batch, as in-process."""
    parts: dict[str, dict[str, list[np.ndarray]]] = {}
    for at in range(0, len(rows), codecs.batch_size):
        unit = unit_rows(rows[at : at + codecs.batch_size], start + at)
        for name, encoder in codecs.encoders.items():
            for key, array in encoder.encode(unit).items():
                parts.setdefault(name, {}).setdefault(key, []).append(array)
        if codecs.unit:
            parts.setdefault("unit", {}).setdefault("rows", []).append(unit)
    return {
        name: {key: np.concatenate(arrays, axis=1 if key in ("blocks", "norms") else 0) for key, arrays in keys.items()}
        for name, keys in parts.items()
    }


def write_shard(builders: dict[str, Any], codecs: ShardCodecs, start: int, codes: Codes) -> None:
    """Put one shard's codes at positions start.. of every mode's files (driver side, in order)."""
    for name, builder in builders.items():
        encoder = codecs.encoders.get(name)
        if encoder is not None:
            encoder.write(builder, start, codes[name])
            continue
        unit = codes["unit"]["rows"]
        for at in range(0, len(unit), codecs.batch_size):
            builder.add(start + at, unit[at : at + codecs.batch_size])


def read_rows(vectors: Any, start: int, stop: int, order: np.ndarray | None) -> np.ndarray:
    """Positions start..stop of the stored order: input rows order[start:stop] (or start..stop
    without one), each batch's rows read in ascending order (a memory map reads forward)."""
    if order is None:
        return np.asarray(vectors[start:stop])
    wanted = order[start:stop]
    ascending = np.argsort(wanted, kind="stable")
    out = np.empty((len(wanted), vectors.shape[1]), dtype=vectors.dtype)
    out[ascending] = vectors[wanted[ascending]]
    return out


def encode_in_loop(
    vectors: Any, order: np.ndarray | None, builders: dict[str, Any], batch_size: int, on_rows: Callable[[int], None] = lambda rows: None
) -> None:
    """The reference engine over the same steps: every shard of one batch, here, in order."""
    codecs = ShardCodecs.of(builders, batch_size)
    for start, stop in shard_ranges(len(vectors), batch_size, batch_size):
        write_shard(builders, codecs, start, encode_shard(read_rows(vectors, start, stop, order), start, codecs))
        on_rows(stop - start)
