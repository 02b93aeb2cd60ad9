"""The registry of the peers bench's systems: vecdial (through the front door) and its peers."""

from __future__ import annotations

import tempfile
from pathlib import Path

import faiss
import numpy as np

from bench.peers.systems import (
    VECDIAL_BUDGETS,
    BinaryFlat,
    Flat,
    HnswRaBitQRefine,
    HnswSQ8,
    IvfPQ,
    IvfRaBitQ,
    IvfRaBitQFastScan,
    K,
    Peer,
    Setting,
    STBinaryInt8,
    USearchI8,
    _quantize_embeddings,
    threads,
)

# --- vecdial, through the front door ---------------------------------------------------------


class Vecdial(Peer):
    key, name = "vecdial", "vecdial"

    def __init__(self, budgets: list[str] | None = None, data_dir: str | None = None, graph: int = 16, **kwargs):
        super().__init__(**kwargs)
        self.budgets = list(budgets or VECDIAL_BUDGETS)
        self.data_dir, self.graph = data_dir, graph

    def build(self, docs):
        import vecdial

        if self.data_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="vecdial-peers-")
            self.data_dir = self._tmp.name
        settings = vecdial.BuildSettings(graph=self.graph)  # the graph for rabitq:...,ef=E budgets (0: none)
        with threads(self.build_threads):
            self.col = vecdial.connect(Path(self.data_dir)).create(
                "peers",
                vectors=np.ascontiguousarray(docs),
                ids=np.arange(len(docs), dtype=np.int64),
                settings=settings,
                show_progress=False,
            )

    def settings(self):
        """The budgets this collection answers; one that fails to parse or to search is skipped with a note."""
        out = []
        probe = np.zeros((1, self.col.info().dim), dtype=np.float32)
        probe[0, 0] = 1.0
        for budget in self.budgets:
            try:
                self.col.search(probe, k=K, budget=budget)
            except Exception as exc:  # noqa: BLE001 - any failure means: not measurable here
                self.notes.append(f"vecdial budget {budget!r} skipped: {type(exc).__name__}: {exc}")
                continue
            out.append(Setting(budget, {"budget": budget}))
        return out

    def searcher(self, knobs):
        from bench.front_door import hit_ids

        col, budget = self.col, knobs["budget"]
        return lambda q: hit_ids(col.search(q, k=K, budget=budget))

    def save(self, folder):
        (folder / "data_dir").write_text(str(self.data_dir))

    def load(self, folder):
        from bench.front_door import open_collection

        self.data_dir = (folder / "data_dir").read_text()
        self.col = open_collection(Path(self.data_dir), "peers")


PEERS: dict[str, type[Peer]] = {
    cls.key: cls
    for cls in (Flat, HnswSQ8, HnswRaBitQRefine, IvfPQ, IvfRaBitQ, IvfRaBitQFastScan, BinaryFlat, USearchI8, STBinaryInt8, Vecdial)
}


def available(key: str) -> str | None:
    """None if the peer can run in this environment, else why not."""
    if key == "usearch-i8":
        try:
            import usearch.index  # noqa: F401
        except ImportError:
            return "usearch is not installed (pip install 'vecdial[bench]'): skipped"
    if key == "hnsw-rabitq-refine" and not hasattr(faiss, "IndexHNSWRaBitQ"):
        return f"faiss {faiss.__version__} has no IndexHNSWRaBitQ: skipped"
    if key == "ivf-rabitq-refine" and not hasattr(faiss, "IndexIVFRaBitQ"):
        return f"faiss {faiss.__version__} has no IndexIVFRaBitQ: skipped"
    if key == "ivf-rabitq-fs-refine" and not hasattr(faiss, "IndexIVFRaBitQFastScan"):
        return f"faiss {faiss.__version__} has no IndexIVFRaBitQFastScan: skipped"
    if key == "st-binary-int8":
        try:
            _quantize_embeddings()
        except ImportError:
            return "sentence-transformers is not installed: skipped"
    return None
