"""Which jobs an export holds: the filters a run was given, and one pure decision per listed job."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from oqtopus_data.enums import TERMINAL, JobStatus
from oqtopus_data.times import parse_time


@dataclass(frozen=True)
class Filters:
    """What the dataset holds: jobs submitted in [since, until] with these statuses, types and devices (empty: all)."""

    since: datetime | None = None
    until: datetime | None = None
    statuses: tuple[str, ...] = ()
    job_types: tuple[str, ...] = ()
    devices: tuple[str, ...] = ()

    def locked(self) -> dict[str, list[str]]:
        """The filters a continued export must keep (a directory holds one selection of jobs)."""
        return {"statuses": sorted(self.statuses), "job_types": sorted(self.job_types),
                "devices": sorted(self.devices)}

    def describe(self) -> str:
        """The filters as the command-line flags that make them (for messages)."""
        flags = [f"--{name} {value}" for name, values in (("status", self.statuses), ("job-type", self.job_types),
                                                          ("device", self.devices)) for value in sorted(values)]
        return " ".join(flags) or "all jobs (no --status/--job-type/--device)"


@dataclass(frozen=True)
class Selection:
    """The decision for one job: write its rows now, and/or keep following it by id (it may still change)."""

    export: bool
    follow: bool


def select(job: Any, filters: Filters) -> Selection:
    """Whether a listed or re-fetched job is exported now, and whether later runs fetch it again by id.

    A job not yet terminal is followed whatever the status/type/device filters say (it may still come to match
    them), unless it was submitted outside [since, until]; a registered job (not yet submitted) is followed but not
    exported. A job that is not an object, or has no job_id, is exported so that the parser records why it is bad.
    """
    if not isinstance(job, Mapping) or not isinstance(job.get("job_id"), str):
        return Selection(export=True, follow=False)
    status = job.get("status")
    submitted = parse_time(job.get("submitted_at"))
    in_time = submitted is None or (
        (filters.since is None or submitted >= filters.since) and (filters.until is None or submitted <= filters.until))
    follow = status not in TERMINAL and in_time
    matches = in_time and status != JobStatus.REGISTERED and (
        (not filters.statuses or status in filters.statuses)
        and (not filters.job_types or job.get("job_type") in filters.job_types)
        and (not filters.devices or job.get("device_id") in filters.devices))
    return Selection(export=matches, follow=follow)
