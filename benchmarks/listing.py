"""Benchmark: what the listing walk costs on the real server's terms (issue 11), and that it loses nothing.

A history shaped like the real server's worst cases (bursts of jobs created in one second, 15 % of jobs registered
first and submitted up to a day later, creation time compared in Asia/Tokyo, pages of at most 100), exported three
times against the local cloud in its default, server-like mode: the first export, a second with nothing new, a third
after a burst of 300 jobs created in one second. Printed: requests by kind, and whether every job is in the dataset
exactly once (the figures behind issue 11's closing note).
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from .common import Mode, by_kind, met, scratch, table

NAME = "listing"
BURST = 300


def run(mode: Mode) -> dict[str, Any]:
    n = mode.pick(2_000, 10_000)
    from oqtopus_data.client.api import ApiClient
    from oqtopus_data.client.config import Credentials
    from oqtopus_data.query.views import connect
    from oqtopus_data.run.export import ExportOptions, export
    from oqtopus_data.testing import FakeCloud, generate_history

    history = generate_history(n, seed=5, bursts=(BURST, BURST), two_step=0.15, max_submit_delay=timedelta(days=1))
    rows, figures = [], {}
    with FakeCloud(history=history) as cloud, scratch("listing") as tmp:
        out = tmp / "out"

        def once(label: str) -> None:
            cloud.requests.reset()
            with ApiClient(Credentials(url=cloud.url, token=cloud.token), workers=16) as api:
                t0 = time.perf_counter()
                result = export(api, out, ExportOptions(sse_logs=True))
                seconds = time.perf_counter() - t0
            counts = cloud.requests.snapshot()
            # A registered job (created, not yet submitted) is followed by id, not written: it has no submission yet.
            live = cloud.history.job_ids()
            expected = {j for j in live if cloud.history.status(j) != "registered"}
            with connect(out) as con:
                ids = [r[0] for r in con.execute("SELECT job_id FROM jobs").fetchall()]
            whole = len(ids) == len(set(ids)) == len(expected) and set(ids) == expected
            rows.append([label, len(live), len(live) - len(expected), result.exported, seconds, counts["total"],
                         counts["list"], by_kind(counts),
                         met(whole and result.ok)])
            figures[label] = {"jobs": len(live), "submitted": len(expected), "requests": counts, "seconds": seconds,
                              "exact": whole}

        once("first export")
        once("second export, nothing new")
        cloud.add_jobs(BURST)
        once(f"third export, {BURST} new jobs created in one second")
    table(f"listing: {n:,} jobs (two bursts of {BURST} in one second, 15 % two-step up to a day late), server-like "
          "local cloud, pages of 100 [python -m benchmarks --only listing]",
          ["", "jobs on server", "registered", "written", "seconds", "requests", "listing", "by kind",
           "each submitted job once"], rows,
          note="A correct client needs one listing page per 100 jobs; the walk makes each window's pages twice (the "
               "second walk proves the first complete) plus a closing page, and lists the last day again on each run "
               "(jobs created before and submitted after the previous run).")
    return figures
