"""An HNSW graph over the RaBitQ codes (FAISS `IndexHNSWRaBitQ`), for `rabitq:ef=E` budgets.

Cells (codecs/partition.py) are learned from the documents, so they cap recall where
queries are unlike documents: on WordNet (lemma queries, gloss documents) probed budgets
stop near R@10 0.92-0.946 and every setting at 0.95 scans every code. A graph walks from
the query itself, so its recall does not depend on where queries fall; each step reads a
56-byte code (384 dims) and one list of links, and a search reads a few thousand rows.

The links are chosen with exact distances (an `IndexHNSWFlat` built beside the codes, then
moved onto them): a graph linked by the 1-bit estimates loses its nearest-neighbour
structure where the estimate errs. Measured on 117k synthetic 384-d rows whose queries sit
off the documents, 16 links a row: FAISS's own IndexHNSWRaBitQ (linked by estimates) reached
R@10 0.891 at efSearch 256 with a shortlist of 5 x k rescored, where exact links alone (no codes,
no rescoring) reached 0.957; on the 2k demo corpus the two linkings tied (0.994 at ef 256,
R=5), at the same build time. Searches walk over the codes only (no float vector is read
until rescoring). Row r is node r, so
deletions and filters are a FAISS row selector inside the walk, and the walk keeps only live
rows; when a selector leaves too few live rows near the query, the walk is retried wider and
then the flat code scan answers those queries, so a search never returns fewer hits than exist.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from vecdial.indexer.errors import CorruptIndex
from vecdial.indexer.stores.alive import AliveRows

GRAPH_FILE = "graph.faiss"
TYPE_TAG = b"IHNr"  # FAISS's tag for IndexHNSWRaBitQ
# Candidates kept while inserting a row (HNSW's efConstruction). 40 is FAISS's default.
EF_CONSTRUCTION = 40
# Query bits of the RaBitQ estimate during the walk (FAISS default 4). 8 ranks the walk's
# candidates closer to their true order at the same code size.
QUERY_BITS = 8
# A walk whose selector leaves fewer than `keep` live rows is retried this much wider, once.
RETRY_WIDEN = 4


def check_graph(directory: Path, count: int) -> None:
    """Check the graph file's FAISS type tag and that it is present, without reading it."""
    path = directory / GRAPH_FILE
    with open(path, "rb") as handle:
        tag = handle.read(4)
    if tag != TYPE_TAG:
        raise CorruptIndex(f"{path}: not an IndexHNSWRaBitQ (type tag {tag!r}); rebuild the index")


class GraphBuilder:
    """Links rows as they come (exact distances), codes them, writes the graph at the end.

    links: HNSW's M (level 0 keeps 2M links a row); sample: (s, dim) unit rows the codes'
    centre is fitted on. Holds every input row in RAM while building (n x dim float32).
    """

    def __init__(self, dim: int, links: int, sample: np.ndarray):
        self.links = links
        self.exact: faiss.IndexHNSWFlat | None = faiss.IndexHNSWFlat(dim, links, faiss.METRIC_L2)  # unit rows: L2 order is cosine order
        self.exact.hnsw.efConstruction = EF_CONSTRUCTION
        self.index = faiss.IndexHNSWRaBitQ(dim, links)
        self.index.train(np.ascontiguousarray(sample, dtype=np.float32))

    def add(self, start: int, unit: np.ndarray) -> None:
        """Rows start.. as (b, dim) float32 unit vectors, in order."""
        if self.exact is None:
            raise ValueError("the graph is written: no rows can be added")
        if start != self.exact.ntotal:
            raise ValueError(f"graph rows are added in order: got rows from {start}, expected {self.exact.ntotal}")
        x = np.ascontiguousarray(unit, dtype=np.float32)
        self.exact.add(x)
        faiss.downcast_index(self.index.storage).add(x)

    def finish(self, directory: Path) -> None:
        """Move the exact links onto the codes and write the graph file."""
        if self.exact is None:
            raise ValueError("the graph is written already")
        self.index.hnsw = self.exact.hnsw
        self.index.ntotal = self.exact.ntotal
        self.exact = None
        faiss.write_index(self.index, str(directory / GRAPH_FILE))


@dataclass
class GraphStore:
    """index: the graph over every row's code, row r at node r; links: HNSW's M."""

    index: faiss.IndexHNSWRaBitQ
    code_bytes: int
    links: int
    _params: dict = field(default_factory=dict, repr=False)  # ef -> SearchParametersHNSW without a selector
    _stats: Any = field(default_factory=lambda: faiss.cvar.hnsw_stats, repr=False)  # type: ignore[attr-defined]  # faiss's stubs omit it

    @property
    def size(self) -> int:
        return int(self.index.ntotal)

    @classmethod
    def open(cls, directory: Path, count: int, dim: int) -> GraphStore:
        """The graph of a version directory (reads the whole file)."""
        path = directory / GRAPH_FILE
        try:
            index = faiss.read_index(str(path))
        except RuntimeError as exc:
            raise CorruptIndex(f"{path}: not a readable graph ({str(exc).splitlines()[-1]}); rebuild the index") from None
        if not isinstance(index, faiss.IndexHNSWRaBitQ) or index.ntotal != count or index.d != dim:
            raise CorruptIndex(
                f"{path}: a {type(index).__name__} of {index.ntotal} rows of dim {index.d}, expected an IndexHNSWRaBitQ of {count} of {dim}; rebuild the index"
            )
        storage = faiss.downcast_index(index.storage)
        assert isinstance(storage, faiss.IndexRaBitQ)  # FAISS reads an IndexHNSWRaBitQ's codes as one
        storage.qb = QUERY_BITS
        links = int(index.hnsw.nb_neighbors(1))  # type: ignore[attr-defined]  # faiss's stubs omit HNSW.nb_neighbors
        return cls(index, int(storage.code_size), links)  # type: ignore[attr-defined]  # faiss's stubs omit IndexFlatCodes.code_size

    def search(self, unit: np.ndarray, keep: int, ef: int, alive: AliveRows | None) -> tuple[np.ndarray, np.ndarray, int, np.ndarray]:
        """The best `keep` live rows by estimated cosine that a walk keeping `ef` candidates finds.

        unit: (nq, dim) float32 unit queries -> rows (nq, keep) int64 (-1 pad), scores (nq, keep)
        float32 (-inf pad), bytes of codes and links read (all queries), and short: (nq,) bool,
        the queries that still found fewer than min(keep, live rows) (a selector that leaves
        few live rows near them): the caller answers those another way.
        """
        x = np.ascontiguousarray(unit, dtype=np.float32)
        rows, scores, read = self._walk(x, keep, max(ef, keep), alive)
        need = min(keep, self.size if alive is None else alive.count)  # FAISS pads a short result at its end
        short = rows[:, need - 1] < 0 if need else np.zeros(len(rows), dtype=bool)
        if short.any():
            again = np.flatnonzero(short)
            more_rows, more_scores, more = self._walk(x[again], keep, max(ef, keep) * RETRY_WIDEN, alive)
            rows[again], scores[again], read = more_rows, more_scores, read + more
            short[again] = more_rows[:, need - 1] < 0
        return rows, scores, read, short

    def _walk(self, x: np.ndarray, keep: int, ef: int, alive: AliveRows | None) -> tuple[np.ndarray, np.ndarray, int]:
        """x: (nq, dim) float32, C-contiguous. Straight into FAISS's search_c, as BinaryStore.search_one:
        its numpy wrapper's checks cost more than a short walk."""
        if alive is not None and alive.count < alive.dead.size:
            params = faiss.SearchParametersHNSW()  # type: ignore[attr-defined]  # faiss's stubs omit it
            params.efSearch, params.sel = ef, alive.selector
        else:  # the same few breadths repeat: one parameter object each
            params = self._params.get(ef)
            if params is None:
                params = self._params[ef] = faiss.SearchParametersHNSW()  # type: ignore[attr-defined]  # faiss's stubs omit it
                params.efSearch = ef
        stats = self._stats
        before_dis, before_hops = stats.ndis, stats.nhops
        distances = np.empty((len(x), keep), dtype=np.float32)
        rows = np.empty((len(x), keep), dtype=np.int64)
        search = self.index.search_c  # type: ignore[attr-defined]  # faiss's stubs omit search_c
        search(len(x), faiss.swig_ptr(x), keep, faiss.swig_ptr(distances), faiss.swig_ptr(rows), params)
        # FAISS sums these per search; searches on other threads at the same time add theirs.
        read = (stats.ndis - before_dis) * self.code_bytes + (stats.nhops - before_hops) * 2 * self.links * 4
        scores = 1.0 - 0.5 * distances  # float32; unit rows: |q - x|^2 = 2 - 2 cos
        scores[rows < 0] = -np.inf
        return rows, scores, int(read)
