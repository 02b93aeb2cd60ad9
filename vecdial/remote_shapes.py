"""The server's JSON answers as the library's own objects (`Explain`, `Info`, `JobStatus`, `SweepPoint`),
so a remote caller gets what an embedded one does. Fields a newer server adds are left out."""

from __future__ import annotations

import dataclasses

from vecdial.indexer.jobs.store import JobStatus
from vecdial.indexer.modes.base import ModeInfo
from vecdial.indexer.plan.calibration import SweepPoint
from vecdial.indexer.plan.execute import Explain, StageReport
from vecdial.info import Info


def known(kind: type, values: dict) -> dict:
    """The fields of dataclass `kind` in `values`: a newer server may send more."""
    names = {field.name for field in dataclasses.fields(kind)}
    return {key: value for key, value in values.items() if key in names}


def explain_of(values: dict) -> Explain:
    return Explain(**{**known(Explain, values), "stages": [StageReport(**known(StageReport, s)) for s in values["stages"]]})


def status_of(values: dict) -> JobStatus:
    return JobStatus(**known(JobStatus, values))


def point_of(values: dict) -> SweepPoint:
    return SweepPoint(**known(SweepPoint, values))


def info_of(values: dict) -> Info:
    modes = [ModeInfo(**{**known(ModeInfo, m), "knobs": {k: tuple(v) for k, v in m["knobs"].items()}}) for m in values["modes"]]
    dense = {int(dim): size for dim, size in values["dense_bytes_per_vector"].items()}
    return Info(**{**known(Info, values), "modes": modes, "dense_bytes_per_vector": dense})
