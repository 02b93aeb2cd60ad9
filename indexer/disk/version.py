"""One immutable index version, opened from its directory and validated.

Arrays are memory-mapped; only what a search needs in RAM (binary codes, ids)
is loaded. A version never changes after it is written, so it can be shared by
concurrent searches and released when the last one finishes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vecdial.indexer.codecs.binary import BinaryCodec, code_bytes_for
from vecdial.indexer.codecs.rotation import Rotation
from vecdial.indexer.errors import CorruptIndex
from vecdial.indexer.disk.manifest import Manifest, read_manifest, verify_files
from vecdial.indexer.stores.binary import BinaryStore
from vecdial.indexer.stores.blocks import BlockStore
from vecdial.indexer.stores.sparse import SparseStore, open_sparse_store

IDS_FILE = "ids.npy"
CODEC_FILE = "codecs.npz"
TEXTS_FILE = "texts.jsonl"
TEXT_OFFSETS_FILE = "text_offsets.npy"


@dataclass
class Version:
    """A searchable, read-only index version."""

    path: Path
    manifest: Manifest
    ids: np.ndarray
    rotation: Rotation
    binary_codec: BinaryCodec
    dense: BlockStore
    binary: BinaryStore
    sparse: SparseStore | None = None
    _text_offsets: np.ndarray | None = field(default=None, repr=False)
    plans: dict = field(default_factory=dict, repr=False)  # compiled plans, see plan.compile.compile_cached

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
    def sparse_index(self):
        """The postings over this version's sparse codes (None without sparse codes)."""
        return None if self.sparse is None else self.sparse.index

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
                out.append(json.loads(handle.read(int(end - start))))
        return out


def open_version(path: Path, verify_checksums: bool = True) -> Version:
    """Open and validate a version directory; raise CorruptIndex on any mismatch."""
    manifest = read_manifest(path)
    verify_files(path, manifest, checksums=verify_checksums)
    try:
        codecs = dict(np.load(path / CODEC_FILE, allow_pickle=False))
        ids = np.load(path / IDS_FILE, mmap_mode="r", allow_pickle=False)
        dense = BlockStore.open(path, manifest.dim)
        binary = BinaryStore.open(path, manifest.binary.index)
        offsets = np.load(path / TEXT_OFFSETS_FILE) if manifest.has_texts else None
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise CorruptIndex(f"{path}: cannot read index files ({exc}); rebuild the index") from None
    _check_shapes(path, manifest, ids, dense, binary)
    sparse = None
    if manifest.sparse is not None:
        try:
            sparse = open_sparse_store(path, manifest.sparse, manifest.count)
        except (OSError, ValueError, KeyError) as exc:
            raise CorruptIndex(f"{path}: cannot read the sparse codes ({exc}); rebuild the index") from None
        if sparse.index.size != manifest.count or len(sparse.index.indptr) != sparse.model.hidden + 1:
            raise CorruptIndex(f"{path}: sparse index does not match its model or the collection size")
    return Version(
        path=path,
        manifest=manifest,
        ids=ids,
        rotation=Rotation.from_arrays(codecs),
        binary_codec=BinaryCodec.from_arrays(codecs),
        dense=dense,
        binary=binary,
        sparse=sparse,
        _text_offsets=offsets,
    )


def _check_shapes(path: Path, manifest: Manifest, ids: np.ndarray, dense: BlockStore, binary: BinaryStore) -> None:
    n, dim = manifest.count, manifest.dim
    expected_blocks = -(-dim // manifest.dense.block)
    problems = []
    if ids.shape != (n,):
        problems.append(f"ids has shape {ids.shape}, expected ({n},)")
    if dense.blocks.shape != (expected_blocks, n, manifest.dense.block):
        problems.append(f"dense blocks have shape {dense.blocks.shape}, expected {(expected_blocks, n, manifest.dense.block)}")
    if dense.prefix_sq.shape != (expected_blocks, n):
        problems.append(f"prefix norms have shape {dense.prefix_sq.shape}, expected {(expected_blocks, n)}")
    if binary.size != n or binary.code_bytes != code_bytes_for(dim):
        problems.append(f"binary index holds {binary.size} codes of {binary.code_bytes} bytes, expected {n} of {code_bytes_for(dim)}")
    if problems:
        raise CorruptIndex(f"{path}: " + "; ".join(problems))
