"""SSE log archives: downloaded on request (`--sse-logs`) into `OUT_DIR/sse_logs/` under names we choose."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from . import schema as S
from .dataset import Dataset
from .errors import ApiError
from .manifest import LOG_DIR

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


@dataclass
class SavedLogs:
    """The `sse_logs` rows of the archives saved, and (job_id, problem) for those that failed."""

    table: pa.Table
    errors: list[tuple[str, str]] = field(default_factory=list)


def safe_log_name(job_id: str) -> str:
    """The archive's file name: the job id with anything but [A-Za-z0-9._-] replaced; the server's name is not used."""
    name = _UNSAFE.sub("_", job_id).lstrip(".") or "job"
    return f"{name}.zip"


def save_sse_logs(api: Any, dataset: Dataset, results: Iterable[Any], *, workers: int = 8) -> SavedLogs:
    """Download the log archive of each SSE result and save it atomically; one table row per archive."""
    results = list(results)
    rows: dict[str, list[Any]] = {name: [] for name in S.SSE_LOGS.column_names}
    errors: list[tuple[str, str]] = []

    def one(result: Any) -> tuple[str, str | None, int, str] | tuple[str, str]:
        job_id = result.job_id
        try:
            reply = api.get_sselog(job_id)
            data = base64.b64decode(_field(reply, "file") or "", validate=True)
        except (ApiError, binascii.Error, ValueError) as exc:
            return job_id, f"SSE log could not be downloaded: {exc}"
        rel = f"{LOG_DIR}/{safe_log_name(job_id)}"
        dataset.storage.write_bytes(rel, data)  # named by job id: a rerun replaces, never duplicates
        return job_id, _field(reply, "file_name"), len(data), rel

    with ThreadPoolExecutor(max_workers=workers) as pool:
        for outcome in pool.map(one, results):
            if len(outcome) == 2:
                errors.append(outcome)  # type: ignore[arg-type]
                continue
            for name, value in zip(S.SSE_LOGS.column_names, outcome, strict=True):
                rows[name].append(value)
    table = pa.table({f.name: pa.array(rows[f.name], f.type) for f in S.SSE_LOGS.schema}, schema=S.SSE_LOGS.schema)
    return SavedLogs(table, errors)


def _field(reply: Any, name: str) -> Any:
    return reply.get(name) if isinstance(reply, dict) else getattr(reply, name, None)
