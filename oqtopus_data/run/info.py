"""What an export run is asked to do (ExportOptions) and what it tells back (ExportReport)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from oqtopus_data.errors import OqtopusDataError
from oqtopus_data.fetch.listing import Limits
from oqtopus_data.selection import Filters

if TYPE_CHECKING:
    import pyarrow as pa


@dataclass(frozen=True)
class ExportOptions(Filters):
    """What to export (the `Filters` fields: since, until, statuses, job_types, devices) and how; the CLI maps its
    flags one to one onto these fields."""

    workers: int = 16
    page_size: int = 100
    full_refresh: bool = False
    repair: bool = False  # fetch again the months of data files that went missing, instead of refusing
    sse_logs: bool = False
    devices_snapshot: bool = True
    devices_only: bool = False  # a device snapshot and nothing else: no listing, the sync state kept
    max_submit_delay: timedelta = timedelta(days=1)  # longest gap between a job's creation and its submission
    batch_jobs: int = 500  # jobs flattened at once
    flush_rows: int = 500_000  # buffered count rows before files are written (bounds memory)
    checkpoint_jobs: int = 50_000  # jobs between intermediate commits of a long export
    checkpoint_seconds: float = 300.0  # and seconds between them
    compact_after_files: int = 64  # files beyond one per partition that trigger automatic compaction
    listing_limits: Limits | None = None
    verify: bool = False  # reconcile with a light listing of the whole selection after the run (`reconcile`)
    #: Reconcile on its own once this long has passed since the last one (None: only when asked, or after an
    #: anomaly). Weekly by default: the safety net only helps if it runs, and a light listing a week is cheap.
    verify_every: timedelta | None = timedelta(days=7)

    def filters(self) -> Filters:
        """The selection of jobs these options make."""
        return Filters(self.since, self.until, self.statuses, self.job_types, self.devices)

    @property
    def listing_workers(self) -> int:
        """Threads of a listing walk (the run's and a reconcile's): the workers, at most 8."""
        return max(1, min(self.workers, 8))


@dataclass
class ExportReport:
    """What a run did: the summary the CLI prints and scripts inspect."""

    out_dir: str
    version: int | None = None
    incremental: bool = False
    jobs_by_type_status: Counter[tuple[str, str]] = field(default_factory=Counter)
    rows: Counter[str] = field(default_factory=Counter)
    errors: list[tuple[str | None, str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    listed: int = 0
    skipped: int = 0
    requests: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    compacted: bool = False
    complete: bool = True  # False when some window of the listing could not be shown complete
    calibrations: list[tuple[str, datetime]] = field(default_factory=list)  # new ones stored: (device, calibrated_at)
    gone: list[str] = field(default_factory=list)  # jobs confirmed deleted on the server: their rows were dropped
    verified: bool = False  # a reconcile ran (asked for, scheduled, or after an anomaly)
    differences: list[str] = field(default_factory=list)  # what the reconcile found differing, one line per kind

    def count_jobs(self, jobs: pa.Table) -> None:
        """Count a batch's `jobs` rows by (job_type, status): what `exported` sums."""
        for row in jobs.select(["job_type", "status"]).to_pylist():
            self.jobs_by_type_status[(row["job_type"], row["status"])] += 1

    @property
    def exported(self) -> int:
        """Jobs written (or rewritten) by this run."""
        return sum(self.jobs_by_type_status.values())

    @property
    def ok(self) -> bool:
        """True when no job failed and the listing is known complete."""
        return not self.errors and self.complete


class Interrupted(OqtopusDataError):
    """The run was asked to stop; what it had fetched is committed."""


Progress = Callable[[str, int], None]
