"""Shared helpers: the machine record, tables of figures, child processes with their peak RSS, scratch space."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("oqtopus-data", "oqtopus-client", "pyarrow", "polars", "duckdb", "orjson", "requests", "aiohttp",
            "numpy", "pyspark")


@dataclass(frozen=True)
class Mode:
    """Sizes of one run: `quick` (a few minutes on 2 cores) or `full`."""

    name: str

    @property
    def quick(self) -> bool:
        return self.name == "quick"

    def pick(self, quick: Any, full: Any) -> Any:
        """The quick or the full value."""
        return quick if self.quick else full


def load_average() -> str:
    """The 1, 5 and 15 minute load averages: other work on the machine shows up in every timing."""
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def machine() -> dict[str, Any]:
    """nproc, CPU model, RAM, OS, Python and library versions: printed before any figure."""
    model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    ram = 0
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram = int(line.split()[1]) * 1024
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "absent"
    java = "absent"
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run(["java", "-version"], capture_output=True, text=True, timeout=30)
        java = (out.stderr or out.stdout).splitlines()[0] if (out.stderr or out.stdout) else "unknown"
    commit = "unknown"
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run(["git", "-C", str(ROOT), "describe", "--always", "--dirty"], capture_output=True,
                             text=True, timeout=30)
        commit = out.stdout.strip() or commit
    return {"nproc": os.cpu_count(), "cpu": model, "ram_gib": round(ram / 2**30, 1), "os": platform.platform(),
            "python": platform.python_version(), "java": java, "packages": versions, "commit": commit}


def print_machine(info: dict[str, Any]) -> None:
    print(f"machine: nproc={info['nproc']}  cpu={info['cpu']}  ram={info['ram_gib']} GiB  {info['os']}")
    print(f"python {info['python']}  java: {info['java']}  oqtopus-data source: git {info.get('commit')}")
    print("packages: " + "  ".join(f"{k} {v}" for k, v in info["packages"].items()))


def met(ok: bool) -> str:
    """A target's verdict in a table: "yes", or "NO" to stand out."""
    return "yes" if ok else "NO"


def by_kind(counts: dict[str, int]) -> str:
    """Request counters (`RequestCounts.snapshot()`) as "list 3, job 8, ...": the kinds that were asked, no total."""
    return ", ".join(f"{k} {v}" for k, v in counts.items() if v and k != "total")


def table(title: str, header: Sequence[str], rows: Sequence[Sequence[Any]], note: str = "") -> None:
    """Print an aligned table of figures (numbers right-aligned)."""
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(header)]
    print(f"\n{title}")
    print("  " + "  ".join(h.ljust(w) if i == 0 else h.rjust(w) for i, (h, w) in enumerate(zip(header, widths,
                                                                                               strict=True))))
    print("  " + "  ".join("-" * w for w in widths))
    for row in cells:
        print("  " + "  ".join(v.ljust(w) if i == 0 else v.rjust(w) for i, (v, w) in enumerate(zip(row, widths,
                                                                                                 strict=True))))
    for paragraph in note.strip().split("\n\n"):
        text = " ".join(paragraph.split())
        if text:
            print(textwrap.fill(text, width=116, initial_indent="  ", subsequent_indent="  "))
    sys.stdout.flush()


def _cell(value: Any) -> str:
    if isinstance(value, float):
        if value == 0:
            return "0"
        if abs(value) >= 100:
            return f"{value:,.0f}"
        if abs(value) >= 10:
            return f"{value:.1f}"
        return f"{value:.2f}" if abs(value) >= 0.01 else f"{value:.2g}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def mib(nbytes: float) -> float:
    return nbytes / 2**20


@dataclass
class ChildResult:
    """What a child process printed as its last JSON line, its wall time and its peak RSS."""

    value: dict[str, Any]
    wall: float
    peak_rss: int  # bytes, from wait4 (the child itself and the descendants it waited for)
    cpu: float  # user + system seconds


def run_child(args: Sequence[str], *, env: dict[str, str] | None = None, timeout: float = 3600) -> ChildResult:
    """Run `python -m benchmarks.<args...>` and collect its JSON answer (its last stdout line) and rusage."""
    cmd = [sys.executable, "-m", *args]
    started = time.perf_counter()
    with tempfile.TemporaryFile(mode="w+") as out, tempfile.TemporaryFile(mode="w+") as err:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=err, env={**os.environ, **(env or {})})
        deadline = started + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.02)
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - started
        out.seek(0)
        err.seek(0)
        lines = [line for line in out.read().splitlines() if line.strip()]
        if proc.returncode != 0 or not lines:
            raise RuntimeError(f"{' '.join(args)} exited {proc.returncode}:\n{err.read()[-4000:]}")
    return ChildResult(json.loads(lines[-1]), wall, usage.ru_maxrss * 1024, usage.ru_utime + usage.ru_stime)


@contextlib.contextmanager
def scratch(name: str) -> Iterator[Path]:
    """A fresh directory for one benchmark, removed afterwards (set OQTOPUS_BENCH_KEEP=1 to keep it)."""
    base = Path(os.environ.get("OQTOPUS_BENCH_DIR") or tempfile.gettempdir()) / "oqtopus-bench"
    path = base / name
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    try:
        yield path
    finally:
        if not os.environ.get("OQTOPUS_BENCH_KEEP"):
            shutil.rmtree(path, ignore_errors=True)


def cache_dir() -> Path:
    """Where generated inputs are kept between runs (they are deterministic)."""
    path = Path(os.environ.get("OQTOPUS_BENCH_DIR") or tempfile.gettempdir()) / "oqtopus-bench-cache"
    path.mkdir(parents=True, exist_ok=True)
    return path


def dir_bytes(path: Path, under: str = "") -> int:
    """Bytes of the Parquet files under `path/under`."""
    return sum(p.stat().st_size for p in (path / under).rglob("*.parquet"))
