"""Benchmark 9: an export against a server that allows N requests per second (a token bucket of one second's burst,
as API gateways throttle; beyond it 429, or S3's 503 SlowDown, without Retry-After), 20 ms per request, 16 workers.
Target: the run takes at most 1.2x (the requests it needs / N): one shared pace for every worker
(`oqtopus_data.client.pace`) finds the limit and stays just under it, where workers backing off alone would keep hitting
it."""

from __future__ import annotations

import json
from typing import Any

from .cloud import CloudProcess
from .common import Mode, met, run_child, scratch, table

NAME = "ratelimit"
LATENCY = 0.02
WORKERS = 16
RATE = 200.0  # requests per second the server allows: a quarter of what 16 workers at 20 ms would ask


def run(mode: Mode) -> dict[str, Any]:
    n = mode.pick(1_000, 5_000)
    with CloudProcess(n, latency=LATENCY) as cloud, scratch("ratelimit") as tmp:
        needed = cloud.needed()
        cloud.fault(rate_limit=RATE)
        cloud.reset()
        ours = run_child(["benchmarks.tasks", "export", json.dumps(
            {"url": cloud.url, "token": cloud.token, "out": str(tmp / "out"), "workers": WORKERS})])
        made = cloud.stats()["requests"]
    o = ours.value
    floor = needed["total"] / RATE
    ratio = ours.wall / floor
    throttled = o["requests"]["retries"]
    table(f"9. rate limit: {n:,} jobs against a server allowing {RATE:.0f} requests/s, {LATENCY * 1000:.0f} ms per "
          f"request, workers {WORKERS} [python -m benchmarks --only ratelimit]",
          ["", "jobs", "seconds", "requests", "refused (retried)", "errors"],
          [["oqtopus-data export (process)", o["exported"], ours.wall, made["total"], throttled, o["errors"]],
           [f"floor = requests needed / {RATE:.0f} per second", "", floor, needed["total"], "", ""]])
    table("   ratio", ["", "value", "target", "met"], [
        ["oqtopus-data / (requests needed / rate)", f"{ratio:.2f}x", "<= 1.2x", met(ratio <= 1.2)],
    ], note=f"{made['total'] / ours.wall:.0f} requests/s made, {(made['total'] - throttled) / ours.wall:.0f}/s "
            f"answered; requests refused with 429/503 and asked again: {throttled:,} "
            f"({throttled / max(1, made['total']):.1%}).")
    return {"jobs": n, "rate": RATE, "seconds": ours.wall, "floor_seconds": floor, "to_floor": ratio,
            "requests": made, "needed": needed, "throttled": throttled, "errors": o["errors"]}
