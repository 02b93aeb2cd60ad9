"""Payloads of the shipped demo corpus, derived from its own data (a stdlib object's qualified name
and its docstring), so filters can be shown and tested on real rows."""

from __future__ import annotations


def demo_payloads(doc_ids: list[str], doc_texts: list[str]) -> list[dict]:
    """Per document: `module` (keyword, the top-level module), `path` (keywords, the dotted
    name's parts), `chars` (int, the text's length) and `words` (float, words per sentence)."""
    out = []
    for doc_id, text in zip(doc_ids, doc_texts):
        parts = doc_id.split(".")
        sentences = max(text.count(". ") + 1, 1)
        out.append({"module": parts[0], "path": parts[:-1] or parts, "chars": len(text), "words": round(len(text.split()) / sentences, 2)})
    return out
