"""Lexical search: a BM25 index over a version's texts (bm25s, memory-mapped), for hybrid search.

`write_lexical(out_dir, texts)` at build, `open_lexical(out_dir).search(queries, k, alive)`
and `.scores_for(queries, rows)` at search; fuse with plan/fusion.py. Needs the
`lexical` extra (bm25s), imported only when an index is written or opened.
"""

from vecdial.indexer.lexical.index import (
    LexicalIndex,
    open_lexical,
    tokenize,
    write_lexical,
)

__all__ = ["LexicalIndex", "open_lexical", "tokenize", "write_lexical"]
