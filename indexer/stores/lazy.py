"""Stores a version loads on first use, so a process holds in RAM only the codes its
searches read: a service answering `rabitq` budgets never loads the sign codes, one
answering `binary` never loads the RaBitQ codes (56 and 64 bytes a vector at 384 dims).

Opening a version still checks each lazy store's header against the manifest (and
its checksum, by default), so damage is found at open, not at the first search.
"""

from __future__ import annotations

import threading
from typing import Callable, Generic, TypeVar

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
