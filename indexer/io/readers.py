"""Input readers: every format becomes ids, a (N, D) matrix, optional texts and payloads.

`.npy` and `.fvecs` are memory-mapped, so a build streams them in batches and
never holds a second full copy. Parquet and text inputs are materialised once; their
other columns (Parquet) or keys (JSONL) become payload fields (filters/values.py says
which values are allowed).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vecdial.indexer.errors import InvalidInput
from vecdial.indexer.filters.table import PayloadTable
from vecdial.indexer.io.checks import MAX_DIM, check_id_array, check_text_values, check_texts, id_array
from vecdial.indexer.vectors import Rows

FORMATS = ("npy", "fvecs", "parquet", "jsonl")


@dataclass
class Dataset:
    """ids: (N,) int64 or str; vectors: (N, D) float32/float16 rows (an array, possibly
    memory-mapped, or a view a build reads in batches: `Rows`); payloads: every row's payload
    fields, or None."""

    ids: np.ndarray
    vectors: Rows
    texts: Sequence[str | None] | None = None  # one per row, None for a row without text
    source_model: str | None = None
    payloads: PayloadTable | None = None


def read_input(path: Path, fmt: str | None = None, show_progress: bool = True) -> Dataset:
    """Read embeddings (or texts to encode) from path; fmt defaults to the file suffix."""
    path = Path(path)
    if not path.is_file():
        raise InvalidInput(f"input file {path} does not exist")
    fmt = fmt or path.suffix.lstrip(".").lower()
    readers = {"npy": read_npy, "fvecs": read_fvecs, "parquet": read_parquet, "jsonl": lambda p: read_jsonl_texts(p, show_progress)}
    if fmt not in readers:
        raise InvalidInput(f"cannot read {path}: unknown format {fmt!r}, use one of {', '.join(FORMATS)}")
    dataset = readers[fmt](path)
    check_dataset(dataset)
    return dataset


def dataset_from(
    vectors: np.ndarray | None = None,
    *,
    texts: list | None = None,
    ids: np.ndarray | list | None = None,
    path: Path | str | None = None,
    fmt: str | None = None,
    source_model: str | None = None,
    payloads: list | None = None,
    show_progress: bool = True,
) -> Dataset:
    """What `Database.create` builds from: vectors (n, dim) (with optional ids, texts and
    payloads, one per row), texts alone (encoded with the bundled model) or a file."""
    if path is not None:
        if vectors is not None or texts is not None or payloads is not None:
            raise InvalidInput("give either a file path (its other columns are payloads) or vectors/texts/payloads, not both")
        return read_input(Path(path), fmt, show_progress=show_progress)
    table = None
    if vectors is None:
        if not texts:
            raise InvalidInput("give vectors, texts to encode, or a file path")
        check_texts(texts, len(texts))
        table = None if payloads is None else PayloadTable.from_dicts(list(payloads), len(texts))  # before the (slow) encoding
        from vecdial.models.encoder import MODEL_NAME, encode_texts

        vectors, source_model = encode_texts(list(texts), show_progress=show_progress), MODEL_NAME
    try:
        with np.errstate(over="ignore"):  # past float32's range: inf, refused by the build's checks
            matrix = np.asarray(vectors) if isinstance(vectors, np.ndarray) else np.asarray(vectors, dtype=np.float32)
    except (ValueError, TypeError):
        raise InvalidInput("vectors must be a (n, dim) matrix of numbers, with rows of one length") from None
    if matrix.ndim != 2:
        raise InvalidInput(f"vectors must be a (n, dim) matrix, got shape {matrix.shape}")
    ids = np.arange(len(matrix)) if ids is None else id_array(ids)  # checked as writes' ids are
    if payloads is not None and table is None:
        table = PayloadTable.from_dicts(list(payloads), len(matrix))
    return Dataset(ids, matrix, list(texts) if texts is not None else None, source_model=source_model, payloads=table)


def check_dataset(dataset: Dataset) -> None:
    """What any build takes in, refused (InvalidInput, naming the item) before anything is written:
    a non-empty (N, D) matrix with D <= MAX_DIM, N unique ids and texts as `io/checks.py` says.
    Vector rows (finite, with a direction) are checked batch by batch as the build reads them."""
    n = len(dataset.vectors)
    if dataset.vectors.ndim != 2 or n == 0 or dataset.vectors.shape[1] == 0:
        raise InvalidInput(f"input holds no vectors (shape {dataset.vectors.shape}); expected a non-empty (N, D) matrix")
    if dataset.vectors.shape[1] > MAX_DIM:
        raise InvalidInput(f"input vectors have {dataset.vectors.shape[1]} dimensions; vecdial holds at most {MAX_DIM}: reduce them first")
    if len(dataset.ids) != n:
        raise InvalidInput(f"input has {len(dataset.ids)} ids for {n} vectors")
    check_id_array(dataset.ids, "input ids")
    if len(np.unique(dataset.ids)) != n:
        raise InvalidInput("input ids are not unique")
    if dataset.texts is not None:
        if len(dataset.texts) != n:
            raise InvalidInput(f"input has {len(dataset.texts)} texts for {n} vectors: give one text (or None) per vector")
        check_text_values(dataset.texts, "input texts")
    if dataset.payloads is not None and dataset.payloads.size != n:
        raise InvalidInput(f"input has {dataset.payloads.size} payloads for {n} vectors: give one payload (or None) per vector")


def read_npy(path: Path) -> Dataset:
    """A 2-D float32/float16 .npy, memory-mapped; ids are row numbers."""
    try:
        vectors = np.load(path, mmap_mode="r", allow_pickle=False)
    except ValueError as exc:
        raise InvalidInput(f"cannot read {path} as .npy: {exc}") from None
    if vectors.dtype not in (np.float32, np.float16):
        raise InvalidInput(f"{path} has dtype {vectors.dtype}; expected float32 or float16")
    return Dataset(np.arange(len(vectors), dtype=np.int64), vectors)


def read_fvecs(path: Path) -> Dataset:
    """The ANN-benchmark .fvecs format (int32 dim, then dim float32, per row), memory-mapped."""
    raw = np.memmap(path, dtype=np.int32, mode="r")
    if raw.size == 0:
        raise InvalidInput(f"{path} is empty")
    dim = int(raw[0])
    if dim <= 0 or raw.size % (dim + 1):
        raise InvalidInput(f"{path} is not a valid .fvecs file (first row claims dim {dim})")
    rows = raw.reshape(-1, dim + 1)
    if not (rows[:, 0] == dim).all():
        raise InvalidInput(f"{path}: rows have different dimensions; .fvecs needs one dim for all rows")
    return Dataset(np.arange(len(rows), dtype=np.int64), rows[:, 1:].view(np.float32))


def read_parquet(path: Path, vector_column: str = "vector", id_column: str = "id", text_column: str = "text") -> Dataset:
    """Parquet with a list<float> column `vector`, optional `id` and `text` columns; every other
    column is a payload field (strings, integers, floats, timestamps, lists of strings)."""
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise InvalidInput("Parquet input needs pyarrow: pip install 'vecdial[parquet]' (or give .npy, .fvecs or .jsonl)") from None
    table = pq.read_table(path)
    if vector_column not in table.column_names:
        raise InvalidInput(f"{path} has no {vector_column!r} column (columns: {', '.join(table.column_names)})")
    column = table.column(vector_column).combine_chunks()
    lengths = column.value_lengths().to_numpy(zero_copy_only=False)
    if len(lengths) and (lengths != lengths[0]).any():
        raise InvalidInput(f"{path}: vectors in {vector_column!r} have different lengths")
    flat = column.flatten().to_numpy(zero_copy_only=False).astype(np.float32, copy=False)
    vectors = flat.reshape(len(column), -1 if len(column) else 0)
    ids = _ids_from(table.column(id_column).to_pylist()) if id_column in table.column_names else np.arange(len(vectors))
    texts = table.column(text_column).to_pylist() if text_column in table.column_names else None
    others = {name: table.column(name).to_pylist() for name in table.column_names if name not in (vector_column, id_column, text_column)}
    return Dataset(ids, vectors, texts, payloads=_payloads(others, len(vectors), path))


def read_jsonl_texts(path: Path, show_progress: bool = True) -> Dataset:
    """JSONL of {"id": ..., "text": ..., other keys: payload fields}, encoded with the bundled model."""
    from vecdial.models.encoder import MODEL_NAME, encode_texts

    ids: list[object] = []  # JSON ids as given: ints and strings, made an id array by _ids_from
    texts: list[str] = []
    payloads: list[dict[str, object] | None] = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                text = record["text"]
            except (json.JSONDecodeError, KeyError, TypeError):
                raise InvalidInput(f"{path}:{number}: expected a JSON object with a 'text' field") from None
            if not isinstance(text, str) or not text.strip():
                raise InvalidInput(f"{path}:{number}: 'text' must be a non-empty string")
            ids.append(record.get("id", len(ids)))
            texts.append(text)
            payloads.append({key: value for key, value in record.items() if key not in ("id", "text")} or None)
    check_text_values(texts, f"{path}: texts")
    ids_array = _ids_from(ids)  # before the (slow) encoding
    table = PayloadTable.from_dicts(payloads, len(payloads)) if any(payloads) else None
    vectors = encode_texts(texts, show_progress=show_progress)
    return Dataset(ids_array, vectors, texts, source_model=MODEL_NAME, payloads=table)


def _payloads(columns: dict[str, list], n: int, path: Path) -> PayloadTable | None:
    if not columns:
        return None
    try:
        return PayloadTable.from_columns(columns, n)
    except InvalidInput as exc:
        raise InvalidInput(f"{path}: {exc}") from None


def _ids_from(values: list) -> np.ndarray:
    """Ints stay ints (within int64); anything else becomes strings; checked as build ids."""
    if all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in values):
        return id_array(values, "input ids")
    return id_array([str(v) for v in values], "input ids")
