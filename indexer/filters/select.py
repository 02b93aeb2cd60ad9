"""How a filter is applied to one search: inside every stage, or by scoring the matching rows.

The filter is evaluated per part (the version's rows, the write segment's rows) to the
rows it keeps, minus the deleted ones. Then one of two strategies, for the whole search:

- `rows`: few rows match (at most SELECTIVE_SHARE of the live rows, or MIN_SELECTIVE):
  gather just those rows' full vectors and score them exactly. Cheaper than any budget's
  scan of every row and exact whatever the budget (its candidate stages are skipped).
- `mask`: the filter's rows become the part's `alive` rows, the mask every store already
  honours inside its scan (FAISS selectors, the compiled loops, the postings walk), so
  every mode and stage keeps only matching rows and k hits come back whenever k match.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

import numpy as np

from vecdial.indexer.filters.match import RowSet, evaluate
from vecdial.indexer.filters.table import PayloadTable
from vecdial.indexer.filters.tree import Node
from vecdial.indexer.modes.base import Part, Query
from vecdial.indexer.stores.alive import AliveRows
from vecdial.indexer.stores.topk import topk

# Measured on WordNet (117,659 x 384, one query): scoring the 1% of rows a filter keeps
# exactly takes 0.48 ms, a binary:rescore=20 search of every row 0.76 ms, an exact one 4.7 ms;
# at 2% the exact rows cost about what the cheapest useful budget does (bench/filter_bench.py).
SELECTIVE_SHARE = 0.02
MIN_SELECTIVE = 256
# Up to FEW_QUERIES queries and FEW_ROWS rows are scored by the compiled gather (stores/kernels.py);
# more rows are copied out (np.take) and multiplied block by block: 0.48 ms against 0.77 for
# 1,177 rows of 384 dims (WordNet, one query), where the kernel's 12 scattered reads a row wait
# on memory. Batches past BLOCKWISE_QUERIES multiply row-major copies in one GEMM instead.
FEW_QUERIES = 2
FEW_ROWS = 256
BLOCKWISE_QUERIES = 8
GATHER_ROWS = 8192


@dataclass
class FilterReport:
    """What explain says about a filter: the strategy, the live rows it kept and the time it took."""

    strategy: str
    matched_rows: int
    ms: float

    def to_dict(self) -> dict:
        return {"strategy": self.strategy, "matched_rows": self.matched_rows, "ms": self.ms}


@dataclass
class Selection:
    """parts: the parts to search (with the filter in `alive`, for `mask`); rows: per part, the
    live matching rows (m,) int64 ascending; report: for explain."""

    parts: list[Part]
    rows: list[np.ndarray]
    report: FilterReport
    kept: list[RowSet] = field(default_factory=list)  # per part, the live rows the filter keeps

    @property
    def exact_rows(self) -> bool:
        return self.report.strategy == "rows"

    def masked_parts(self) -> list[Part]:
        """The parts with the filter in `alive`, whatever the strategy: for what searches beside
        the plan's stages (hybrid's lexical and sparse lists)."""
        return self.parts if not self.exact_rows else [_masked(part, k) for part, k in zip(self.parts, self.kept)]


def select(parts: list[Part], tables: list[PayloadTable], where: Node) -> Selection:
    """Evaluate a checked filter over each part (tables[i] holds parts[i]'s payloads) and pick the strategy."""
    started = time.perf_counter()
    kept = [evaluate(where, table).without(part.alive.dead if part.alive is not None else None) for part, table in zip(parts, tables)]
    matched = sum(k.count for k in kept)
    live = sum(part.live for part in parts)
    if matched <= max(SELECTIVE_SHARE * live, MIN_SELECTIVE):
        rows = [k.as_rows() for k in kept]
        return Selection(parts, rows, FilterReport("rows", matched, _ms(started)), kept)
    masked = [_masked(part, k) for part, k in zip(parts, kept)]
    return Selection(masked, [], FilterReport("mask", matched, _ms(started)))


def _masked(part: Part, kept: RowSet) -> Part:
    return replace(part, alive=AliveRows(~kept.as_mask()))


def score_rows(part: Part, query: Query, rows: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, int]:
    """The best k of `rows` (m,) by exact cosine over every dim -> rows (nq, k') int64, scores
    (nq, k') float32 (k' = min(k, m)), bytes read per query."""
    dense = part.stores.store("dense").blocks
    nq, m = len(query.unit), len(rows)
    if m == 0:
        return np.zeros((nq, 0), dtype=np.int64), np.zeros((nq, 0), dtype=np.float32), 0
    if nq <= FEW_QUERIES and m <= FEW_ROWS:
        scores = dense.score_rows(query.rotated, np.ascontiguousarray(np.broadcast_to(rows, (nq, m))), dense.dim)
    else:
        n_blocks, _, block = dense.blocks.shape
        padded = np.zeros((nq, n_blocks * block), dtype=np.float32)
        padded[:, : dense.dim] = query.rotated[:, : dense.dim]
        by_block = np.ascontiguousarray(padded.reshape(nq, n_blocks, block).transpose(1, 2, 0))  # (n_blocks, block, nq)
        scores = np.empty((nq, m), dtype=np.float32)
        for start in range(0, m, GATHER_ROWS):  # bounded copies: GATHER_ROWS full rows at a time
            chunk = rows[start : start + GATHER_ROWS]
            gathered = np.take(dense.blocks, chunk, axis=1).astype(np.float32, copy=False)  # (n_blocks, c, block)
            norms = np.sqrt(np.maximum(np.asarray(dense.prefix_sq[-1][chunk], dtype=np.float32), 1e-24))
            if nq <= BLOCKWISE_QUERIES:  # a product per block: no row-major copy of the rows
                dots = np.matmul(gathered, by_block).sum(axis=0).T
            else:  # one GEMM over row-major copies: (n_blocks, c, nq) partial sums would be larger still
                dots = padded @ gathered.transpose(1, 0, 2).reshape(len(chunk), -1).T
            scores[:, start : start + len(chunk)] = dots / norms
    positions, best = topk(scores, k)
    return rows[np.maximum(positions, 0)], best, m * dense.bytes_per_vector(dense.dim)


def _ms(since: float) -> float:
    return round((time.perf_counter() - since) * 1000, 3)
