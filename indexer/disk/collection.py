"""A collection on disk: immutable versions and a CURRENT pointer swapped atomically.

Where each file lives is `disk/layout.py`'s; a sharded collection holds no CURRENT but a
shard manifest and its shards, each an ordinary collection (`vecdial.sharded`).

A version gets its name only when it is published: under the collection's write
lock, the staged build is renamed to the next free name and CURRENT is pointed at
it in the same critical section. So every version named at or below CURRENT has
served, and a name above CURRENT can only be the leftover of a process killed
inside that section: `publish` and `remove_orphans` delete those before anything
else counts them, and pruning keeps CURRENT and the version that served before it.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path

from vecdial.indexer.disk.atomic import fsync_dir, write_text_atomic
from vecdial.indexer.disk.layout import CURRENT_FILE, CollectionLayout
from vecdial.indexer.disk.version import Version, open_version
from vecdial.indexer.errors import CorruptIndex, InvalidInput, NotFound

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
VERSION_NAME = re.compile(r"^v(\d{6,})$")
KEEP_VERSIONS = 2  # CURRENT and the version that served before it


def validate_name(name: str) -> str:
    """Collection names become directory names: letters, digits, '_', '.', '-' only."""
    if not NAME_PATTERN.fullmatch(name) or ".." in name:
        raise InvalidInput(f"invalid collection name {name!r}: use 1-64 letters, digits, '_', '.' or '-', starting with a letter or digit")
    return name


def version_number(name: str) -> int:
    """v000042 -> 42; -1 for a name that is not a version's."""
    match = VERSION_NAME.fullmatch(name)
    return int(match.group(1)) if match else -1


class Collection:
    """Handle on one collection directory; cheap to make, opens nothing until asked."""

    def __init__(self, data_dir: Path, name: str):
        self.name = validate_name(name)
        self.path = Path(data_dir) / name
        self.layout = CollectionLayout(self.path)

    @property
    def versions_dir(self) -> Path:
        return self.layout.versions

    def exists(self) -> bool:
        return self.layout.current.is_file()

    def sharded(self) -> bool:
        """The directory holds shards (a SHARDS manifest), not a version of its own."""
        return self.layout.shards_manifest.is_file()

    @property
    def shards_dir(self) -> Path:
        """The data directory of a sharded collection's shards."""
        return self.layout.shards

    def current_version_name(self) -> str:
        try:
            name = self.layout.current.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            raise NotFound(f"collection {self.name!r} does not exist in {self.path.parent}") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise CorruptIndex(f"collection {self.name!r}: file {CURRENT_FILE} cannot be read ({exc})") from None
        if version_number(name) < 0:
            raise CorruptIndex(f"collection {self.name!r}: file {CURRENT_FILE} holds {name[:40]!r}, not a version name")
        if not (self.versions_dir / name).is_dir():
            raise CorruptIndex(f"collection {self.name!r} points at version {name!r}, which is missing")
        return name

    def open(self, verify_checksums: bool = True) -> Version:
        """Open the serving version (memory-mapped, validated)."""
        return open_version(self.versions_dir / self.current_version_name(), verify_checksums)

    def publish(self, staged: Path, before_current: Callable[[str], None] | None = None) -> str:
        """Name a staged, validated version and make it current; return its name.

        The caller holds the collection's write lock. `before_current(name)` runs between
        the rename and the swap of CURRENT (a reindex starts the new version's log there).
        Killed anywhere in here, the process leaves either the old CURRENT (and a version
        above it, an orphan the next publish removes) or the new one.
        """
        current = self._current_or_none()
        names = self.version_names()
        number = max([version_number(n) for n in names] + [version_number(current) if current else 0]) + 1
        self.remove_orphans()
        name = f"v{number:06d}"
        final = self.versions_dir / name
        staged.rename(final)
        fsync_dir(self.versions_dir)
        try:
            if before_current is not None:
                before_current(name)
            write_text_atomic(self.layout.current, name + "\n")
        except BaseException:
            if self._current_or_none() != name:
                shutil.rmtree(final, ignore_errors=True)
            raise
        self._prune()
        return name

    def swap_to(self, version_name: str) -> None:
        """Point CURRENT at an existing version in one rename, then prune old versions."""
        write_text_atomic(self.layout.current, version_name + "\n")
        self._prune()

    def remove_orphans(self) -> list[str]:
        """Delete versions above CURRENT (all of them if there is no CURRENT): made by a
        process killed between naming a version and swapping CURRENT, never served.
        The caller holds the write lock (a publish in progress is not an orphan)."""
        current = self._current_or_none()
        limit = version_number(current) if current else 0
        orphans = [n for n in self.version_names() if version_number(n) > limit]
        for name in orphans:
            shutil.rmtree(self.versions_dir / name, ignore_errors=True)
        return orphans

    def drop(self) -> None:
        if not self.path.exists():
            raise NotFound(f"collection {self.name!r} does not exist in {self.path.parent}")
        shutil.rmtree(self.path)

    def version_names(self) -> list[str]:
        """Published version directories (staging ones excluded), oldest first."""
        if not self.versions_dir.is_dir():
            return []
        names = [p.name for p in self.versions_dir.iterdir() if version_number(p.name) >= 0 and p.is_dir()]
        return sorted(names, key=version_number)

    def _current_or_none(self) -> str | None:
        return self.current_version_name() if self.exists() else None

    def _prune(self) -> None:
        """Keep CURRENT and the newest versions below it; readers still holding an older one
        keep their maps (POSIX). Versions above CURRENT are left to `remove_orphans`."""
        current = version_number(self.current_version_name())
        older = [n for n in self.version_names() if version_number(n) < current]
        for name in older[: max(len(older) - (KEEP_VERSIONS - 1), 0)]:
            shutil.rmtree(self.versions_dir / name, ignore_errors=True)


def list_collections(data_dir: Path) -> list[str]:
    """Names of the collections in data_dir, sharded ones included, sorted."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        return []
    found = (p.name for p in data_dir.iterdir() if CollectionLayout(p).current.is_file() or CollectionLayout(p).shards_manifest.is_file())
    return sorted(name for name in found if NAME_PATTERN.fullmatch(name))
