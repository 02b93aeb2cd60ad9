"""Document and query vectors of the bench sets, by name, as the benches need them."""

from __future__ import annotations

import numpy as np

SETS = ("demo", "wordnet")


def load_vectors(name: str) -> tuple[np.ndarray, np.ndarray]:
    """(docs (n, 384), queries (nq, 384)): C-contiguous float32 unit rows, read into RAM.

    demo: the shipped stdlib-docstring corpus (2,032 documents, 1,000 queries).
    wordnet: ~118k WordNet synsets (1,000 queries); built and cached on first use,
    which takes minutes (`python -m bench.datasets.wordnet`).
    """
    if name == "demo":
        from vecdial.indexer.io.demo import demo_embeddings

        docs, queries = demo_embeddings(show_progress=False)
    elif name == "wordnet":
        from bench.datasets.wordnet import load_wordnet_set

        data = load_wordnet_set()
        docs, queries = data.doc_vectors, data.query_vectors
    else:
        raise ValueError(f"unknown set {name!r}: use one of {', '.join(SETS)}")
    return np.array(docs, dtype=np.float32, order="C"), np.array(queries, dtype=np.float32, order="C")
