"""Bodies of the maintenance routes of a collection: sweep (measure budgets for `auto`) and repair (salvage its log)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from vecdial.service.vectors import VectorB64


class RepairResponse(BaseModel):
    """`vecdial repair`'s report: what the scan of the write-ahead log found and did (paths relative to the data dir)."""

    collection: str
    log: str
    log_bytes: int
    records: int = Field(description="Valid records in the log, all kept.")
    damaged: list[list[int]] = Field(description="[start, stop) byte ranges that were neither records nor a torn tail.")
    damaged_bytes: int
    torn_tail: int = Field(description="Bytes of an unacknowledged last write.")
    backup: str | None = Field(description="Where the damaged original was kept.")
    repaired: bool
    dry_run: bool


class SweepRequest(BaseModel):
    """Measure budgets on stored documents (or the kept traffic sample) and serve `auto` from them."""

    model_config = ConfigDict(extra="forbid")

    queries: Literal["default", "pseudo", "documents", "traffic", "demo"] = Field(
        "default",
        description="What to measure on: the default (the kept sample of real queries once it holds 100, else pseudo-queries cut "
        "from stored texts, else stored documents), one of those explicitly, or the shipped demo queries.",
    )
    queries_b64: VectorB64 | None = Field(
        None, description="Or the client's own query vectors: (n, dim) row-major, base64 of little-endian float32."
    )
    n: int = Field(300, ge=1, le=100_000, description="Stored documents (or kept queries) to measure on.")
    budgets: list[str] | None = Field(None, description="Budgets to measure (string form); default: the collection's candidate budgets.")
    max_seconds: float | None = Field(None, gt=0, description="Bound on the whole sweep.")
