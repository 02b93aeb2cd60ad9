"""A collection on disk: immutable versions and a CURRENT pointer swapped atomically.

```
<data_dir>/<name>/CURRENT          # the serving version's name, replaced by rename
<data_dir>/<name>/versions/v000001 # manifest.json + data files, never modified
```
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from vecdial.indexer.disk.atomic import write_text_atomic
from vecdial.indexer.jobs.build import TMP_PREFIX, build_version
from vecdial.indexer.jobs.settings import BuildSettings
from vecdial.indexer.errors import AlreadyExists, CorruptIndex, InvalidInput, NotFound
from vecdial.indexer.io.readers import Dataset
from vecdial.indexer.disk.version import Version, open_version

CURRENT_FILE = "CURRENT"
VERSIONS_DIR = "versions"
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
KEEP_VERSIONS = 2


def validate_name(name: str) -> str:
    """Collection names become directory names: letters, digits, '_', '.', '-' only."""
    if not NAME_PATTERN.fullmatch(name) or ".." in name:
        raise InvalidInput(
            f"invalid collection name {name!r}: use 1-64 letters, digits, '_', '.' or '-', starting with a letter or digit"
        )
    return name


class Collection:
    """Handle on one collection directory; cheap to make, opens nothing until asked."""

    def __init__(self, data_dir: Path, name: str):
        self.name = validate_name(name)
        self.path = Path(data_dir) / name

    @property
    def versions_dir(self) -> Path:
        return self.path / VERSIONS_DIR

    def exists(self) -> bool:
        return (self.path / CURRENT_FILE).is_file()

    def current_version_name(self) -> str:
        try:
            name = (self.path / CURRENT_FILE).read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            raise NotFound(f"collection {self.name!r} does not exist in {self.path.parent}") from None
        if not (self.versions_dir / name).is_dir():
            raise CorruptIndex(f"collection {self.name!r} points at version {name!r}, which is missing")
        return name

    def open(self, verify_checksums: bool = True) -> Version:
        """Open the serving version (memory-mapped, validated)."""
        return open_version(self.versions_dir / self.current_version_name(), verify_checksums)

    def build(
        self,
        dataset: Dataset,
        settings: BuildSettings = BuildSettings(),
        show_progress: bool = True,
        replace: bool = True,
    ) -> Path:
        """Build a new version and make it current; the old one serves until the swap."""
        if self.exists() and not replace:
            raise AlreadyExists(f"collection {self.name!r} exists already; drop it or reindex it")
        path = build_version(dataset, self.versions_dir, self._next_version_name(), settings, show_progress)
        open_version(path, verify_checksums=True)  # validate before anyone can see it
        self.swap_to(path.name)
        return path

    def swap_to(self, version_name: str) -> None:
        """Point CURRENT at a built version in one rename, then prune old versions."""
        write_text_atomic(self.path / CURRENT_FILE, version_name + "\n")
        self._prune()

    def drop(self) -> None:
        if not self.path.exists():
            raise NotFound(f"collection {self.name!r} does not exist in {self.path.parent}")
        shutil.rmtree(self.path)

    def _version_names(self) -> list[str]:
        if not self.versions_dir.is_dir():
            return []
        return sorted(p.name for p in self.versions_dir.iterdir() if p.is_dir() and not p.name.startswith(TMP_PREFIX))

    def next_version_name(self) -> str:
        """The name the next build or reindex of this collection writes its version under."""
        return self._next_version_name()

    def _next_version_name(self) -> str:
        names = self._version_names()
        last = int(names[-1][1:]) if names else 0
        return f"v{last + 1:06d}"

    def _prune(self) -> None:
        """Keep the newest versions; readers still holding an older one keep their maps (POSIX)."""
        current = self.current_version_name()
        for name in self._version_names()[:-KEEP_VERSIONS]:
            if name != current:
                shutil.rmtree(self.versions_dir / name, ignore_errors=True)


def list_collections(data_dir: Path) -> list[str]:
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        return []
    return sorted(p.name for p in data_dir.iterdir() if (p / CURRENT_FILE).is_file())
