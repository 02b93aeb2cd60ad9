"""vecdial: compressed-embedding retrieval where each query chooses its own budget.

    import vecdial

    db = vecdial.connect("vecdial-data")
    docs = db.create("docs", texts=["parse a date", "sort a list"], ids=["a", "b"])
    hits = docs.search("turn a string into a datetime", k=1, budget="binary:rescore=10")
    hits.ids, hits.scores, hits.explain

The same objects serve the command line and the HTTP service.
"""

from vecdial.api import Collection, Database, Info, Job, JobFailed, connect
from vecdial.indexer.errors import (
    AlreadyExists,
    BudgetError,
    CorruptIndex,
    DamagedLog,
    InvalidInput,
    NotFound,
    UnsupportedFormat,
    VecdialError,
)
from vecdial.indexer.eval.report import FORMATS as REPORT_FORMATS
from vecdial.indexer.jobs.settings import BuildSettings, SparseSettings
from vecdial.indexer.plan.budget import Budget, format_budget, parse_budget
from vecdial.indexer.plan.calibration import SweepPoint
from vecdial.indexer.plan.execute import MAX_K, Explain, Hits

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
    "Explain",
    "Hits",
    "Info",
    "InvalidInput",
    "Job",
    "JobFailed",
    "NotFound",
    "REPORT_FORMATS",
    "SparseSettings",
    "SweepPoint",
    "UnsupportedFormat",
    "VecdialError",
    "connect",
    "format_budget",
    "parse_budget",
]
