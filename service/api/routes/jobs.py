"""Reindex jobs: start one (`Collection.reindex`), watch its progress (`Database.job`), cancel it."""

from __future__ import annotations

import dataclasses

from fastapi import APIRouter, Query, status

from vecdial import JobStatus
from vecdial.service.answer_schemas import Job
from vecdial.service.api.deps import CollectionDep, JobsDep
from vecdial.service.errors import COMMON_ERRORS, CONFLICT, NOT_FOUND
from vecdial.service.schemas import ReindexRequest

router = APIRouter(prefix="/v1", tags=["jobs"], responses={**COMMON_ERRORS, **NOT_FOUND})


@router.post(
    "/collections/{name}/reindex",
    summary="Rebuild a collection with new compression settings",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=Job,
    responses=CONFLICT,
)
def reindex(collection: CollectionDep, body: ReindexRequest, jobs: JobsDep) -> Job:
    """Starts a background job: the live vectors (including every acknowledged write) are
    re-encoded into a new version beside the serving one, validated, and swapped in with
    one atomic rename. Searches continue throughout and never see a half-built index; a
    failed or cancelled job leaves the old version serving. Settings left out keep their
    current values. One reindex per collection at a time (409 otherwise). With
    `min_recall`, the new version is swapped in only if the `budget`'s calibrated
    recall@10 meets it; otherwise the job fails saying what it measured."""
    return _job(jobs.start_reindex(collection, body.changes(), body.min_recall, body.budget))


@router.get("/jobs", summary="List jobs, newest first", response_model=list[Job])
def list_jobs(jobs: JobsDep, limit: int = Query(50, ge=1, le=1000)) -> list[Job]:
    return [_job(s) for s in jobs.list(limit)]


@router.get("/jobs/{job_id}", summary="A job's state and progress", response_model=Job)
def get_job(job_id: str, jobs: JobsDep) -> Job:
    """state: queued | running | succeeded | failed | cancelled; progress: 0..1; phase: snapshot,
    export, build, validate, swap, done."""
    return _job(jobs.get(job_id))


@router.post("/jobs/{job_id}/cancel", summary="Cancel a job", status_code=status.HTTP_202_ACCEPTED, response_model=Job)
def cancel_job(job_id: str, jobs: JobsDep) -> Job:
    """The job stops at its next batch and cleans up; the old version keeps serving. A job
    past its swap, or already finished, is not affected."""
    return _job(jobs.cancel(job_id))


def _job(status_: JobStatus) -> Job:
    return Job(**dataclasses.asdict(status_))
