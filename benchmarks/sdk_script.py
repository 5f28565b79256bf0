"""What a user writes with the official SDK (oqtopus-client 1.3.0) to get a table of their job history.

List every page, fetch each job (`get_job` downloads its archives), then build a jobs table and a counts table
from lists of dicts. Page numbers past the end repeat the last page, so the loop stops on a page that brings no
new job id (a user learns this the first time the loop never ends). Run as a child process by `export_vs_sdk`.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

PAGE_SIZE = 100


def list_all(client: Any) -> list[Any]:
    """Every job the API lists, page by page."""
    seen: set[str] = set()
    jobs: list[Any] = []
    page = 1
    while True:
        batch = client.list_jobs(page=page, size=PAGE_SIZE, order="ASC")
        new = [job for job in batch if job.job_id not in seen]
        if not new:
            return jobs
        seen.update(job.job_id for job in new)
        jobs += new
        page += 1


def job_row(result: Any) -> dict[str, Any]:
    """One row of the jobs table."""
    row = {
        "job_id": result.job_id, "name": result.name, "job_type": str(getattr(result.job_type, "value", "")),
        "status": str(getattr(result.status, "value", "")), "device_id": result.device_id, "shots": result.shots,
        "submitted_at": result.submitted_at, "running_at": result.running_at, "ended_at": result.ended_at,
        "execution_time": result.execution_time, "message": result.message,
    }
    if result.is_estimation():
        row["exp_value"], row["stds"] = result.get_exp_value(), result.get_stds()
    return row


def run(url: str, token: str, limit: int | None) -> dict[str, Any]:
    """List, fetch `limit` jobs (all when None), build the tables; returns timings of each phase."""
    import pyarrow as pa
    from oqtopus_client import OqtopusClient, OqtopusConfig

    client = OqtopusClient(OqtopusConfig(url=url, api_token=token))
    started = time.perf_counter()
    listed = list_all(client)
    listed_at = time.perf_counter()
    wanted = [job.job_id for job in listed if str(getattr(job.status, "value", job.status)) != "registered"]
    fetched = wanted if limit is None else wanted[:limit]
    jobs, counts = [], []
    for job_id in fetched:
        result = client.get_job(job_id)
        jobs.append(job_row(result))
        if result.is_sampling() or result.is_multi_manual():
            for bitstring, n in result.get_counts().items():
                counts.append({"job_id": result.job_id, "bitstring": bitstring, "count": n})
    fetched_at = time.perf_counter()
    tables = {"jobs": pa.Table.from_pylist(jobs), "counts": pa.Table.from_pylist(counts)}
    done = time.perf_counter()
    return {"listed": len(listed), "wanted": len(wanted), "fetched": len(fetched),
            "count_rows": tables["counts"].num_rows, "list_seconds": listed_at - started,
            "fetch_seconds": fetched_at - listed_at, "table_seconds": done - fetched_at}


if __name__ == "__main__":
    limit = int(sys.argv[3]) if len(sys.argv) > 3 and sys.argv[3] != "all" else None
    print(json.dumps(run(sys.argv[1], sys.argv[2], limit)))
