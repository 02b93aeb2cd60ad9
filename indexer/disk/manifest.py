"""The manifest of one index version: what was built, how, and the files it owns.

Opening a version checks the manifest before any array is mapped, so a wrong,
partial or newer index fails with a message instead of wrong answers.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError

from vecdial.indexer.errors import CorruptIndex, UnsupportedFormat, first_problem

FORMAT_VERSION = 2
MANIFEST_FILE = "manifest.json"


class FileEntry(BaseModel):
    bytes: int
    sha256: str


class Manifest(BaseModel):
    format_version: int = FORMAT_VERSION
    created_at: str
    source_model: str | None = Field(None, description="Model that made the vectors, if known.")
    source: str = ""
    metric: Literal["cosine"] = "cosine"
    dim: int
    count: int
    id_kind: Literal["int", "str"]
    codecs: dict[str, dict[str, Any]] = Field(description="Mode name -> what its build recorded (see indexer/modes).")
    partitions: int = Field(0, ge=0, description="Cells the rows are stored in (codecs/partition.py); 0: none.")
    has_texts: bool = False
    lexical: dict[str, Any] | None = Field(
        None, description="What the BM25 index over the texts recorded (indexer/lexical); None: no index."
    )
    files: dict[str, FileEntry] = {}
    checksum: str | None = Field(None, description="sha256 of every other field (canonical JSON), checked at every open.")


def file_entry(path: Path) -> FileEntry:
    return FileEntry(bytes=path.stat().st_size, sha256=sha256_file(path))


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 22), b""):
            digest.update(chunk)
    return digest.hexdigest()


def manifest_digest(raw: dict) -> str:
    """sha256 of a manifest's fields but `checksum`, as canonical JSON: any change to a value
    (a flipped digit in `dim`, in a codec parameter, in a file's sha256) changes it."""
    body = {key: value for key, value in raw.items() if key != "checksum"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")).hexdigest()


def write_manifest(directory: Path, manifest: Manifest) -> None:
    """Write manifest.json with its own checksum (the manifest is the one file not listed in itself)."""
    manifest.checksum = manifest_digest(manifest.model_dump(mode="json"))
    (directory / MANIFEST_FILE).write_text(manifest.model_dump_json(indent=2), encoding="utf-8")


def read_manifest(directory: Path) -> Manifest:
    """Parse and check a version's manifest; raise CorruptIndex saying what is wrong."""
    path = directory / MANIFEST_FILE
    if not path.is_file():
        raise CorruptIndex(f"{directory} has no {MANIFEST_FILE}: not a vecdial index, or a build that never finished")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CorruptIndex(f"{path} is not valid JSON ({exc}); rebuild the index") from None
    version = raw.get("format_version") if isinstance(raw, dict) else None
    if isinstance(version, int) and version > FORMAT_VERSION:
        raise UnsupportedFormat(f"{path} has format version {version}; this vecdial reads up to {FORMAT_VERSION}: upgrade vecdial")
    # checked whatever format the manifest claims: format 1 never carried a checksum, so one
    # that has a checksum and claims format 1 was edited, and must not skip its own check
    if isinstance(raw, dict) and raw.get("checksum") is not None and raw["checksum"] != manifest_digest(raw):
        raise CorruptIndex(f"{path} fails its checksum: changed after the build (damaged on disk or edited); rebuild the index")
    if version == 1:
        try:
            raw = upgrade_v1(raw)
        except (TypeError, AttributeError, ValueError) as exc:
            raise CorruptIndex(f"{path} claims format 1 but was not written by it ({exc}); rebuild the index") from None
    try:
        return Manifest.model_validate(raw)
    except ValidationError as exc:
        raise CorruptIndex(f"{path}: field {first_problem(exc, '')}") from None


# Every field a format 1 manifest had (it wrote them all, and nothing else): a manifest that
# claims format 1 with any other field (`codecs`, `checksum`, ...) or without one of these was
# not written by format 1, and is refused rather than upgraded past its own checks.
FORMAT_1_FIELDS = frozenset(
    ("format_version", "created_at", "source_model", "source", "metric", "dim", "count", "id_kind")
    + ("rotation", "dense", "binary", "sparse", "has_texts", "files")
)
FORMAT_1_REQUIRED = frozenset(("created_at", "dim", "count", "id_kind", "rotation", "dense", "binary"))


def upgrade_v1(raw: dict) -> dict:
    """Format 1 kept each mode's parameters in its own field; format 2 keys them by mode.
    Format 1 manifests carried no checksum of their own, so only one that has exactly format 1's
    fields is upgraded; ValueError names what a real format 1 manifest could not have held."""
    extra, missing = sorted(set(raw) - FORMAT_1_FIELDS), sorted(FORMAT_1_REQUIRED - set(raw))
    if extra or missing:
        said = [f"fields format 1 never wrote: {', '.join(extra)}"] if extra else []
        said += [f"fields format 1 always wrote are missing: {', '.join(missing)}"] if missing else []
        raise ValueError("; ".join(said))
    raw = dict(raw)
    codecs = {"dense": {"rotation": raw.pop("rotation"), **raw.pop("dense")}, "binary": raw.pop("binary")}
    sparse = raw.pop("sparse", None)
    if sparse is not None:
        codecs["sparse"] = sparse
    return {**raw, "format_version": FORMAT_VERSION, "codecs": codecs}
