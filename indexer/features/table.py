"""The feature table of a sparse autoencoder: per unit its label, top documents and frequency.

Computed once at build from the codes of every row (see ``labels.feature_table``) and
stored beside the version's postings as three small arrays and one JSON file, so a
search can name the features of a query and its hits without touching the texts.
Rows are the version's row numbers (its storage order); the version's ids map them.

Also here: the codes of every row as a scipy CSR matrix, rebuilt from what a version
already stores (the rank-ordered postings of ``stores/sparse.py``) or from top-k codes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import scipy.sparse as sp

FORMAT_VERSION = 1
TOP_ROWS_FILE = "features_top_rows.npy"
TOP_ACTIVATIONS_FILE = "features_top_activations.npy"
FREQUENCY_FILE = "features_frequency.npy"
LABELS_FILE = "features.json"
FILES = (TOP_ROWS_FILE, TOP_ACTIVATIONS_FILE, FREQUENCY_FILE, LABELS_FILE)


@dataclass
class FeatureTable:
    """What each of the autoencoder's `units` stands for, read off the rows that activate it.

    top_rows: (units, top) int64, each unit's most-activating rows, best first (-1 pads
        units active in fewer than `top` rows).
    top_activations: (units, top) float32, their activations (0 pads).
    frequency: (units,) float32, share of rows where the unit is active; 0 is a dead unit.
    terms: per unit its label's terms, most distinctive first (empty for dead units).
    term_scores: per unit the c-TF-IDF score of each term (same lengths as `terms`).
    """

    top_rows: np.ndarray
    top_activations: np.ndarray
    frequency: np.ndarray
    terms: list[list[str]]
    term_scores: list[list[float]]

    @property
    def units(self) -> int:
        return len(self.frequency)

    @property
    def dead(self) -> np.ndarray:
        """(units,) bool: units active in no row (no label, no documents, never steered to)."""
        return self.frequency <= 0

    @property
    def live_units(self) -> np.ndarray:
        """(live,) int64 ids of the units active in at least one row."""
        return np.flatnonzero(~self.dead)

    @property
    def labels(self) -> list[str]:
        """One readable label per unit: its terms joined by ", " ("" for dead units)."""
        return [", ".join(t) for t in self.terms]

    def label(self, unit: int) -> str:
        return ", ".join(self.terms[unit])

    def top_documents(self, unit: int) -> tuple[np.ndarray, np.ndarray]:
        """(rows (m,) int64, activations (m,) float32) of one unit, best first, m <= top."""
        keep = self.top_rows[unit] >= 0
        return self.top_rows[unit][keep], self.top_activations[unit][keep]

    def distinct_label_share(self) -> float:
        """Distinct labels among live units over live units: 1.0 when no two live units share one."""
        live = [self.label(u) for u in self.live_units.tolist()]
        return len(set(live)) / max(len(live), 1)

    def save(self, directory: str | Path) -> list[str]:
        """Write the table into `directory` (e.g. a staged version); returns the file names written.

        Three .npy arrays and one JSON file; no pickle. Size: units x top x 12 bytes
        plus the labels (about 110 KB for 3,072 units and top 10).
        """
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        np.save(directory / TOP_ROWS_FILE, np.ascontiguousarray(self.top_rows, dtype=np.int64))
        np.save(directory / TOP_ACTIVATIONS_FILE, np.ascontiguousarray(self.top_activations, dtype=np.float32))
        np.save(directory / FREQUENCY_FILE, np.ascontiguousarray(self.frequency, dtype=np.float32))
        body = {
            "format_version": FORMAT_VERSION,
            "units": self.units,
            "terms": self.terms,
            "term_scores": [[round(float(s), 6) for s in scores] for scores in self.term_scores],
        }
        (directory / LABELS_FILE).write_text(json.dumps(body, ensure_ascii=False), encoding="utf-8")
        return list(FILES)

    @classmethod
    def load(cls, directory: str | Path, mmap: bool = False) -> FeatureTable:
        """Read a table written by :meth:`save`; ValueError if its parts disagree."""
        directory = Path(directory)
        mode: Literal["r"] | None = "r" if mmap else None
        top_rows, top_activations, frequency = (np.load(directory / name, mmap_mode=mode, allow_pickle=False) for name in FILES[:3])
        body = json.loads((directory / LABELS_FILE).read_text(encoding="utf-8"))
        if int(body.get("format_version", 0)) > FORMAT_VERSION:
            raise ValueError(f"{directory / LABELS_FILE} has format_version {body['format_version']}: upgrade vecdial")
        table = cls(top_rows, top_activations, frequency, terms=body["terms"], term_scores=body["term_scores"])
        table.check()
        return table

    def check(self) -> None:
        """ValueError unless every part describes the same units."""
        units = self.units
        if self.top_rows.shape != self.top_activations.shape or self.top_rows.ndim != 2 or len(self.top_rows) != units:
            raise ValueError(
                f"feature table parts disagree: top_rows {self.top_rows.shape}, "
                f"top_activations {self.top_activations.shape}, frequency ({units},)"
            )
        if len(self.terms) != units or len(self.term_scores) != units:
            raise ValueError(f"feature table has {len(self.terms)} labels for {units} units")


def codes_from_topk(indices: np.ndarray, values: np.ndarray, units: int) -> sp.csr_matrix:
    """Top-k codes (indices (N, k) int, values (N, k) float32, as ``encode_topk`` returns them)
    -> CSR (N, units) float32 of activations; zero values (ReLU'd units) are dropped."""
    n, k = indices.shape
    keep = values.reshape(-1) > 0
    rows = np.repeat(np.arange(n, dtype=np.int64), k)[keep]
    codes = sp.csr_matrix(
        (values.reshape(-1)[keep].astype(np.float32), (rows, indices.reshape(-1)[keep].astype(np.int64))),
        shape=(n, units),
    )
    codes.sum_duplicates()
    return codes


def codes_from_postings(indptr: np.ndarray, docs: np.ndarray, values: np.ndarray, rows: int) -> sp.csr_matrix:
    """The codes of every row, from a version's postings (``sparse_indptr/docs/values.npy``).

    Postings are CSR over units, i.e. the codes transposed: indptr (units+1,) int64,
    docs (nnz,) int32, values (nnz,) float32 -> CSR (rows, units) float32.
    """
    units = len(indptr) - 1
    by_unit = sp.csr_matrix(
        (np.asarray(values, dtype=np.float32), np.asarray(docs, dtype=np.int64), np.asarray(indptr, dtype=np.int64)),
        shape=(units, rows),
    )
    codes = by_unit.T.tocsr()
    codes.sort_indices()
    return codes


def hit_codes_from_postings(
    indptr: np.ndarray, docs: np.ndarray, values: np.ndarray, query_units: np.ndarray, hit_rows: np.ndarray
) -> sp.csr_matrix:
    """The hits' activations on the query's units, read from a version's postings.

    Only units active in the query can be shared, so this reads just their posting lists
    (no row -> code table is stored). query_units: (a,) the query's active units;
    hit_rows: (h,) version rows (-1 allowed, matches nothing). Returns CSR (h, units)
    float32 with non-zeros only on `query_units`: enough for :func:`shared_features`.
    """
    units = len(indptr) - 1
    hit_rows = np.asarray(hit_rows, dtype=np.int64)
    out_rows, out_units, out_values = [], [], []
    for unit in np.unique(np.asarray(query_units, dtype=np.int64)).tolist():
        start, stop = int(indptr[unit]), int(indptr[unit + 1])
        listed = np.asarray(docs[start:stop], dtype=np.int64)
        if len(listed) == 0:
            continue
        order = np.argsort(listed, kind="stable")
        ranked = listed[order]
        where = np.minimum(np.searchsorted(ranked, hit_rows), len(ranked) - 1)
        hits = np.flatnonzero(ranked[where] == hit_rows)
        out_rows.append(hits)
        out_units.append(np.full(len(hits), unit, dtype=np.int64))
        out_values.append(np.asarray(values[start:stop], dtype=np.float32)[order[where[hits]]])
    if not out_rows:
        return sp.csr_matrix((len(hit_rows), units), dtype=np.float32)
    return sp.csr_matrix(
        (np.concatenate(out_values), (np.concatenate(out_rows), np.concatenate(out_units))),
        shape=(len(hit_rows), units),
    )
