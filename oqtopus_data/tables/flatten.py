"""Flatteners: a batch of jobs (raw mappings, `typed` jobs or result objects) in, one `pyarrow.Table` per table of
`schema` out.

A job in the current form is read from the Structs `typed` decodes it into (its types checked in C); any other job,
or one whose value a Struct cannot vouch for, is read from its result object, value by value, as below.

Pure functions: no I/O, no clock unless `exported_at` is left out. How a payload is read (older forms, the operator,
the extra keys) is `payload`'s rule, applied once by the result objects; whether a value fits its column is
`storable`'s. A job whose payload is wrong or does not fit (an invalid bitstring, a negative count, a count of 2^63,
a number beyond float range, a lone surrogate, an absurd timestamp, ...) lands as one row in `errors` and in no
other table, so a bad job never leaves partial rows and never stops the batch. Counts are built as Arrow columns
(`count_columns`), not as row dicts: they are the many rows.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from oqtopus_data.enums import TERMINAL
from oqtopus_data.redact import scrub_stored
from oqtopus_data.results.circuits import circuit_id
from oqtopus_data.results.objects import OqtopusJobResult, result_from_raw
from oqtopus_data.results.payload import short_repr
from oqtopus_data.tables import schema as S
from oqtopus_data.tables import storable as st
from oqtopus_data.tables.count_columns import CountsBuilder, count_pairs, divided_of
from oqtopus_data.tables.storable import BadJob
from oqtopus_data.tables.typed import MAX_TIME, MIN_TIME, TypedJob, decode
from oqtopus_data.tables.typed import estimation_row as typed_estimation_row
from oqtopus_data.tables.typed import job_row as typed_job_row
from oqtopus_data.tables.typed import sampling as typed_sampling
from oqtopus_data.times import parse_datetime

_TIME_FIELDS = ("submitted_at", "ready_at", "running_at", "ended_at")
# What one job's reading may raise: its own error, never the batch's. ValueError covers BadJob, storable.Unstorable,
# times.TimeError and UnicodeError; the others come from duck-typed SDK objects and pathological values.
_PER_JOB = (ValueError, TypeError, ArithmeticError, RecursionError)


@dataclass(frozen=True)
class Flattened:
    """A batch flattened: its tables and, beside them as values (never read back from Arrow), the jobs that failed
    and the ids of the jobs written with a terminal status (their rows are final)."""

    tables: dict[str, pa.Table]
    #: (job_id, message) of each job left out: the id as sent when it is text, its repr otherwise, None when absent.
    errors: list[tuple[str | None, str]]
    final_ids: list[str]


def flatten(results: Iterable[Any], *, exported_at: datetime | None = None) -> dict[str, pa.Table]:
    """Flatten results (oqtopus-data's or the official SDK's, duck-typed) into the dataset's tables.

    Returns `jobs`, `counts`, `divided_counts`, `estimations` and `errors`, each with its declared schema.
    """
    return flatten_batch(results, exported_at=exported_at).tables


def flatten_batch(results: Iterable[Any], *, exported_at: datetime | None = None) -> Flattened:
    """`flatten`, with the failed jobs and the final ids handed back as values beside the tables (the exporter's
    view: it records the errors and keeps the final rows apart without reading either back from Arrow)."""
    exported_at = exported_at or datetime.now(UTC)
    jobs = _Columns(S.JOBS)
    estimations = _Columns(S.ESTIMATIONS)
    counts = CountsBuilder()
    divided = CountsBuilder(divided=True)
    errors: list[tuple[Any, str]] = []
    final: list[str] = []

    for item in results:
        typed = item if type(item) is TypedJob else decode(item)
        parts = _typed_parts(typed, exported_at) if typed is not None else None
        try:
            row, job_counts, job_divided, est_row = parts or _parts(item, exported_at)
        except _PER_JOB as exc:
            errors.append((_id_of(item), _describe(exc)))
            continue
        job_id, month = row["job_id"], row[S.PARTITION_COLUMN]
        if job_counts is not None:
            row["n_outcomes"], row["total_count"] = len(job_counts[0]), job_counts[1]
            counts.add(job_id, month, job_counts)
        for sub, sub_counts, label in job_divided or ():
            divided.add(job_id, month, sub_counts, sub, label)
        if est_row is not None:
            est_row["job_id"], est_row[S.PARTITION_COLUMN] = job_id, month
            estimations.append(est_row)
        jobs.append(row)
        if row["status"] in TERMINAL:
            final.append(job_id)

    counts_table, bad_counts = counts.build()
    divided_table, bad_divided = divided.build()
    bad = {**bad_counts, **bad_divided}
    errors += bad.items()
    tables = {
        "jobs": jobs.build(),
        "counts": counts_table,
        "divided_counts": divided_table,
        "estimations": estimations.build(),
        "errors": error_rows(((job_id, "flatten", msg) for job_id, msg in errors), exported_at),
    }
    if bad:  # a job with a bad bitstring found by the vectorised pass: drop it from every table
        drop = pa.array(list(bad), pa.string())
        for name in ("jobs", "counts", "divided_counts", "estimations"):
            t = tables[name]
            tables[name] = t.filter(pc.invert(pc.is_in(t["job_id"], value_set=drop)))
        final = [job_id for job_id in final if job_id not in bad]
    return Flattened(tables, [(_error_id(job_id), message) for job_id, message in errors], final)


Parts = tuple[dict[str, Any], Any, Any, dict[str, Any] | None]  # a job's row, counts, divided counts, estimation


def _parts(item: Any, exported_at: datetime) -> Parts:
    """One job read the slow way: its result object, each value checked by `storable` (errors named)."""
    if type(item) is TypedJob:
        item = item.result()
    result = item if isinstance(item, OqtopusJobResult) else result_from_raw(item)
    row = _job_row(result, exported_at)
    sampling = result.sampling
    job_counts = count_pairs(sampling["counts"], "counts") if _has(sampling, "counts") else None
    job_divided = divided_of(sampling["divided_counts"]) if _has(sampling, "divided_counts") else None
    estimation = result.estimation
    est_row = _estimation_row(result, estimation) if estimation is not None else None
    return row, job_counts, job_divided, est_row


def _typed_parts(typed: TypedJob, exported_at: datetime) -> Parts | None:
    """One job the typed decoder accepted, read from its Structs; None when a value needs the slow path (which
    then names it exactly as before)."""
    try:
        row = typed_job_row(typed, exported_at)
        sampling = typed_sampling(typed)
        counts = sampling.counts if sampling is not None else None
        divided = sampling.divided_counts if sampling is not None else None
        return (row, count_pairs(counts, "counts") if counts is not None else None,
                divided_of(divided) if divided is not None else None, typed_estimation_row(typed))
    except _PER_JOB:
        return None


def _error_id(job_id: Any) -> str | None:
    """A failed job's id as the errors table names it, unescaped: text as sent, anything else as its repr."""
    return job_id if job_id is None or isinstance(job_id, str) else repr(job_id)


def error_rows(errors: Iterable[tuple[Any, str, str]], recorded_at: datetime) -> pa.Table:
    """An `errors` table from (job_id, stage, message) triples, for failures at any stage.

    Always writable: a job id or message that is not valid UTF-8 (a lone surrogate) is stored with `\\udXXX`
    escapes, and the message says so; a job id that is not text is stored as its repr.
    """
    ids, stages, messages = [], [], []
    for job_id, stage, message in errors:
        note = ""
        if job_id is not None:
            job_id, fixed = st.escaped(_error_id(job_id))
            note = " (job_id is not valid UTF-8: stored with \\u escapes)" if fixed else ""
        message, fixed = st.escaped(scrub_stored(str(message)))
        note += " (message text not valid UTF-8 stored with \\u escapes)" if fixed else ""
        ids.append(job_id)
        stages.append(st.escaped(str(stage))[0])
        messages.append(message + note)
    return pa.table(
        {
            "job_id": pa.array(ids, pa.string()),
            "stage": pa.array(stages, pa.string()),
            "message": pa.array(messages, pa.string()),
            "recorded_at": pa.array([recorded_at] * len(ids), S.TIMESTAMP),
        },
        schema=S.ERRORS.schema,
    )


def _describe(exc: BaseException) -> str:
    if isinstance(exc, RecursionError):
        return "the payload is nested too deeply to be read"
    if isinstance(exc, ValueError) and not isinstance(exc, UnicodeError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"  # not one of ours: say what it was


def _id_of(item: Any) -> Any:
    return item.get("job_id") if isinstance(item, Mapping) else getattr(item, "job_id", None)


def _has(mapping: Mapping[str, Any] | None, key: str) -> bool:
    return mapping is not None and mapping.get(key) is not None


class _Columns:
    """Rows of the tables with one row per job, as tuples in column order (taken from each row's dict in one C call),
    turned into columns at the end (`zip` transposes them in C too)."""

    def __init__(self, table: S.Table) -> None:
        self.table = table
        names = table.column_names
        self._take = operator.itemgetter(*names) if len(names) > 1 else (lambda row: (row[names[0]],))
        self.rows: list[tuple[Any, ...]] = []

    def append(self, row: dict[str, Any]) -> None:
        """Add a row: a dict with every column of the table."""
        self.rows.append(self._take(row))

    def build(self) -> pa.Table:
        fields = self.table.schema
        columns = list(zip(*self.rows, strict=True)) if self.rows else [() for _ in fields]
        return pa.table({f.name: pa.array(list(values), f.type) for f, values in zip(fields, columns, strict=True)},
                        schema=fields)


# ---------------------------------------------------------------------------------------------------- jobs


def _job_row(result: OqtopusJobResult, exported_at: datetime) -> dict[str, Any]:
    job_id = result.job_id
    if not isinstance(job_id, str) or not job_id:
        raise BadJob(f"job_id is missing or not a string: {short_repr(job_id)}")
    st.utf8(job_id, "job_id")
    shots = result.shots
    if shots is not None and (type(shots) is not int or shots < 0):
        raise BadJob(f"shots is not a non-negative integer: {short_repr(shots)}")
    transpile = result.transpile_result if isinstance(result.transpile_result, Mapping) else {}
    combined = result.combined_program
    row: dict[str, Any] = {
        "job_id": job_id,
        "name": st.text(result.name, "name"),
        "description": st.text(result.description, "description"),
        "job_type": st.text(_enum_value(result.job_type), "job_type"),
        "status": st.text(_enum_value(result.status), "status"),
        "device_id": st.text(result.device_id, "device_id"),
        "shots": st.int64(shots, "shots"),
        "execution_time": st.float64(result.execution_time, "execution_time"),
        "message": st.text(scrub_stored(result.message), "message"),  # a presigned URL quoted in it: unsigned
        "transpiler_info": st.json_text(result.transpiler_info, "transpiler_info"),
        "simulator_info": st.json_text(result.simulator_info, "simulator_info"),
        "mitigation_info": st.json_text(result.mitigation_info, "mitigation_info"),
        "program": st.strings(result.program, "program"),
        "sse_program": st.text(result.sse_program, "sse_program"),
        "combined_program": st.text(combined, "combined_program"),  # text as sent, an object as JSON text
        "transpiled_program": st.text(transpile.get("transpiled_program"), "transpiled_program"),
        "virtual_physical_mapping": st.json_text(transpile.get("virtual_physical_mapping"),
                                                 "virtual_physical_mapping"),
        "transpile_stats": st.json_text(transpile.get("stats"), "transpile_stats"),
        "normalised": st.strings(result.normalised, "normalised"),
        "n_outcomes": None,  # set from the counts, when the job has them
        "total_count": None,
        "exported_at": exported_at,
        "extra": st.json_text(scrub_stored(result.extra) or None, "extra"),
        "circuit_id": circuit_id(result.program),
    }
    for name in _TIME_FIELDS:
        row[name] = _timestamp(getattr(result, name), name)
    submitted = row["submitted_at"]
    row[S.PARTITION_COLUMN] = S.partition_month(submitted)
    return row


def _timestamp(value: Any, name: str) -> datetime | None:
    value = parse_datetime(value, name)
    if value is not None and not MIN_TIME <= value < MAX_TIME:
        raise BadJob(f"{name} {value.isoformat()} is out of range (2000 to 2199)")
    return value


def _enum_value(value: Any) -> Any:
    return getattr(value, "value", value)


# --------------------------------------------------------------------------------------------- estimations


def _estimation_row(result: Any, estimation: Mapping[str, Any]) -> dict[str, Any]:
    values = {}
    for key in ("exp_value", "stds"):
        value = estimation.get(key)
        if isinstance(value, list | tuple):  # a valid [x] or [re, im] was read by the result object already
            raise BadJob(f"{key} is a list of {len(value)} values, not a number, [x] or [re, im]")
        values[key] = st.float64(value, key)
    imag = getattr(result, "exp_value_imag", None)
    operator = result.operator
    coeff_imag = result.operator_coeff_imag
    return {
        **values,
        "exp_value_imag": st.float64(imag, "exp_value imaginary part"),
        "operator": None if operator is None else [
            {"pauli": st.utf8(term["pauli"], f"operator[{i}].pauli"),
             "coeff": st.float64(term["coeff"], f"operator[{i}].coeff")}
            for i, term in enumerate(operator)],
        "operator_coeff_imag": None if coeff_imag is None else [
            st.float64(value, f"operator[{i}].coeff imaginary part") for i, value in enumerate(coeff_imag)],
    }
