"""Stores a version loads on first use, so a process holds in RAM only the codes its
searches read: a service answering `rabitq` budgets never loads the sign codes, one
answering `binary` never loads the RaBitQ codes (56 and 64 bytes a vector at 384 dims).

Opening a version still checks each lazy store's header against the manifest (and
its checksum, by default), so damage is found at open, not at the first search.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Lazy(Generic[T]):
    """`make()` on the first `get()`, once, whichever thread asks first; then that value."""

    def __init__(self, make: Callable[[], T] | None = None, value: T | None = None):
        self._make, self._value = make, value
        self._lock = threading.Lock()

    @property
    def loaded(self) -> bool:
        return self._value is not None

    def get(self) -> T:
        value = self._value
        if value is None:
            with self._lock:
                if self._value is None:
                    self._value = self._make()  # type: ignore[misc]
                value = self._value
        return value


class CodesIndex(Generic[T]):
    """A mode's codes over a version: `store` (loaded on first use), and the bytes a code
    takes, known from the header without loading."""

    def __init__(self, store: Lazy[T], code_bytes: int):
        self._store, self.code_bytes = store, code_bytes

    @property
    def store(self) -> T:
        return self._store.get()

    @property
    def loaded(self) -> bool:
        """Whether the codes are in RAM yet (a search of this mode loads them)."""
        return self._store.loaded
