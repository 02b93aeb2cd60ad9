"""One immutable index version, opened from its directory and validated.

Arrays are memory-mapped; only what a search needs in RAM (binary codes, ids)
is loaded. A version never changes after it is written, so it can be shared by
concurrent searches and released when the last one finishes.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vecdial.indexer.codecs.partition import Partitions
from vecdial.indexer.codecs.rotation import Rotation
from vecdial.indexer.disk.integrity import verify_files
from vecdial.indexer.disk.manifest import Manifest, read_manifest
from vecdial.indexer.errors import CorruptIndex, read_file
from vecdial.indexer.filters.table import SCHEMA_FILE, PayloadTable
from vecdial.indexer.modes import MODES
from vecdial.indexer.stores.blocks import BlockStore

IDS_FILE = "ids.npy"
CODEC_FILE = "codecs.npz"
TEXTS_FILE = "texts.jsonl"
TEXT_OFFSETS_FILE = "text_offsets.npy"


@dataclass
class Version:
    """A searchable, read-only index version: its ids, texts, payloads, and each mode's store (`store(name)`)."""

    path: Path
    manifest: Manifest
    ids: np.ndarray
    stores: dict[str, Any]
    _text_offsets: np.ndarray | None = field(default=None, repr=False)
    partitions: Partitions | None = None  # the cells rows are stored in (codecs/partition.py)
    plans: dict = field(default_factory=dict, repr=False)  # compiled plans, see plan.compile.compile_cached
    payloads: PayloadTable = field(default_factory=lambda: PayloadTable(0), repr=False)  # memory-mapped columns (filters/table.py)
    # What opens on first use (the lexical index, the feature table), by name. Kept here, not as
    # Lazy(self._open_...) fields: a bound method stored on its own object is a reference cycle,
    # and a swapped-out version would then keep its mapped files until the cycle collector ran.
    _opened: dict[str, Any] = field(default_factory=dict, init=False, repr=False)
    _opening: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def lexical(self) -> Any:
        """The BM25 index over this version's texts (indexer/lexical), opened memory-mapped on
        first use; None if the version has none."""
        return None if self.manifest.lexical is None else self._once("lexical", self._open_lexical)

    def features(self) -> Any:
        """The sparse autoencoder's features (indexer/features/serve.py: labels, top documents,
        decoder), opened on first use; None if the version has no sparse codes."""
        return None if self.store("sparse") is None else self._once("features", self._open_features)

    def _once(self, name: str, open_it: Callable[[], Any]) -> Any:
        """open_it() on the first call for `name`, once, whichever thread asks first; then that value."""
        value = self._opened.get(name)
        if value is None:
            with self._opening:
                value = self._opened.get(name)
                if value is None:
                    value = self._opened[name] = open_it()
        return value

    def _open_lexical(self) -> Any:
        from vecdial.indexer.lexical.index import LEXICAL_DIR, META_FILE, open_lexical

        return read_file(self.path, f"{LEXICAL_DIR}/{META_FILE}", lambda p: open_lexical(self.path))

    def _open_features(self) -> Any:
        from vecdial.indexer.features.serve import open_features

        return open_features(self.path, self.manifest.codecs["sparse"], int(self.store("sparse").model.hidden))

    def store(self, mode: str) -> Any:
        """That mode's store (see indexer/modes), or None if this version was built without it."""
        return self.stores.get(mode)

    @property
    def dim(self) -> int:
        return self.manifest.dim

    @property
    def size(self) -> int:
        return self.manifest.count

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def rotation(self) -> Rotation:
        return self.stores["dense"].rotation

    @property
    def dense(self) -> BlockStore:
        """The full vectors, rotated, in column blocks."""
        return self.stores["dense"].blocks

    def id_list(self, rows: np.ndarray) -> list:
        """Store rows -> user ids as Python values (int or str)."""
        picked = self.ids[rows]
        return [int(v) for v in picked] if self.manifest.id_kind == "int" else [str(v) for v in picked]

    def texts(self, rows: np.ndarray) -> list[str | None]:
        """Stored texts of the given rows (None where the collection has none)."""
        if self._text_offsets is None:
            return [None] * len(rows)
        out = []
        with open(self.path / TEXTS_FILE, "rb") as handle:
            for row in rows:
                start, end = self._text_offsets[row], self._text_offsets[row + 1]
                handle.seek(int(start))
                try:
                    out.append(json.loads(handle.read(int(end - start))))
                except ValueError as exc:  # checked at open; changed on disk since
                    raise CorruptIndex(f"{self.path}: file {TEXTS_FILE} has an unreadable text at row {row} ({exc})") from None
        return out


def open_version(path: Path, verify_checksums: bool = True) -> Version:
    """Open and validate a version directory; raise CorruptIndex naming the file on any mismatch.

    verify_checksums: sha256 every file (once per process per version, see disk/integrity.py);
    sizes and .npy headers are checked either way. Each mode recorded in the manifest opens
    its own store (indexer/modes) and checks it.
    """
    manifest = read_manifest(path)
    verify_files(path, manifest, checksums=verify_checksums)
    unknown = sorted(set(manifest.codecs) - set(MODES))
    if unknown or "dense" not in manifest.codecs:
        raise CorruptIndex(f"{path}: modes {unknown or ['dense']} are unknown or missing here; upgrade vecdial or rebuild the index")
    codecs = read_file(path, CODEC_FILE, lambda p: dict(np.load(p, allow_pickle=False)))
    # np.asarray drops the memmap subclass (same pages): its Python __getitem__ costs every search.
    ids = read_file(path, IDS_FILE, lambda p: np.asarray(np.load(p, mmap_mode="r", allow_pickle=False)))
    if ids.shape != (manifest.count,):
        raise CorruptIndex(f"{path}: file {IDS_FILE} has shape {ids.shape}, expected ({manifest.count},)")
    offsets = _text_offsets(path, manifest) if manifest.has_texts else None
    stores = {}
    for name, params in manifest.codecs.items():
        try:
            stores[name] = MODES[name].open(path, params, manifest, codecs)
        except CorruptIndex:
            raise
        except Exception as exc:  # whatever a damaged file makes a reader raise
            files = ", ".join(f for f in manifest.files if f.startswith(name)) or "its files"
            raise CorruptIndex(
                f"{path}: the {name} store ({files}) cannot be read ({type(exc).__name__}: {exc}); rebuild the index"
            ) from None
    payloads = read_file(path, SCHEMA_FILE, lambda p: PayloadTable.open(path, manifest.count))
    return Version(
        path=path,
        manifest=manifest,
        ids=ids,
        stores=stores,
        _text_offsets=offsets,
        partitions=_partitions(path, manifest, codecs),
        payloads=payloads,
    )


def _partitions(path: Path, manifest: Manifest, codecs: dict[str, np.ndarray]) -> Partitions | None:
    if not manifest.partitions:
        return None
    partitions = Partitions.from_arrays(codecs)
    if (
        partitions is None
        or partitions.centroids.shape != (manifest.partitions, manifest.dim)
        or partitions.offsets.shape != (manifest.partitions + 1,)
        or partitions.offsets[0] != 0
        or partitions.offsets[-1] != manifest.count
        or (np.diff(partitions.offsets) < 0).any()
    ):
        raise CorruptIndex(
            f"{path}: the partitions in {CODEC_FILE} do not match the manifest's {manifest.partitions} cells of {manifest.count} rows; rebuild the index"
        )
    return partitions


def _text_offsets(path: Path, manifest: Manifest) -> np.ndarray:
    """Byte offsets of each text in texts.jsonl: count + 1 of them, ascending, ending at its size."""
    offsets = read_file(path, TEXT_OFFSETS_FILE, lambda p: np.load(p, allow_pickle=False))
    texts = path / TEXTS_FILE
    size = texts.stat().st_size if texts.is_file() else -1
    if offsets.shape != (manifest.count + 1,) or offsets.dtype.kind not in "iu":
        raise CorruptIndex(
            f"{path}: file {TEXT_OFFSETS_FILE} has shape {offsets.shape} ({offsets.dtype}), expected ({manifest.count + 1},) integers"
        )
    if offsets[0] != 0 or offsets[-1] != size or np.any(np.diff(offsets) < 0):
        raise CorruptIndex(f"{path}: file {TEXT_OFFSETS_FILE} does not match {TEXTS_FILE} ({size} bytes); rebuild the index")
    return offsets


def full_vectors(version: Version, rows: np.ndarray) -> np.ndarray:
    """(len(rows), dim) float32 unit vectors of the given rows, in the input basis.

    The dense store holds rotated vectors in column blocks; the rotation is
    orthonormal, so rotated @ matrix.T undoes it. rows: ascending int64.
    """
    if version.dense.rows is not None:  # the row-major copy: each row one contiguous read
        rotated = np.asarray(version.dense.rows[rows], dtype=np.float32).reshape(len(rows), -1)[:, : version.dim]
        return np.ascontiguousarray(rotated @ version.rotation.matrix.T, dtype=np.float32)
    if len(rows) and rows[-1] - rows[0] + 1 == len(rows):
        picked = version.dense.blocks[:, int(rows[0]) : int(rows[-1]) + 1, :]
    else:
        picked = version.dense.blocks[:, rows, :]
    n_blocks, n, block = picked.shape
    rotated = np.asarray(picked, dtype=np.float32).transpose(1, 0, 2).reshape(n, n_blocks * block)[:, : version.dim]
    return np.ascontiguousarray(rotated @ version.rotation.matrix.T, dtype=np.float32)
