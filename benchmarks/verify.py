"""Benchmark: what `oqtopus-export --verify` costs over a run with nothing new: requests and seconds of the light
listing of the whole history, for 10,000 jobs (--quick) and 100,000 (--full), against the local cloud (the server's
API: pages of at most 100, `fields` accepted)."""

from __future__ import annotations

import json
import sys
import time
from typing import Any

from .cloud import CloudProcess
from .common import Mode, by_kind, run_child, scratch, table

NAME = "verify"


def run(mode: Mode) -> dict[str, Any]:
    n = mode.pick(10_000, 100_000)
    with CloudProcess(n) as cloud, scratch("verify") as tmp:
        args = {"url": cloud.url, "token": cloud.token, "out": str(tmp / "out")}
        first = run_child(["benchmarks.tasks", "export", json.dumps(args)])
        figures = {}
        for verify in (False, True):
            cloud.reset()
            child = run_child(["benchmarks.verify", json.dumps({**args, "verify": verify})])
            figures[verify] = (child.value, cloud.stats()["requests"])
    (plain, plain_requests), (checked, checked_requests) = figures[False], figures[True]
    extra = checked_requests["total"] - plain_requests["total"]
    table(f"verify: a run with nothing new over {n:,} jobs, without and with --verify "
          "[python -m benchmarks --only verify]", ["", "seconds", "requests", "by kind", "differences"], [
              ["first export (setup)", f"{first.value['seconds']:.1f}", "", "", ""],
              ["run", f"{plain['seconds']:.2f}", plain_requests["total"], by_kind(plain_requests), ""],
              ["run --verify", f"{checked['seconds']:.2f}", checked_requests["total"], by_kind(checked_requests),
               len(checked["differences"])],
              ["cost of --verify", f"{checked['seconds'] - plain['seconds']:.2f}", extra, "", ""],
          ], note=f"light pages (fields=job_id,status,submitted_at,job_type,device_id) of at most 100 jobs: "
                  f"{extra / n * 100:.1f} per 100 jobs (each window is walked twice, a walk counting once the next "
                  "holds all it saw, and a window is sized by its newest page before it is split).")
    return {"jobs": n, "run_seconds": plain["seconds"], "verify_seconds": checked["seconds"],
            "run_requests": plain_requests, "verify_requests": checked_requests, "extra_requests": extra,
            "differences": checked["differences"]}


def _child(url: str, token: str, out: str, verify: bool) -> dict[str, Any]:
    """One export run (in this child process), with or without the reconcile."""
    from oqtopus_data.client.api import ApiClient
    from oqtopus_data.client.config import Credentials
    from oqtopus_data.run.export import ExportOptions, export

    with ApiClient(Credentials(url=url, token=token, source="benchmark")) as api:
        started = time.perf_counter()
        report = export(api, out, ExportOptions(verify=verify, verify_every=None))
        seconds = time.perf_counter() - started
    return {"seconds": seconds, "verified": report.verified, "differences": report.differences,
            "errors": len(report.errors)}


if __name__ == "__main__":
    print(json.dumps(_child(**json.loads(sys.argv[1]))))
