"""What one search asks for, as one value: built where the search comes in, read by every stage.

`vecdial.Collection.search` (and `plan.execute.search`, for callers inside the library) turn
their keywords into one `SearchOptions`; the executor's stages take it whole instead of a
dozen keywords each, so an option added here reaches every stage without a signature change.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from vecdial.indexer.errors import InvalidInput
from vecdial.indexer.plan.hybrid import Hybrid

MAX_K = 10_000


@dataclass(frozen=True, init=False)
class SearchOptions:
    """One search's options, checked when made (k); never modified.

    k: hits per query, 1..MAX_K. budget: as asked (string, JSON form or budget model; `auto`
    resolves against the view's sweep). with_text / with_payload: return each hit's stored
    text / payload. threads: native threads for a batch (None or 1: one; a single query always
    runs on one). filter: on payloads as sent (filters/tree.py), None for every row. hybrid:
    the fusion with BM25 and sparse codes (plan/hybrid.py), None for the budget alone. steer:
    {feature id or label words: weight} as sent (features/serve.py), None for none.
    explain_features: list each hit's top sparse features shared with the query.
    """

    k: int
    budget: Any
    with_text: bool
    with_payload: bool
    threads: int | None
    filter: Any
    hybrid: Hybrid | None
    steer: Any
    explain_features: bool

    def __init__(
        self,
        k: int = 10,
        budget: Any = "exact",
        *,
        with_text: bool = False,
        with_payload: bool = False,
        threads: int | None = None,
        filter: Any = None,
        hybrid: Hybrid | None = None,
        steer: Any = None,
        explain_features: bool = False,
    ) -> None:
        if not 0 < k <= MAX_K:
            raise InvalidInput(f"k={k} is out of range: use 1..{MAX_K}")
        # One dict update, not the frozen __init__'s object.__setattr__ per field: 3x faster, and
        # made once per search (a one-query search's Python is a few microseconds in all).
        self.__dict__.update(
            k=k,
            budget=budget,
            with_text=with_text,
            with_payload=with_payload,
            threads=threads,
            filter=filter,
            hybrid=hybrid,
            steer=steer,
            explain_features=explain_features,
        )

    @property
    def depth(self) -> int:
        """Candidates each part's plan brings: k, or more when a fusion reorders them."""
        return self.k if self.hybrid is None else self.hybrid.depth(self.k)

    @property
    def extras(self) -> bool:
        """Whether any hit carries more than id and score (text, payload, features)."""
        return self.with_text or self.with_payload or self.explain_features

    @property
    def plain(self) -> bool:
        """No filter, fusion or extras: a plan's stages and the merge are the whole search."""
        return self.filter is None and self.hybrid is None and not (self.with_text or self.with_payload or self.explain_features)
