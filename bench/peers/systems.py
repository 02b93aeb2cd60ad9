"""The peer systems of the peers bench: one class per system, each with its grid of search knobs.

A peer builds from (n, dim) float32 unit rows, lists its settings (label + knobs),
hands out one search callable per setting (queries (nq, dim) -> ids (nq, K)),
and saves/loads its built state so a fresh process can measure its RAM.
Search knobs go in per call (FAISS SearchParameters) where the library allows it.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import faiss
import numpy as np
from threadpoolctl import threadpool_limits

from bench.overhead_bench import BinaryRescore

K = 10
Search = Callable[[np.ndarray], np.ndarray]
# vecdial budgets run by default; new budget kinds (partition probes, RaBitQ codes) go here or on
# the command line, and ones this vecdial does not know yet are skipped with a note.
VECDIAL_BUDGETS = [
    "exact",
    "dense:dim=32",
    "dense:dim=64",
    "dense:dim=128",
    "dense:dim=256",
    "binary:rescore=0",
    "binary:rescore=2",
    "binary:rescore=5",
    "binary:rescore=10",
    "binary:rescore=20",
    "binary:rescore=40",
    "funnel:binary*40>128*10>full",
    # partitioned: only the cells nearest each query (collections of 1,024+ rows have cells)
    "dense:dim=64,probe=0.1",
    "binary:rescore=20,probe=0.1",
    "binary:rescore=40,probe=0.3",
    "funnel:binary*40>128*5>full,probe=0.2",
    "rabitq:rescore=0",
    "rabitq:rescore=2",
    "rabitq:rescore=5",
    "rabitq:rescore=10",
    "rabitq:rescore=20",
    "rabitq:rescore=10,probe=0.1",
    "rabitq:rescore=10,probe=0.2",
    "rabitq:rescore=20,probe=0.3",
    # the graph over the RaBitQ codes (built with --vecdial-graph links a row)
    "rabitq:rescore=2,ef=32",
    "rabitq:rescore=2,ef=64",
    "rabitq:rescore=5,ef=64",
    "rabitq:rescore=5,ef=128",
    "rabitq:rescore=10,ef=128",
    "rabitq:rescore=10,ef=256",
    "rabitq:rescore=20,ef=256",
    "rabitq:rescore=20,ef=512",
    "sparse:active=32",
    "sparse:active=64",
]

# Knob grids; "small" is for the 1M set, where each setting costs more and builds are slow.
GRIDS = {
    "full": {
        "ef": [16, 32, 64, 128, 256, 512, 1024],
        # WordNet's queries (short lemmas) sit off the documents (glosses): IVF needs many lists.
        "nprobe": [8, 16, 32, 64, 128, 256, 512],
        "k_factor": [2, 4, 10],
        "rescore": [1, 2, 5, 10, 20, 40],
    },
    "small": {
        "ef": [32, 64, 128, 256, 512],
        "nprobe": [16, 64, 256, 512],
        "k_factor": [4, 10],
        "rescore": [2, 5, 10, 20, 40],
    },
}


@dataclass
class Setting:
    label: str
    knobs: dict = field(default_factory=dict)


@contextmanager
def threads(n: int) -> Iterator[None]:
    """Run a build on n threads (FAISS and BLAS), then return to one."""
    faiss.omp_set_num_threads(n)
    try:
        with threadpool_limits(n):
            yield
    finally:
        faiss.omp_set_num_threads(1)


class Peer:
    key = ""
    name = ""

    def __init__(self, grid: str = "full", build_threads: int = 1, **_: object):
        self.grid_name, self.build_threads = grid, build_threads
        self.grid = GRIDS[grid]
        self.notes: list[str] = []
        self.build_extra_s = 0.0  # shared work (coarse k-means) charged to this peer's build time

    def build(self, docs: np.ndarray) -> None:
        raise NotImplementedError

    def settings(self) -> list[Setting]:
        raise NotImplementedError

    def searcher(self, knobs: dict) -> Search:
        raise NotImplementedError

    def save(self, folder: Path) -> None:
        faiss.write_index(self.index, str(folder / "index.faiss"))

    def load(self, folder: Path) -> None:
        self.index = faiss.read_index(str(folder / "index.faiss"))


class Flat(Peer):
    key, name = "flat", "faiss IndexFlatIP"

    def build(self, docs):
        self.index = faiss.IndexFlatIP(docs.shape[1])
        self.index.add(docs)

    def settings(self):
        return [Setting("exact")]

    def searcher(self, knobs):
        index = self.index
        return lambda q: index.search(q, K)[1]


class HnswSQ8(Peer):
    key, name = "hnsw-sq8", "faiss HNSW32,SQ8"

    def build(self, docs):
        with threads(self.build_threads):
            self.index = faiss.IndexHNSWSQ(docs.shape[1], faiss.ScalarQuantizer.QT_8bit, 32, faiss.METRIC_INNER_PRODUCT)
            self.index.train(docs)
            self.index.add(docs)

    def settings(self):
        return [Setting(f"efSearch={ef}", {"ef": ef}) for ef in self.grid["ef"]]

    def searcher(self, knobs):
        index, params = self.index, faiss.SearchParametersHNSW(efSearch=knobs["ef"])
        return lambda q: index.search(q, K, params=params)[1]


class HnswRaBitQRefine(Peer):
    """FAISS's graph over RaBitQ codes (IndexHNSWRaBitQ, M=32, 1 bit a dim, links chosen by the
    codes' estimates as FAISS builds them) in IndexRefineFlat: the float rows rescore k x k_factor."""

    key, name = "hnsw-rabitq-refine", "faiss HNSW32-RaBitQ + refine"

    def build(self, docs):
        with threads(self.build_threads):
            self.base = faiss.IndexHNSWRaBitQ(docs.shape[1], 32)  # L2 only: on unit rows, the cosine order
            self.index = faiss.IndexRefineFlat(self.base)
            self.index.train(docs)
            self.index.add(docs)

    def settings(self):
        return [Setting(f"efSearch={ef},k_factor={f}", {"ef": ef, "k_factor": f}) for ef in self.grid["ef"] for f in self.grid["k_factor"]]

    def searcher(self, knobs):
        index = self.index
        params = faiss.IndexRefineSearchParameters(
            k_factor=knobs["k_factor"], base_index_params=faiss.SearchParametersHNSW(efSearch=knobs["ef"])
        )
        return lambda q: index.search(q, K, params=params)[1]

    def load(self, folder):
        super().load(folder)
        self.base = faiss.downcast_index(self.index.base_index)


# --- IVF peers: one coarse quantizer (k-means) per run, shared, its time charged to each ------

_CENTROIDS: dict[tuple, tuple[np.ndarray, float]] = {}


def nlist_for(n: int) -> int:
    return max(8, int(round(4 * math.sqrt(n))))


def coarse_centroids(docs: np.ndarray, nlist: int, build_threads: int) -> tuple[np.ndarray, float]:
    """(nlist, dim) spherical k-means centroids on a sample of 50 points per list, and the seconds taken."""
    key = (id(docs), len(docs), nlist)
    if key not in _CENTROIDS:
        started = time.perf_counter()
        rng = np.random.default_rng(1234)
        sample = docs[np.sort(rng.choice(len(docs), min(len(docs), 50 * nlist), replace=False))]
        with threads(build_threads):
            kmeans = faiss.Kmeans(docs.shape[1], nlist, niter=10, spherical=True, seed=1234, max_points_per_centroid=50)
            kmeans.train(np.ascontiguousarray(sample, dtype=np.float32))
        _CENTROIDS.clear()
        _CENTROIDS[key] = (kmeans.centroids.copy(), time.perf_counter() - started)
    return _CENTROIDS[key]


class IvfRefine(Peer):
    """An IVF index over a shared coarse quantizer, wrapped in IndexRefineFlat (float32 rows in RAM)."""

    def make_base(self, quantizer, dim: int, nlist: int):
        raise NotImplementedError

    def ivf_params(self, nprobe: int):
        params = faiss.SearchParametersIVF()
        params.nprobe = nprobe
        return params

    def build(self, docs):
        n, dim = docs.shape
        self.nlist = nlist_for(n)
        centroids, seconds = coarse_centroids(docs, self.nlist, self.build_threads)
        self.build_extra_s = seconds
        with threads(self.build_threads):
            quantizer = faiss.IndexFlatIP(dim)
            quantizer.add(centroids)
            self.base = self.make_base(quantizer, dim, self.nlist)
            self.index = faiss.IndexRefineFlat(self.base)
            rng = np.random.default_rng(99)
            train = docs[np.sort(rng.choice(n, min(n, 100_000), replace=False))]
            self.index.train(np.ascontiguousarray(train))
            self.index.add(docs)

    def settings(self):
        return [
            Setting(f"nprobe={p},k_factor={f}", {"nprobe": p, "k_factor": f})
            for p in self.grid["nprobe"]
            if p <= getattr(self, "nlist", p)
            for f in self.grid["k_factor"]
        ]

    def searcher(self, knobs):
        index = self.index
        params = faiss.IndexRefineSearchParameters(k_factor=knobs["k_factor"], base_index_params=self.ivf_params(knobs["nprobe"]))
        return lambda q: index.search(q, K, params=params)[1]

    def load(self, folder):
        super().load(folder)
        self.base = faiss.downcast_index(self.index.base_index)
        self.nlist = self.base.nlist


class IvfPQ(IvfRefine):
    key, name = "ivfpq-refine", "faiss IVF-PQ48 + refine"

    def make_base(self, quantizer, dim, nlist):
        return faiss.IndexIVFPQ(quantizer, dim, nlist, 48 if dim % 48 == 0 else dim // 8, 8, faiss.METRIC_INNER_PRODUCT)


class IvfRaBitQ(IvfRefine):
    key, name = "ivf-rabitq-refine", "faiss IVF-RaBitQ + refine"

    def make_base(self, quantizer, dim, nlist):
        return faiss.IndexIVFRaBitQ(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)

    def ivf_params(self, nprobe):
        params = faiss.IVFRaBitQSearchParameters()
        params.nprobe, params.qb = nprobe, self.base.qb  # the index's own query quantisation (4 bits)
        return params


class IvfRaBitQFastScan(IvfRefine):
    key, name = "ivf-rabitq-fs-refine", "faiss IVF-RaBitQ FastScan + refine"

    def make_base(self, quantizer, dim, nlist):
        return faiss.IndexIVFRaBitQFastScan(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)


# --- sign bits + rescoring -------------------------------------------------------------------


class BinaryFlat(Peer):
    """overhead_bench's BinaryRescore: IndexBinaryFlat on sign bits, float32 rows in RAM rescore k*m."""

    key, name = "binary-rescore", "faiss IndexBinaryFlat + rescore"

    def build(self, docs):
        self.recipe = BinaryRescore(np.ascontiguousarray(docs, dtype=np.float32))

    def settings(self):
        return [Setting(f"rescore={m}", {"rescore": m}) for m in self.grid["rescore"]]

    def searcher(self, knobs):
        recipe = copy.copy(self.recipe)
        recipe.rescore = knobs["rescore"]
        return lambda q: recipe.search(q, K)[1]

    def save(self, folder):
        faiss.write_index_binary(self.recipe.index, str(folder / "codes.faiss"))
        np.save(folder / "unit.npy", self.recipe.unit)

    def load(self, folder):
        self.recipe = BinaryRescore.__new__(BinaryRescore)
        self.recipe.index = faiss.read_index_binary(str(folder / "codes.faiss"))
        self.recipe.unit, self.recipe.rescore = np.load(folder / "unit.npy"), 1


def _quantize_embeddings():
    try:
        from sentence_transformers.util.quantization import quantize_embeddings
    except ImportError:
        from sentence_transformers.quantization import quantize_embeddings
    return quantize_embeddings


class STBinaryInt8(Peer):
    """sentence-transformers' retrieve-and-rescore recipe: quantize_embeddings to "ubinary" for a
    Hamming index (IndexBinaryFlat) and to "int8" (ranges from the corpus) for rescoring; the float
    query rescoring k*m candidates against their int8 rows. Scores are q . (code * step): per-dimension
    offsets of the dequantisation add the same constant to every candidate, so the order is the
    dequantised one."""

    key, name = "st-binary-int8", "sentence-transformers ubinary + int8 rescore"

    def build(self, docs):
        quantize = _quantize_embeddings()
        docs = np.asarray(docs, dtype=np.float32)
        codes = quantize(docs, "ubinary")
        self.index = faiss.IndexBinaryFlat(codes.shape[1] * 8)
        self.index.add(codes)
        self.ranges = np.vstack((docs.min(axis=0), docs.max(axis=0))).astype(np.float32)
        self.int8 = quantize(docs, "int8", ranges=self.ranges)

    def settings(self):
        return [Setting(f"rescore_multiplier={m}", {"rescore": m}) for m in self.grid["rescore"]]

    def searcher(self, knobs):
        quantize, index, int8 = _quantize_embeddings(), self.index, self.int8
        steps = (self.ranges[1] - self.ranges[0]) / 255
        steps = np.where(steps == 0, 1, steps).astype(np.float32)
        take = min(K * knobs["rescore"], index.ntotal)

        def search(q: np.ndarray) -> np.ndarray:
            _, candidates = index.search(quantize(q, "ubinary"), take)
            scores = np.matmul(int8[candidates].astype(np.float32), (q * steps)[:, :, None])[:, :, 0]
            order = np.argsort(-scores, axis=1)[:, :K]
            return np.take_along_axis(candidates, order, axis=1)

        return search

    def save(self, folder):
        faiss.write_index_binary(self.index, str(folder / "codes.faiss"))
        np.save(folder / "int8.npy", self.int8)
        np.save(folder / "ranges.npy", self.ranges)

    def load(self, folder):
        self.index = faiss.read_index_binary(str(folder / "codes.faiss"))
        self.int8, self.ranges = np.load(folder / "int8.npy"), np.load(folder / "ranges.npy")


class USearchI8(Peer):
    key, name = "usearch-i8", "usearch HNSW (M=32) i8"

    def build(self, docs):
        from usearch.index import Index

        self.index = Index(ndim=docs.shape[1], metric="cos", dtype="i8", connectivity=32)
        self.index.add(np.arange(len(docs), dtype=np.uint64), np.ascontiguousarray(docs), threads=self.build_threads)

    def settings(self):
        return [Setting(f"expansion_search={ef}", {"ef": ef}) for ef in self.grid["ef"]]

    def searcher(self, knobs):
        index, ef = self.index, knobs["ef"]

        def search(q: np.ndarray) -> np.ndarray:
            index.expansion_search = ef
            keys = index.search(q, K, threads=1).keys
            return np.atleast_2d(keys).astype(np.int64)

        return search

    def save(self, folder):
        self.index.save(str(folder / "index.usearch"))

    def load(self, folder):
        from usearch.index import Index

        self.index = Index.restore(str(folder / "index.usearch"))
