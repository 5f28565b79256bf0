"""Work that runs in a child process (`python -m benchmarks.tasks NAME JSON_ARGS`), so that its time, CPU and
peak RSS are its own. Each task prints one JSON line: its figures."""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from typing import Any


def export_task(url: str, token: str, out: str, workers: int = 16, checkpoint_jobs: int = 50_000,
                since: str | None = None, until: str | None = None,
                compact_after_files: int | None = None) -> dict[str, Any]:
    """What `oqtopus-export OUT` runs: ApiClient(workers) and export(); returns its report's figures and the
    process RSS sampled every half second (MiB), to show where memory levels off."""
    started = time.perf_counter()
    from dataclasses import replace
    from datetime import datetime

    from oqtopus_data.client.api import ApiClient
    from oqtopus_data.client.config import Credentials
    from oqtopus_data.run.export import ExportOptions, export

    imported = time.perf_counter()
    options = ExportOptions(workers=workers, checkpoint_jobs=checkpoint_jobs,
                            since=datetime.fromisoformat(since) if since else None,
                            until=datetime.fromisoformat(until) if until else None)
    if compact_after_files is not None:
        options = replace(options, compact_after_files=compact_after_files)
    samples: list[float] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.5):
            samples.append(_rss_mib())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    with ApiClient(Credentials(url=url, token=token, source="benchmark"), workers=workers) as api:
        t0 = time.perf_counter()
        report = export(api, out, options)
        seconds = time.perf_counter() - t0
    stop.set()
    sampler.join()
    cpu = time.process_time()
    return {"seconds": seconds, "import_seconds": imported - started, "cpu_seconds": cpu,
            "exported": report.exported, "listed": report.listed, "skipped": report.skipped,
            "errors": len(report.errors), "rows": dict(report.rows), "requests": report.requests,
            "incremental": report.incremental, "version": report.version, "compacted": report.compacted,
            "rss_samples": samples}


def _rss_mib() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


TASKS = {"export": export_task}

if __name__ == "__main__":
    name, args = sys.argv[1], json.loads(sys.argv[2])
    print(json.dumps(TASKS[name](**args), default=str))
