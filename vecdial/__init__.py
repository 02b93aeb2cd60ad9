"""vecdial: compressed-embedding retrieval where each query chooses its own budget.

    import vecdial

    db = vecdial.connect("vecdial-data")
    docs = db.create("docs", texts=["parse a date", "sort a list"], ids=["a", "b"])
    hits = docs.search("turn a string into a datetime", k=1, budget="binary:rescore=10")
    hits.ids, hits.scores, hits.explain

The same objects serve the command line and the HTTP service, and `vecdial.connect(url)`
gives the same interface over a server's HTTP API (vecdial/remote.py).
"""

from pathlib import Path

from vecdial.api import Collection, Database, Info, Job, JobFailed
from vecdial.api import connect as _connect_dir
from vecdial.indexer.errors import (
    AlreadyExists,
    BudgetError,
    CorruptIndex,
    DamagedLog,
    InvalidInput,
    NotFound,
    Unavailable,
    UnsupportedFormat,
    VecdialError,
)
from vecdial.indexer.eval.evaluate import EvalRow
from vecdial.indexer.eval.report import FORMATS as REPORT_FORMATS
from vecdial.indexer.jobs.store import JobStatus
from vecdial.indexer.live.collection import WriteResult
from vecdial.indexer.live.repair import RepairReport
from vecdial.indexer.modes import ModeInfo
from vecdial.indexer.modes.settings import BuildSettings, SparseSettings
from vecdial.indexer.plan.budget import Budget, format_budget, parse_budget
from vecdial.indexer.plan.calibration import SweepPoint
from vecdial.indexer.plan.execute import MAX_K, Explain, Hits


def connect(
    target: str | Path = "vecdial-data", *, api_key: str | None = None, timeout: float = 60.0, verify_checksums: bool = True
) -> "Database":
    """A directory of collections in this process, or a vecdial server when `target` is an
    `http://` or `https://` URL: the same `Database`/`Collection` interface either way.

    api_key, timeout (seconds per request): for a server. verify_checksums: for a directory
    (see `vecdial.api.connect`).
    """
    if isinstance(target, str) and target.startswith(("http://", "https://")):
        from vecdial.remote import connect_remote

        return connect_remote(target, api_key=api_key, timeout=timeout)  # type: ignore[return-value]
    return _connect_dir(target, verify_checksums=verify_checksums)


__all__ = [
    "MAX_K",
    "AlreadyExists",
    "Budget",
    "BudgetError",
    "BuildSettings",
    "Collection",
    "CorruptIndex",
    "DamagedLog",
    "Database",
    "EvalRow",
    "Explain",
    "Hits",
    "Info",
    "InvalidInput",
    "Job",
    "JobFailed",
    "JobStatus",
    "ModeInfo",
    "NotFound",
    "Unavailable",
    "REPORT_FORMATS",
    "RepairReport",
    "SparseSettings",
    "SweepPoint",
    "UnsupportedFormat",
    "VecdialError",
    "WriteResult",
    "connect",
    "format_budget",
    "parse_budget",
]
