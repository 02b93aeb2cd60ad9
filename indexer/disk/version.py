"""One immutable index version, opened from its directory and validated.

Arrays are memory-mapped; only what a search needs in RAM (binary codes, ids)
is loaded. A version never changes after it is written, so it can be shared by
concurrent searches and released when the last one finishes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vecdial.indexer.codecs.rotation import Rotation
from vecdial.indexer.errors import CorruptIndex
from vecdial.indexer.disk.manifest import Manifest, read_manifest, verify_files
from vecdial.indexer.modes import MODES
from vecdial.indexer.stores.blocks import BlockStore

IDS_FILE = "ids.npy"
CODEC_FILE = "codecs.npz"
TEXTS_FILE = "texts.jsonl"
TEXT_OFFSETS_FILE = "text_offsets.npy"


@dataclass
class Version:
    """A searchable, read-only index version: its ids, texts, and each mode's store (`store(name)`)."""

    path: Path
    manifest: Manifest
    ids: np.ndarray
    stores: dict[str, Any]
    _text_offsets: np.ndarray | None = field(default=None, repr=False)
    plans: dict = field(default_factory=dict, repr=False)  # compiled plans, see plan.compile.compile_cached

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

    @property
    def binary(self) -> Any:
        return self.stores["binary"].store

    @property
    def sparse(self) -> Any:
        """The sparse autoencoder and its postings (None without sparse codes)."""
        return self.stores.get("sparse")

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
    """Open and validate a version directory; raise CorruptIndex on any mismatch.

    Each mode recorded in the manifest opens its own store (indexer/modes) and checks it.
    """
    manifest = read_manifest(path)
    verify_files(path, manifest, checksums=verify_checksums)
    unknown = sorted(set(manifest.codecs) - set(MODES))
    if unknown or "dense" not in manifest.codecs:
        raise CorruptIndex(f"{path}: modes {unknown or ['dense']} are unknown or missing here; upgrade vecdial or rebuild the index")
    try:
        codecs = dict(np.load(path / CODEC_FILE, allow_pickle=False))
        ids = np.load(path / IDS_FILE, mmap_mode="r", allow_pickle=False)
        offsets = np.load(path / TEXT_OFFSETS_FILE) if manifest.has_texts else None
        stores = {name: MODES[name].open(path, params, manifest, codecs) for name, params in manifest.codecs.items()}
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise CorruptIndex(f"{path}: cannot read index files ({exc}); rebuild the index") from None
    if ids.shape != (manifest.count,):
        raise CorruptIndex(f"{path}: ids has shape {ids.shape}, expected ({manifest.count},)")
    return Version(path=path, manifest=manifest, ids=ids, stores=stores, _text_offsets=offsets)
