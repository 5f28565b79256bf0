"""The SDK's result objects and a job's counts, rebuilt from an export alone (no network).

`load_result(dataset, job_id)` gives the same `OqtopusJobResult` subclass `result_from_raw` gives for the job's
payload: the dataset's rows are put back into the API's job JSON (the columns, then the `extra` keys where they came
from) and read by `result_from_raw`, so the accessors answer by the same rules. `normalised` is the stored one (what
was read differently from the payload as first sent). An SSE job's `download_log()` / `read_log_text()` read the
archive the export saved (`--sse-logs`). What the dataset does not record cannot come back: an empty `sampling`
object or an empty `divided_counts` (no rows), the operator of an estimation job without a result (`estimations`
has a row only with a result), the presigned sse_log URL (never stored), the oldest payloads' form (their input
comes back under `input`), a job the export could not flatten (it is in `errors`, and the error says so).

`load_results(...)` iterates many jobs in batches of BATCH, so memory holds one batch whatever the export's size.
`counts(dataset, job_id)` is the bitstring -> count mapping as the API gave its keys.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

import polars as pl

from oqtopus_data.dataset.dataset import Dataset
from oqtopus_data.errors import OqtopusDataError
from oqtopus_data.query.views import Location, scan
from oqtopus_data.results.objects import OqtopusJobResult, result_from_raw
from oqtopus_data.tables import schema as S
from oqtopus_data.times import to_utc

BATCH = 500  # jobs whose rows are read together by load_results

__all__ = ["JobNotFound", "counts", "load_result", "load_results"]

_JSON_COLUMNS = ("transpiler_info", "simulator_info", "mitigation_info")
_TIMES = ("submitted_at", "ready_at", "running_at", "ended_at")


class JobNotFound(OqtopusDataError, LookupError):
    """The export holds no such job (or could not flatten it: the message gives the error it recorded)."""


def load_result(dataset: Location, job_id: str, **storage_options: str) -> OqtopusJobResult:
    """The job's result object as `result_from_raw` builds it from the API's payload, from the dataset alone.
    `storage_options` reach an object-store export as they reach `connect` (endpoint_url=..., say)."""
    for result in _load(dataset, [job_id], pl.col("job_id") == job_id, storage_options):
        return result
    raise _not_found(dataset, job_id, storage_options)


def load_results(dataset: Location, job_ids: Iterable[str] | None = None, *,
                 job_type: str | Sequence[str] | None = None, device: str | Sequence[str] | None = None,
                 status: str | Sequence[str] | None = None,
                 since: datetime | None = None, until: datetime | None = None,
                 **storage_options: str) -> Iterator[OqtopusJobResult]:
    """Result objects of the selected jobs (all by default), oldest submission first, read BATCH jobs at a time.

    `job_type`, `device` (device_id) and `status` take one value or several; `since` and `until` bound submitted_at
    inclusively, as the export's and usage's bounds do (a naive time is UTC). Job ids the export does not hold are
    skipped. `storage_options` as for `load_result`.
    """
    where = pl.lit(True)
    if job_ids is not None:
        where &= pl.col("job_id").is_in(list(job_ids))
    for column, value in (("job_type", job_type), ("device_id", device), ("status", status)):
        if value is not None:
            where &= pl.col(column).is_in([value] if isinstance(value, str) else list(value))
    if since is not None:
        where &= pl.col("submitted_at") >= to_utc(since)
    if until is not None:
        where &= pl.col("submitted_at") <= to_utc(until)
    selected = (scan(dataset, "jobs", **storage_options).filter(where).sort("submitted_at", "job_id", nulls_last=True)
                .select("job_id", S.PARTITION_COLUMN).collect())
    ids, months = selected["job_id"].to_list(), selected[S.PARTITION_COLUMN].to_list()
    for start in range(0, len(ids), BATCH):
        batch = ids[start:start + BATCH]
        # Oldest first, so a batch spans few months: the month partitions not among them are not read.
        yield from _load(dataset, batch, pl.col("job_id").is_in(batch), storage_options,
                         sorted(set(months[start:start + BATCH])))


def counts(dataset: Location, job_id: str, sub_result: int | None = None, **storage_options: str) -> dict[str, int]:
    """`{bitstring: count}` of the job, keys exactly as the API gave them; `sub_result=k` for the counts of a
    multi_manual job's k-th sub-program. `{}` when the job has none. `storage_options` as for `load_result`."""
    table, where = ("counts", pl.col("job_id") == job_id) if sub_result is None else (
        "divided_counts", (pl.col("job_id") == job_id) & (pl.col("sub_result") == sub_result))
    rows = scan(dataset, table, **storage_options).filter(where).select("bitstring", "count").collect()
    held = scan(dataset, "jobs", **storage_options).filter(pl.col("job_id") == job_id).select("job_id")
    if rows.is_empty() and held.collect().is_empty():
        raise _not_found(dataset, job_id, storage_options)
    return dict(zip(rows["bitstring"].to_list(), rows["count"].to_list(), strict=True))


# ------------------------------------------------------------------------------------------------------ reading


def _load(dataset: Location, order: list[str], where: pl.Expr, storage_options: dict[str, str],
          months: list[str] | None = None) -> Iterator[OqtopusJobResult]:
    """The results of the jobs `where` selects, in the order of `order`; `months`: the partitions they are in."""
    per_job = where if months is None else where & pl.col(S.PARTITION_COLUMN).is_in(months)
    selected = scan(dataset, "jobs", **storage_options).filter(per_job).collect()
    jobs = {row["job_id"]: row for row in selected.iter_rows(named=True)}
    if not jobs:
        return
    # The other tables are read in the jobs' month partitions only.
    per_job = where & pl.col(S.PARTITION_COLUMN).is_in(sorted({row[S.PARTITION_COLUMN] for row in jobs.values()}))

    def rows(table: str) -> pl.DataFrame:
        return scan(dataset, table, **storage_options).filter(per_job).collect()

    job_counts = _grouped(rows("counts"), ("bitstring", "count"))
    divided: dict[str, dict[str, dict[str, int]]] = {}
    for row in rows("divided_counts").iter_rows(named=True):
        divided.setdefault(row["job_id"], {}).setdefault(str(row["sub_result"]), {})[row["bitstring"]] = row["count"]
    estimations = {row["job_id"]: row for row in rows("estimations").iter_rows(named=True)}
    logs = {row["job_id"]: row["path"] for row in scan(dataset, "sse_logs", **storage_options).filter(where).collect()
            .iter_rows(named=True)}
    storage = Dataset(dataset, **storage_options).storage if logs else None
    for job_id in order:
        row = jobs.get(job_id)
        if row is None:
            continue
        payload = _payload(row, job_counts.get(job_id), divided.get(job_id), estimations.get(job_id))
        client = _StoredLog(storage, logs[job_id]) if storage is not None and job_id in logs else None
        result = result_from_raw(payload, client=client)
        result._notes = list(row["normalised"] or [])  # what the export read differently from the payload as sent
        yield result


def _grouped(frame: pl.DataFrame, columns: tuple[str, str]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for job_id, key, value in zip(frame["job_id"].to_list(), frame[columns[0]].to_list(),
                                  frame[columns[1]].to_list(), strict=True):
        out.setdefault(job_id, {})[key] = value
    return out


def _payload(job: Mapping[str, Any], job_counts: dict[str, int] | None,
             divided: dict[str, dict[str, int]] | None, estimation: Mapping[str, Any] | None) -> dict[str, Any]:
    """The API's job JSON (archives inline) as the row and its counts and estimation describe it."""
    extra = json.loads(job["extra"]) if job["extra"] else {}
    out: dict[str, Any] = {key: job[key] for key in ("job_id", "name", "description", "job_type", "status",
                                                    "device_id", "shots", "execution_time")}
    out.update({key: _json(job[key]) for key in _JSON_COLUMNS})
    out.update({key: job[key].isoformat() if job[key] is not None else None for key in _TIMES})
    source: dict[str, Any] = {}
    if job["program"] is not None:
        source["program"] = list(job["program"])
    if job["sse_program"] is not None:
        source["sse_program"] = job["sse_program"]
    if estimation is not None and estimation["operator"] is not None:
        imag = estimation["operator_coeff_imag"] or [None] * len(estimation["operator"])
        source["operator"] = [{"pauli": t["pauli"], "coeff": t["coeff"] if i is None else [t["coeff"], i]}
                              for t, i in zip(estimation["operator"], imag, strict=True)]
    result: dict[str, Any] = {}
    if job_counts is not None or divided is not None or job["n_outcomes"] is not None:
        sampling: dict[str, Any] = {}
        if job_counts is not None or job["n_outcomes"] is not None:
            sampling["counts"] = job_counts or {}
        if divided is not None:
            sampling["divided_counts"] = dict(sorted(divided.items(), key=lambda kv: int(kv[0])))
        result["sampling"] = sampling
    if estimation is not None:
        exp_value = estimation["exp_value"]
        imag = estimation["exp_value_imag"]
        result["estimation"] = {"exp_value": exp_value if imag is None else [exp_value, imag],
                                "stds": estimation["stds"]}
    transpile = {key: value for key, value in (
        ("transpiled_program", job["transpiled_program"]), ("stats", _json(job["transpile_stats"])),
        ("virtual_physical_mapping", _json(job["virtual_physical_mapping"]))) if value is not None}
    info: dict[str, Any] = {**extra.get("job_info", {}), "message": job["message"]}
    for key, value, more in (("input", source, extra.get("input")), ("result", result, extra.get("result")),
                             ("transpile_result", transpile, extra.get("transpile_result"))):
        if isinstance(more, Mapping) or more is None:
            value = _merged(value, more or {})
            if value:
                info[key] = value
        elif not value:
            info[key] = more  # a part that was not an object, kept whole in extra
    if job["combined_program"] is not None:
        info["combined_program"] = _maybe_json(job["combined_program"])
    out["job_info"] = info
    for key, value in extra.get("job", {}).items():
        out.setdefault(key, value)
    return out


def _merged(declared: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """`declared` with the undeclared keys of the same part put back, recursively."""
    out = dict(declared)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _merged(out[key], value)
        else:
            out.setdefault(key, value)
    return out


def _json(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def _maybe_json(text: str) -> Any:
    """combined_program as sent: an object was stored as JSON text, a program as itself."""
    if text[:1] in "{[":
        try:
            return json.loads(text)
        except ValueError:
            pass
    return text


class _StoredLog:
    """The client an SSE result reads its log through: the archive the export saved."""

    def __init__(self, storage: Any, path: str) -> None:
        self.storage, self.path = storage, path

    def get_sselog(self, job_id: str) -> dict[str, str]:
        """The saved archive in the shape of GET /jobs/{id}/sselog."""
        data = self.storage.read_bytes(self.path)
        return {"file": base64.b64encode(data).decode("ascii"), "file_name": self.path.rsplit("/", 1)[-1]}


def _not_found(dataset: Location, job_id: str, storage_options: dict[str, str]) -> JobNotFound:
    recorded = (scan(dataset, "errors", **storage_options).filter(pl.col("job_id") == job_id)
                .select("stage", "message").collect().rows())
    if recorded:
        stage, message = recorded[-1]
        return JobNotFound(f"job {job_id} is not in the export: its {stage} failed ({message})")
    return JobNotFound(f"job {job_id} is not in the export")
