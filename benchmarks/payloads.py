"""Inputs of the CPU-path benchmarks: the synthetic history's jobs as the API serves them, job_info resolved
inline, one JSON object per line. Built once per size on all cores and cached (the history is deterministic)."""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import orjson

from oqtopus_data.testing import generate_history

from .common import cache_dir


def _lines(n_jobs: int, seed: int, start: int, stop: int) -> bytes:
    history = generate_history(n_jobs, seed=seed)
    ids = history.job_ids()[start:stop]
    out = []
    for job_id in ids:
        job = history.job(job_id)
        if job.get("status") != "registered":  # a registered job has no fields to export
            out.append(orjson.dumps(job))
    return b"\n".join(out) + b"\n" if out else b""


def history_jsonl(n_jobs: int, seed: int = 0) -> Path:
    """The path of the JSON-lines dump of a `n_jobs` history (generated on first use)."""
    path = cache_dir() / f"history-{n_jobs}-seed{seed}.jsonl"
    if path.exists():
        return path
    workers = max(1, os.cpu_count() or 1)
    step = -(-n_jobs // (workers * 8))
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    with ProcessPoolExecutor(workers) as pool, open(tmp, "wb") as fh:
        chunks = [(n_jobs, seed, a, min(a + step, n_jobs)) for a in range(0, n_jobs, step)]
        for data in pool.map(_lines, *zip(*chunks, strict=True)):
            fh.write(data)
    os.replace(tmp, path)
    return path


def load_jobs(path: Path) -> list[dict[str, Any]]:
    """Every job of a dump, parsed."""
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line]
