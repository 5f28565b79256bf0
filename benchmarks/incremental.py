"""Benchmark 3: a second export with nothing new. Target: under 1 s, fewer than 10 requests plus one per job that
was not terminal after the first run (those are fetched again by id)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from typing import Any

from .cloud import CloudProcess
from .common import ROOT, Mode, by_kind, met, run_child, scratch, table

NAME = "incremental"
LATENCY = 0.02


def run(mode: Mode) -> dict[str, Any]:
    n = mode.pick(2_000, 20_000)
    from oqtopus_data.dataset.dataset import Dataset

    with CloudProcess(n, latency=0.0) as cloud, scratch("incremental") as tmp:
        out = str(tmp / "out")
        args = json.dumps({"url": cloud.url, "token": cloud.token, "out": out})
        first = run_child(["benchmarks.tasks", "export", args])
        pending = len(Dataset(out).require_latest().state.get("pending", []))
        cloud.command("latency", seconds=LATENCY)
        cloud.reset()
        second = run_child(["benchmarks.tasks", "export", args])
        lib_requests = cloud.stats()["requests"]
        cloud.reset()
        env = {**os.environ, "OQTOPUS_URL": cloud.url, "OQTOPUS_API_TOKEN": cloud.token}
        t0 = time.perf_counter()
        command = [sys.executable, "-c", "from oqtopus_data.cli import export_command; export_command()"]
        cli = subprocess.run([*command, "-q", out], cwd=ROOT, env=env,
                             capture_output=True, text=True, check=False)
        cli_wall = time.perf_counter() - t0
        cli_requests = cloud.stats()["requests"]
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import oqtopus_data.cli, oqtopus_data.run.export"], cwd=ROOT, check=True)
        import_wall = time.perf_counter() - t0

    s = second.value
    budget = 10 + pending
    rows = [
        ["first run (setup, latency 0)", first.value["exported"], first.value["seconds"], "", ""],
        ["second run: export() call", s["exported"], s["seconds"], lib_requests["total"], by_kind(lib_requests)],
        ["second run: `oqtopus-export -q OUT` process", "", cli_wall, cli_requests["total"], by_kind(cli_requests)],
        ["   of which starting Python and importing", "", import_wall, "", ""],
    ]
    table(f"3. incremental: second run over {n:,} jobs, nothing new, {LATENCY * 1000:.0f} ms per request "
          "[python -m benchmarks --only incremental]", ["", "jobs written", "seconds", "requests", "by kind"], rows,
          note=f"""jobs not terminal after the first run (fetched again by id): {pending}; listed again (overlap of
10 minutes before the bookmark, skipped as already final): {s['listed']}; CLI exit status {cli.returncode}.""")
    table("   targets", ["", "value", "target", "met"], [
        ["export() seconds", f"{s['seconds']:.2f}", "< 1 s", met(s["seconds"] < 1)],
        ["CLI process seconds (Python start + imports included)", f"{cli_wall:.2f}", "< 1 s", met(cli_wall < 1)],
        ["requests", lib_requests["total"], f"< {budget} (10 + {pending} pending)",
         met(lib_requests["total"] < budget)],
    ])
    return {"jobs": n, "pending": pending, "seconds": s["seconds"], "requests": lib_requests,
            "cli_seconds": cli_wall, "import_seconds": import_wall, "first_run_seconds": first.value["seconds"]}
