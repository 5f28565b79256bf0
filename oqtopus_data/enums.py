"""The API's vocabularies, one home: job types, job statuses and which statuses are final."""

from __future__ import annotations

import enum


class JobType(enum.StrEnum):
    """The API's `job_type` values."""

    SAMPLING = "sampling"
    ESTIMATION = "estimation"
    MULTI_MANUAL = "multi_manual"
    SSE = "sse"


class JobStatus(enum.StrEnum):
    """The API's job `status` values; succeeded, failed and cancelled are terminal."""

    REGISTERED = "registered"
    SUBMITTED = "submitted"
    READY = "ready"
    RUNNING = "running"
    CANCELLING = "cancelling"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


#: Statuses after which a job never changes again: its rows are final.
TERMINAL: frozenset[str] = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED})
#: Every job type and status as plain strings, in the API's order (CLI choices, validation).
JOB_TYPES: tuple[str, ...] = tuple(t.value for t in JobType)
STATUSES: tuple[str, ...] = tuple(s.value for s in JobStatus)
#: Statuses a job can be selected by on export (a registered job is not yet a submitted job).
SELECTABLE_STATUSES: tuple[str, ...] = tuple(s for s in STATUSES if s != JobStatus.REGISTERED)
