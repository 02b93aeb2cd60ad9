"""Errors a user can act on. Each message says what to change; the CLI prints it
as one line and the HTTP layer maps each class to one status code."""

from collections.abc import Callable
from pathlib import Path
from typing import Any


class VecdialError(Exception):
    """Base of every error vecdial raises on purpose."""


class InvalidInput(VecdialError):
    """The request or input data is malformed (wrong dimension, NaN, empty...)."""


class BudgetError(InvalidInput):
    """A budget names an unknown mode or a knob out of range for this collection."""


class NotFound(VecdialError):
    """A collection, version or job does not exist."""


class AlreadyExists(VecdialError):
    """A collection of that name exists already."""


class Unavailable(VecdialError):
    """A part of a collection cannot answer now (a shard that failed to open or errored);
    retry later, or repair the part the message names."""


class CorruptIndex(VecdialError):
    """Files on disk do not match their manifest (missing, truncated, wrong checksum)."""


class UnsupportedFormat(CorruptIndex):
    """The index was written by a newer vecdial than this one."""


class DamagedLog(CorruptIndex):
    """A collection's write-ahead log holds damaged bytes between or after valid records.

    Searches go on over every valid record; writes and reindexes are refused (appending
    or folding the log could lose what is left) until `vecdial repair -c NAME` salvages it.
    """


def first_problem(exc: Any, default: str) -> str:
    """A pydantic ValidationError's first error as `where: what` (where: its dotted field, or
    `default` for the whole value): the one line our errors quote."""
    first = exc.errors()[0]
    return f"{'.'.join(str(part) for part in first['loc']) or default}: {first['msg']}"


def read_file(directory: Path, name: str, load: Callable[[Path], Any]) -> Any:
    """load(directory / name), with any failure (BadZipFile, EOFError, a pickle error...) as CorruptIndex
    naming the file: how every reader of a version's files (disk, features, lexical) reports damage."""
    try:
        return load(directory / name)
    except CorruptIndex:
        raise
    except Exception as exc:  # zipfile.BadZipFile, EOFError, pickle.UnpicklingError, ValueError...
        raise CorruptIndex(f"{directory}: file {name} cannot be read ({type(exc).__name__}: {exc}); rebuild the index") from None
