"""`python -m benchmarks`: run the benchmarks, print tables (options: --quick|--full, --only, --json, --baseline).

Targets met or missed are printed, never asserted: the command exits 0 unless a benchmark itself fails.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from typing import Any

from . import (
    calibration,
    compare,
    cpu_path,
    export_vs_sdk,
    incremental,
    listing,
    memory,
    profile,
    query,
    ratelimit,
    report,
    scale,
    transport,
    verify,
    windows,
)
from .common import Mode, load_average, machine, print_machine

BENCHMARKS = {m.NAME: m for m in (export_vs_sdk, cpu_path, incremental, listing, memory, query, calibration, scale,
                                  windows, transport, ratelimit, report, profile, verify)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_const", dest="mode", const="quick",
                      help="small sizes: the whole suite in about five minutes on 2 cores (default)")
    size.add_argument("--full", action="store_const", dest="mode", const="full", help="the issue's sizes")
    parser.add_argument("--only", metavar="NAME[,NAME]",
                        help=f"run only these benchmarks, of: {', '.join(BENCHMARKS)}")
    parser.add_argument("--json", metavar="FILE", help="also write every figure as JSON to FILE")
    parser.add_argument("--baseline", metavar="FILE",
                        help="an earlier run's --json file (benchmarks/baselines/ has the README's): its key figures "
                             "are printed beside this run's")
    args = parser.parse_args(argv)
    baseline = compare.load(args.baseline) if args.baseline else None
    mode = Mode(args.mode or "quick")
    names = [n.strip() for n in args.only.split(",")] if args.only else list(BENCHMARKS)
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")

    info = machine()
    print(f"oqtopus-data benchmarks, --{mode.name}: {', '.join(names)}")
    print_machine(info)
    print(f"load average at start: {load_average()} (other processes on the machine slow every figure below)")
    results: dict[str, Any] = {"mode": mode.name, "machine": info, "load_start": load_average(), "results": {}}
    failed = []
    started = time.perf_counter()
    for name in names:
        t0 = time.perf_counter()
        try:
            results["results"][name] = BENCHMARKS[name].run(mode)
        except Exception:  # report and go on: one broken benchmark should not hide the others' figures
            traceback.print_exc()
            failed.append(name)
        print(f"  ({name}: {time.perf_counter() - t0:.0f} s, load average {load_average()})")
        sys.stdout.flush()
    results["seconds"] = time.perf_counter() - started
    results["load_end"] = load_average()
    if baseline is not None:
        results["baseline"] = compare.report(results, baseline, args.baseline)
    print(f"\ntotal {results['seconds']:.0f} s; load average at end: {results['load_end']}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=1, default=str)
    if failed:
        print(f"benchmarks that failed to run: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
