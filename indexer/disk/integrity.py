"""Is a version whole? Sizes, sha256 and file formats, checked before any of its arrays is used.

Every way a damaged file can fail (a short `.npy`, a garbled header, a bad CRC inside
`codecs.npz`, pickled objects where arrays belong) becomes `CorruptIndex` naming the file,
so a caller can report that one collection and keep serving the others.

Checksums cost: on WordNet (117,659 x 384, 195 MB of files) opening a version takes
7 ms warm / 11 ms cold without them and 163 ms warm / 175-215 ms cold with them
(sha256 at ~1.3 GB/s with SHA-NI), growing with the collection. Versions never change,
so the verdict is kept per process: a version pays once, however often it is reopened
(a second handle, the reindex that exports it, a worker's reload). The verdict is keyed
by each file's inode, size and change times, so a file rewritten in place is hashed again.
Verifying in a background thread instead would serve answers before the verdict.
"""

from __future__ import annotations

import os
import threading
import zipfile
from pathlib import Path

import numpy as np

from vecdial.indexer.disk.manifest import Manifest, sha256_file
from vecdial.indexer.errors import CorruptIndex

VERDICTS_KEPT = 1024

_verified: dict[tuple, None] = {}  # insertion-ordered: the oldest verdict is forgotten first
_verified_lock = threading.Lock()


def _file_key(directory: Path, manifest: Manifest) -> tuple | None:
    """Identity of every listed file as it is on disk now (None if one cannot be stat'ed)."""
    key = []
    for name, entry in sorted(manifest.files.items()):
        try:
            st = os.stat(directory / name)
        except OSError:
            return None
        key.append((name, entry.sha256, entry.bytes, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns))
    return tuple(key)


def remember_verified(directory: Path, manifest: Manifest) -> None:
    """Record that the listed files hash to their manifest (a build has just computed it)."""
    key = _file_key(directory, manifest)
    if key is None:
        return
    with _verified_lock:
        _verified[key] = None
        while len(_verified) > VERDICTS_KEPT:
            del _verified[next(iter(_verified))]


def forget_verdicts() -> None:
    """Hash every version again at its next open (tests; or after repairing files by hand)."""
    with _verified_lock:
        _verified.clear()


def verify_files(directory: Path, manifest: Manifest, checksums: bool = True) -> None:
    """Every listed file exists with its recorded size and a readable format (and, if asked,
    its sha256: once per process per version, see the module docstring). Raise CorruptIndex
    naming the first file that is not."""
    for name, entry in manifest.files.items():
        path = directory / name
        if Path(name).is_absolute() or any(part.startswith(".") for part in Path(name).parts) or len(Path(name).parts) > 2:
            raise CorruptIndex(f"{directory}: the manifest lists {name!r}, which is not a file of this version")
        if not path.is_file():
            raise CorruptIndex(f"{directory}: file {name} listed in the manifest is missing")
        size = path.stat().st_size
        if size != entry.bytes:
            raise CorruptIndex(f"{directory}: file {name} has {size} bytes, the manifest says {entry.bytes} (truncated or replaced)")
    for name in manifest.files:
        if name.endswith(".npy"):
            check_npy(directory, name)
    if not checksums:
        for name in manifest.files:
            if name.endswith(".npz"):
                check_npz(directory, name)
        return
    key = _file_key(directory, manifest)
    with _verified_lock:
        if key is not None and key in _verified:
            return
    for name, entry in manifest.files.items():
        if sha256_file(directory / name) != entry.sha256:
            raise CorruptIndex(f"{directory}: file {name} fails its checksum (corrupted on disk); rebuild the index")
    remember_verified(directory, manifest)


def check_npy(directory: Path, name: str) -> None:
    """A `.npy` whose header parses, holds no Python objects and matches the file's size."""
    path = directory / name
    try:
        with open(path, "rb") as handle:
            major, _ = np.lib.format.read_magic(handle)
            read_header = np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
            shape, _, dtype = read_header(handle)
            data_start = handle.tell()
    except Exception as exc:  # EOFError, ValueError, SyntaxError...: all mean a damaged header
        raise CorruptIndex(f"{directory}: file {name} is not a readable .npy ({type(exc).__name__}: {exc}); rebuild the index") from None
    if dtype.hasobject:
        raise CorruptIndex(f"{directory}: file {name} holds Python objects, not numbers (damaged or tampered); rebuild the index")
    expected = data_start + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    size = path.stat().st_size
    if size != expected:
        raise CorruptIndex(f"{directory}: file {name} has {size} bytes, its header says {expected}; rebuild the index")


def check_npz(directory: Path, name: str) -> None:
    """An `.npz` whose every member passes its zip CRC (what sha256 would catch, for a few KB-MB)."""
    try:
        with zipfile.ZipFile(directory / name) as archive:
            bad = archive.testzip()
    except Exception as exc:  # BadZipFile, EOFError, OSError
        raise CorruptIndex(f"{directory}: file {name} is not a readable .npz ({type(exc).__name__}: {exc}); rebuild the index") from None
    if bad is not None:
        raise CorruptIndex(f"{directory}: file {name} fails the CRC of its member {bad} (corrupted on disk); rebuild the index")
