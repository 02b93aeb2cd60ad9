"""Document and query vectors of the bench sets, by name, as the benches need them."""

from __future__ import annotations

import numpy as np

SETS = ("demo", "wordnet", "wordnet-1m")


def load_vectors(name: str) -> tuple[np.ndarray, np.ndarray]:
    """(docs (n, 384), queries (nq, 384)): C-contiguous float32 unit rows, read into RAM.

    demo: the shipped stdlib-docstring corpus (2,032 documents, 1,000 queries).
    wordnet: ~118k WordNet synsets (1,000 queries); built and cached on first use,
    which takes minutes (`python -m bench.datasets.wordnet`).
    wordnet-1m: WordNet grown to 1,000,000 rows (bench/datasets/wordnet_1m.py), the
    real WordNet queries; built and cached on first use.
    """
    if name == "demo":
        from vecdial._internal import demo_embeddings

        docs, queries = demo_embeddings(show_progress=False)
    elif name == "wordnet":
        from bench.datasets.wordnet import load_wordnet_set

        data = load_wordnet_set()
        docs, queries = data.doc_vectors, data.query_vectors
    elif name == "wordnet-1m":
        from bench.datasets.wordnet_1m import load_wordnet_1m

        docs, queries, _ = load_wordnet_1m()
    else:
        raise ValueError(f"unknown set {name!r}: use one of {', '.join(SETS)}")
    return np.array(docs, dtype=np.float32, order="C"), np.array(queries, dtype=np.float32, order="C")
