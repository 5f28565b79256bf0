"""Benchmark 1: `oqtopus-export` (workers 16) against the obvious oqtopus-client 1.3.0 script, same history,
local cloud at 20 ms per request; then the same export at a realistic latency profile (a listing page 150 ms, a job
80 ms, an archive 40 ms). Targets: >= 10x faster than the SDK, within 1.25x of the request floor in both.

The request floor is what any correct client needs, spread over the workers: one listing page per 100 jobs (the
server's largest page), one GET per archive, one GET /devices; floor = sum over those requests of their latency /
workers. Requests beyond it (our listing walks every window twice and asks for the newest page to plan its split,
the account check) are reported apart, as listing overhead.
"""

from __future__ import annotations

import json
from typing import Any

from .cloud import CloudProcess
from .common import Mode, met, mib, run_child, scratch, table
from .sdk_script import PAGE_SIZE as PAGE

NAME = "export"
LATENCY = 0.02
WORKERS = 16
#: The realistic profile: an API gateway and a function runtime in front of every API call, storage behind a CDN.
REALISTIC = {"list": 0.15, "storage": 0.04, "default": 0.08}


def run(mode: Mode) -> dict[str, Any]:
    n = mode.pick(2_000, 20_000)
    subset = mode.pick(120, 1_000)  # jobs the SDK script fetches; the rest is extrapolated linearly
    with CloudProcess(n, latency=LATENCY, sdk_readable=True) as cloud, scratch("export") as tmp:
        needed = cloud.needed()
        cloud.reset()
        cpu0 = cloud.stats()["cpu_seconds"]
        ours = run_child(["benchmarks.tasks", "export", json.dumps(
            {"url": cloud.url, "token": cloud.token, "out": str(tmp / "out"), "workers": WORKERS})])
        ours_server = cloud.stats()
        cloud.reset()
        cpu1 = cloud.stats()["cpu_seconds"]
        sdk = run_child(["benchmarks.sdk_script", cloud.url, cloud.token, str(subset)])
        sdk_server = cloud.stats()
        cpu2 = sdk_server["cpu_seconds"]

    o, s = ours.value, sdk.value
    our_requests = ours_server["requests"]["total"]
    scale = s["wanted"] / s["fetched"]
    per_job = (s["fetch_seconds"] + s["table_seconds"]) / s["fetched"]
    sdk_startup = sdk.wall - s["list_seconds"] - s["fetch_seconds"] - s["table_seconds"]
    sdk_total = sdk_startup + s["list_seconds"] + per_job * s["wanted"]
    sdk_req = sdk_server["requests"]
    sdk_job_requests = sdk_req["total"] - sdk_req["list"]
    sdk_requests_all = sdk_req["list"] + round(sdk_job_requests * scale)
    floor = needed["total"] / WORKERS * LATENCY
    stats = o["requests"]
    rows = [
        ["oqtopus-data export (process)", o["exported"], ours.wall, our_requests, ours_server["connections"],
         ours.cpu, ours_server["cpu_seconds"] - cpu0, mib(ours.peak_rss)],
        ["  of which export() itself", o["exported"], o["seconds"], "", "", "", "", ""],
        [f"oqtopus-client script, {s['fetched']} jobs (measured)", s["fetched"], sdk.wall, sdk_req["total"],
         sdk_server["connections"], sdk.cpu, cpu2 - cpu1, mib(sdk.peak_rss)],
        [f"oqtopus-client script, all {s['wanted']} jobs (EXTRAPOLATED)", s["wanted"], sdk_total,
         sdk_requests_all, "", "", "", ""],
        ["request floor = requests needed / workers x latency", o["exported"], floor, needed["total"], "", "", "",
         ""],
    ]
    table(f"1. export vs official SDK: {n:,} jobs, {LATENCY * 1000:.0f} ms per request, workers {WORKERS} "
          "[python -m benchmarks --only export]",
          ["", "jobs", "seconds", "requests", "TCP conns", "client CPU s", "server CPU s", "peak RSS MiB"], rows)
    speedup = sdk_total / ours.wall
    to_floor = ours.wall / floor
    per_request_cpu = ours.cpu / our_requests * 1000
    table("   ratios", ["", "value", "target", "met"], [
        ["SDK (extrapolated) / oqtopus-data", f"{speedup:.1f}x", ">= 10x", met(speedup >= 10)],
        ["oqtopus-data / request floor (process)", f"{to_floor:.2f}x", "<= 1.25x", met(to_floor <= 1.25)],
        ["export() alone / request floor", f"{o['seconds'] / floor:.2f}x", "", ""],
    ], note=_overhead(ours_server["requests"], needed)
            + f"SDK: list_jobs(size={PAGE}) page by page ({s['list_seconds']:.1f} s), then get_job for each job in "
            f"turn: {per_job * 1000:.0f} ms per job measured on {s['fetched']} jobs, times {s['wanted']} jobs "
            "(extrapolated linearly). oqtopus-data: "
            f"{our_requests / max(1, o['exported']):.2f} requests per job, "
            f"{stats.get('bytes', 0) / max(1, o['exported']) / 1024:.1f} KiB downloaded per job, client CPU "
            f"{per_request_cpu:.2f} ms per request (all its work included): one core sustains at most "
            f"{1000 / per_request_cpu:.0f} requests/s where the floor needs {WORKERS / LATENCY:.0f}/s.")
    realistic = _realistic(mode)
    return {"realistic": realistic, "needed": needed,
            "jobs": n, "ours_seconds": ours.wall, "ours_export_seconds": o["seconds"], "ours_requests": our_requests,
            "ours_requests_by_kind": ours_server["requests"], "ours_cpu": ours.cpu, "ours_rss": ours.peak_rss,
            "bytes": stats.get("bytes", 0), "exported": o["exported"], "rows": o["rows"],
            "sdk_measured_jobs": s["fetched"], "sdk_measured_seconds": sdk.wall, "sdk_seconds_extrapolated": sdk_total,
            "sdk_requests_extrapolated": sdk_requests_all, "sdk_per_job_seconds": per_job,
            "floor_seconds": floor, "speedup": speedup, "to_floor": to_floor}


def _realistic(mode: Mode) -> dict[str, Any]:
    """The export alone at the realistic latency profile, against its floor."""
    n = mode.pick(2_000, 20_000)
    with CloudProcess(n, latencies=REALISTIC, sdk_readable=True) as cloud, scratch("export-realistic") as tmp:
        needed = cloud.needed()
        cloud.reset()
        ours = run_child(["benchmarks.tasks", "export", json.dumps(
            {"url": cloud.url, "token": cloud.token, "out": str(tmp / "out"), "workers": WORKERS})])
        made = cloud.stats()["requests"]
    latency = {kind: REALISTIC.get(kind, REALISTIC["default"]) for kind in ("list", "storage", "devices")}
    floor = sum(needed[kind] * latency[kind] for kind in latency) / WORKERS
    o = ours.value
    ratio = ours.wall / floor
    table(f"1b. export at the realistic profile: {n:,} jobs, a listing page {latency['list'] * 1000:.0f} ms, an "
          f"archive {latency['storage'] * 1000:.0f} ms, any other call {REALISTIC['default'] * 1000:.0f} ms, workers "
          f"{WORKERS} [python -m benchmarks --only export]",
          ["", "jobs", "seconds", "requests", "client CPU s", "peak RSS MiB"],
          [["oqtopus-data export (process)", o["exported"], ours.wall, made["total"], ours.cpu, mib(ours.peak_rss)],
           ["  of which export() itself", o["exported"], o["seconds"], "", "", ""],
           ["request floor = sum of needed requests x their latency / workers", o["exported"], floor, needed["total"],
            "", ""]])
    table("   ratio", ["", "value", "target", "met"], [
        ["oqtopus-data / request floor (process)", f"{ratio:.2f}x", "<= 1.25x", met(ratio <= 1.25)],
        ["export() alone / request floor", f"{o['seconds'] / floor:.2f}x", "", ""],
    ], note=_overhead(made, needed))
    return {"jobs": n, "seconds": ours.wall, "export_seconds": o["seconds"], "floor_seconds": floor,
            "to_floor": ratio, "requests": made, "needed": needed, "cpu": ours.cpu}


def _overhead(made: dict[str, int], needed: dict[str, int]) -> str:
    """Requests made beyond the needed ones, by kind: the listing's overhead."""
    extra_list = made.get("list", 0) - needed["list"]
    others = made["total"] - made.get("list", 0) - needed["storage"] - needed["devices"]
    return (f"Listing overhead: {made.get('list', 0):,} listing requests for the {needed['list']:,} pages needed "
            f"(+{extra_list:,}: each window walked twice, the newest page of a window to plan its split); other "
            f"requests beyond the archives and GET /devices: {others:,} (the account check, retries). ")
