"""Benchmark 0 (`--only profile`): where the client's CPU goes, measured before anything is changed.

Two profiles, each in a child process under cProfile (every thread profiled: listing, fetch workers and the main
loop; their statistics merged), against the local cloud with no latency so that only CPU counts:

- the export: `export()` of a history (listing, archive downloads, parsing, flattening, writing);
- the CPU path alone: the exporter's per-job path on in-memory payloads of the same history.

Each prints the CPU seconds per job without the profiler (a second run) and the functions with the most time of
their own. `--json` keeps every figure; `OQTOPUS_BENCH_KEEP=1` keeps the .pstats files for `python -m pstats`.
"""

from __future__ import annotations

import cProfile
import json
import os
import pstats
import sys
import threading
import time
from pathlib import Path
from typing import Any

from .cloud import CloudProcess
from .common import Mode, run_child, scratch, table

NAME = "profile"
TOP = 25


def run(mode: Mode) -> dict[str, Any]:
    n = mode.pick(2_000, 10_000)
    out: dict[str, Any] = {"jobs": n}
    with CloudProcess(n, latency=0.0) as cloud, scratch("profile") as tmp:
        for what in ("export", "cpu"):
            base = {"what": what, "url": cloud.url, "token": cloud.token, "n": n, "tmp": str(tmp)}
            plain = run_child(["benchmarks.profile", json.dumps({**base, "profiled": False})]).value
            profiled = run_child(["benchmarks.profile", json.dumps({**base, "profiled": True})]).value
            cloud.reset()
            per_job = plain["cpu_seconds"] / max(1, plain["jobs"])
            table(f"0. profile of {_TITLES[what]}: {plain['jobs']:,} jobs, {per_job * 1e6:.0f} us CPU per job without "
                  f"the profiler ({plain['cpu_seconds']:.2f} s CPU, {plain['requests']:,} requests) "
                  "[python -m benchmarks --only profile]",
                  ["function (file:line)", "own s", "calls", "with callees s"],
                  [[f, own, calls, cum] for f, own, calls, cum in profiled["top"]],
                  note="Each thread's CPU time (time.thread_time) under cProfile, merged: relative weights, not "
                       "absolute costs.")
            out[what] = {"plain": plain, "top": profiled["top"]}
            if os.environ.get("OQTOPUS_BENCH_KEEP"):
                print(f"  kept {profiled['stats_file']}")
    return out


_TITLES = {"export": "export() against the local cloud, no latency", "cpu": "the per-job CPU path (in memory)"}


# ------------------------------------------------------------------------------------------ the child process
def _child(what: str, url: str, token: str, n: int, tmp: str, profiled: bool) -> dict[str, Any]:
    profiles: list[cProfile.Profile] = []
    lock = threading.Lock()
    if profiled:
        _profile_threads(profiles, lock)
    main = cProfile.Profile(time.thread_time) if profiled else None
    work = _export if what == "export" else _cpu_path
    prepared = work(url, token, n, Path(tmp) / f"{what}-{profiled}", prepare=True)
    c0 = time.process_time()
    if main is not None:
        main.enable()
    jobs, requests = work(url, token, n, Path(tmp) / f"{what}-{profiled}", prepare=False, prepared=prepared)
    if main is not None:
        main.disable()
    cpu = time.process_time() - c0
    result: dict[str, Any] = {"jobs": jobs, "requests": requests, "cpu_seconds": cpu}
    if main is not None:
        stats = pstats.Stats(main)
        with lock:
            for profile in profiles:
                stats.add(profile)
        stats_file = str(Path(tmp) / f"{what}.pstats")
        stats.dump_stats(stats_file)
        result["stats_file"] = stats_file
        result["top"] = _top(stats)
    return result


def _profile_threads(profiles: list[cProfile.Profile], lock: threading.Lock) -> None:
    """Run every thread started from now on under its own profiler (cProfile sees one thread only)."""
    original = threading.Thread.run

    def run(self: threading.Thread) -> None:
        profile = cProfile.Profile(time.thread_time)  # CPU time of its thread, not wall
        with lock:
            profiles.append(profile)
        profile.enable()
        try:
            original(self)
        finally:
            profile.disable()

    threading.Thread.run = run  # type: ignore[method-assign]


def _top(stats: pstats.Stats) -> list[tuple[str, float, int, float]]:
    rows = []
    for (file, line, func), (_cc, calls, own, cum, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        where = f"{Path(file).name}:{line}" if line else file
        rows.append((f"{func} ({where})", own, calls, cum))
    rows.sort(key=lambda r: r[1], reverse=True)
    return rows[:TOP]


def _export(url: str, token: str, n: int, out: Path, *, prepare: bool, prepared: Any = None) -> Any:
    if prepare:
        return None
    from oqtopus_data.client.api import ApiClient
    from oqtopus_data.client.config import Credentials
    from oqtopus_data.run.export import ExportOptions, export

    with ApiClient(Credentials(url=url, token=token, source="benchmark"), workers=16) as api:
        report = export(api, out, ExportOptions(workers=16))
        requests = sum(api.stats.snapshot()["requests"].values())
    return report.exported, requests


def _cpu_path(url: str, token: str, n: int, out: Path, *, prepare: bool, prepared: Any = None) -> Any:
    """The exporter's per-job work on in-memory payloads: read_job and flatten in batches of 500, then write_dataset."""
    from .cpu_path import WARM, convert

    if prepare:
        from .payloads import history_jsonl, load_jobs

        jobs = load_jobs(history_jsonl(n))
        convert(jobs[:WARM], out.with_name(f"{out.name}-warm"))  # imports and first calls: not per-job costs
        return jobs

    tables_jobs = convert(prepared, out)
    return tables_jobs, 0


if __name__ == "__main__":
    print(json.dumps(_child(**json.loads(sys.argv[1]))))
