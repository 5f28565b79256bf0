"""A run's commits: its rows and the sync state they make true, committed together, and when the next one is due.

A long run commits a checkpoint every `checkpoint_jobs` jobs or `checkpoint_seconds` seconds, when asked to stop, and
before a reconcile reads the dataset; every commit holds the state as far as the run got: the listing bound the next
run resumes from (`bounds.Span`), the followed ids (`ledger.Ledger`), what the SSE log step learnt, and a summary.
After the last one, `conclude` puts the commit and the request figures in the report and compacts when files pile up.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import TYPE_CHECKING

from oqtopus_data.dataset.dataset import Dataset, compact, excess_file_count

if TYPE_CHECKING:
    from oqtopus_data.client.api import ApiClient
    from oqtopus_data.dataset.manifest import Manifest
    from oqtopus_data.run.bounds import Span
    from oqtopus_data.run.info import ExportOptions, ExportReport
    from oqtopus_data.run.ledger import Ledger
    from oqtopus_data.run.rows import RunRows
    from oqtopus_data.run.sse import LogStep
    from oqtopus_data.selection import Filters


class Commits:
    """The commits of one run, each assembled from the rows, the SSE log step, the ledger and the listing span."""

    def __init__(self, rows: RunRows, logs: LogStep, ledger: Ledger, span: Span, options: ExportOptions) -> None:
        self.rows, self.logs, self.ledger, self.span, self.options = rows, logs, ledger, span, options
        self.filters: Filters = options.filters()
        self._since = (0, time.monotonic())  # jobs flattened since the last commit, and when it was

    def counted(self, jobs: int) -> None:
        """`jobs` more jobs flattened since the last commit."""
        count, since = self._since
        self._since = (count + jobs, since)

    def due(self) -> bool:
        """Whether a checkpoint is due (enough jobs, or enough time with some)."""
        jobs, since = self._since
        return jobs >= self.options.checkpoint_jobs or (
            jobs > 0 and time.monotonic() - since >= self.options.checkpoint_seconds)

    def commit(self, *, final: bool = False) -> Manifest:
        """Write buffered and volatile rows, then commit them with the state they make true; `final` ends the
        writer."""
        self.logs.settle(self.ledger.state, asked=self.options.sse_logs)
        report = self.ledger.report
        state = replace(self.ledger.state, filters=self.filters.locked(), listed_until=self.span.listed_until(),
                        last_sync=self.ledger.now)
        info = {"listed": report.listed, "exported": report.exported, "errors": len(report.errors),
                "notes": report.notes[-50:]}
        self._since = (0, time.monotonic())
        return self.rows.commit(state.to_json(), info, final=final)


def conclude(report: ExportReport, api: ApiClient, dataset: Dataset, manifest: Manifest, *,
             compact_after_files: int) -> None:
    """After a run's last commit: its version and the requests made in `report`, and a compaction once files beyond
    one per partition reach `compact_after_files`."""
    report.version = manifest.version
    stats = getattr(api, "stats", None)
    report.requests = dict(stats.snapshot()) if stats is not None else {}
    if excess_file_count(manifest) >= compact_after_files:
        compacted = compact(dataset)
        if compacted is not None:
            report.version, report.compacted = compacted.version, True
