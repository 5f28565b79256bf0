"""Flatteners: a batch of result objects in, one `pyarrow.Table` per table of `schema` out.

Pure functions: no I/O, no clock unless `exported_at` is left out. How a payload is read (older forms, the operator,
the extra keys) is `payload`'s rule, applied once by the result objects; whether a value fits its column is
`storable`'s. A job whose payload is wrong or does not fit (an invalid bitstring, a negative count, a count of 2^63,
a number beyond float range, a lone surrogate, an absurd timestamp, ...) lands as one row in `errors` and in no
other table, so a bad job never leaves partial rows and never stops the batch. Counts are built as Arrow columns
(one list extend per job and a vectorised bitstring parser), not as row dicts: they are the many rows.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import chain
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from . import schema as S
from . import storable as st
from .circuits import circuit_id
from .enums import TERMINAL
from .payload import clean_bitstrings, outcomes, short_repr
from .redact import scrub_stored
from .results import OqtopusJobResult, result_from_raw
from .times import parse_datetime

# Timestamps outside this range are treated as corrupt rather than written (Parquet readers choke on some).
_MIN_TIME = datetime(2000, 1, 1, tzinfo=UTC)
_MAX_TIME = datetime(2200, 1, 1, tzinfo=UTC)
_TIME_FIELDS = ("submitted_at", "ready_at", "running_at", "ended_at")
_INT = frozenset({int})
_SEPARATOR = "\x00"  # joins a job's count keys: not a character a bitstring holds
# What one job's reading may raise: its own error, never the batch's. ValueError covers BadJob, storable.Unstorable,
# times.TimeError and UnicodeError; the others come from duck-typed SDK objects and pathological values.
_PER_JOB = (ValueError, TypeError, ArithmeticError, RecursionError)


class BadJob(ValueError):
    """Raised inside the flattener for one job; turned into an `errors` row."""


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
    counts = _CountsBuilder()
    divided = _CountsBuilder(divided=True)
    errors: list[tuple[Any, str]] = []
    final: list[str] = []

    for item in results:
        try:
            result = item if isinstance(item, OqtopusJobResult) else result_from_raw(item)
            row = _job_row(result, exported_at)
            sampling = result.sampling
            job_counts = _count_pairs(sampling["counts"], "counts") if _has(sampling, "counts") else None
            job_divided = _divided_of(sampling["divided_counts"]) if _has(sampling, "divided_counts") else None
            estimation = result.estimation
            est_row = _estimation_row(result, estimation) if estimation is not None else None
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
    row[S.PARTITION_COLUMN] = submitted.strftime("%Y-%m") if submitted else S.UNKNOWN_MONTH
    return row


def _timestamp(value: Any, name: str) -> datetime | None:
    value = parse_datetime(value, name)
    if value is not None and not _MIN_TIME <= value < _MAX_TIME:
        raise BadJob(f"{name} {value.isoformat()} is out of range (2000 to 2199)")
    return value


def _enum_value(value: Any) -> Any:
    return getattr(value, "value", value)


# -------------------------------------------------------------------------------------------------- counts


_Pairs = tuple[Mapping[str, int], int, str]  # one counts mapping (checked), its total, its keys joined by NULs


def _count_pairs(value: Any, what: str) -> _Pairs:
    """One counts mapping checked (string keys, counts that are non-negative 64-bit integers, a total that fits too:
    it is `total_count`), with its total and its keys joined by NULs. Its keys and values are read in place (no list
    copies: count-heavy jobs have thousands)."""
    if not isinstance(value, Mapping):
        if isinstance(value, str):  # the result objects parse JSON text; this one was not a JSON object
            raise BadJob(f"{what} is a string that is not a JSON object")
        raise BadJob(f"{what} is not a mapping of bitstring to count: {type(value).__name__}")
    vals = value.values()
    # join fails on a key that is not a string (str subclasses pass, as isinstance let them); what it makes is how
    # the counts builder turns all keys into one Arrow column at C speed.
    try:
        joined = _SEPARATOR.join(value)
    except TypeError:
        raise BadJob(f"{what} has a key that is not a string") from None
    # set(map(type, ...)) runs in C: half the cost of a generator over every count (bool is not int here)
    if not set(map(type, vals)) <= _INT:
        bad = next(v for v in vals if type(v) is not int)
        raise BadJob(f"{what} has a count that is not an integer: {short_repr(bad)}")
    if value and min(vals) < 0:
        raise BadJob(f"{what} has a negative count: {short_repr(min(vals))}")
    total = sum(vals)
    if total > st.INT64_MAX:  # counts are >= 0, so a total that fits means every count fits
        st.int64(max(vals), f"a count in {what}")
        if what == "counts":
            raise BadJob(f"the sum of {what} does not fit a 64-bit integer (total_count)")
    return value, total, joined


def _divided_of(value: Any) -> list[tuple[int, _Pairs, str]]:
    if not isinstance(value, Mapping):
        if isinstance(value, str):
            raise BadJob("divided_counts is a string that is not a JSON object")
        raise BadJob("divided_counts is not a mapping of sub-result to counts")
    out = []
    for key, sub in value.items():
        label = f"divided_counts[{key if isinstance(key, str) and len(key) <= 40 else short_repr(key, 40)}]"
        try:
            index = int(key)
        except (TypeError, ValueError):
            raise BadJob(f"divided_counts has a sub-result key that is not an integer: {short_repr(key)}") from None
        out.append((st.int32(index, f"{label}: sub-result"), _count_pairs(sub, label), label))
    return out


class _CountsBuilder:
    """Accumulates count pairs of many jobs as flat lists and turns them into Arrow columns at once."""

    def __init__(self, *, divided: bool = False) -> None:
        self.divided = divided
        self.table = S.DIVIDED_COUNTS if divided else S.COUNTS
        self.counts: list[Mapping[str, int]] = []  # each add()'s mapping: its keys, for the rare general conversion
        self.joined: list[str] = []  # each add()'s keys joined by NULs (non-empty ones only)
        self.values: list[int] = []
        self.job_ids: list[str] = []
        self.months: list[str] = []
        self.subs: list[int] = []
        self.lengths: list[int] = []
        self.labels: list[str] = []

    def add(self, job_id: str, month: str, pairs: _Pairs, sub: int = 0, label: str = "counts") -> None:
        counts, _, joined = pairs
        if counts:
            self.joined.append(joined)
        self.counts.append(counts)
        self.values += counts.values()
        self.job_ids.append(job_id)
        self.months.append(month)
        self.subs.append(sub)
        self.lengths.append(len(counts))
        self.labels.append(label)

    def build(self) -> tuple[pa.Table, dict[str, str]]:
        """The table, and the jobs whose bitstrings are invalid (job_id -> message), left out of it."""
        try:
            bitstrings = _strings(_SEPARATOR.join(self.joined), len(self.values))
            if bitstrings is None:  # not plain ASCII (or a key holds the separator): the general conversion
                bitstrings = pa.array(list(chain.from_iterable(self.counts)), pa.string())
        except (UnicodeEncodeError, pa.ArrowInvalid):  # a lone surrogate in a key: rare, so looked for only now
            unencodable = self._unencodable()
            table, bad = self._without(set(unencodable)).build()
            return table, {**unencodable, **bad}
        lengths = np.asarray(self.lengths, dtype=np.int64)
        row_job = np.repeat(np.arange(len(lengths)), lengths)
        cleaned, invalid = clean_bitstrings(bitstrings)
        bad: dict[str, str] = {}
        for row, key in invalid.items():
            entry = int(row_job[row])
            bad.setdefault(self.job_ids[entry], f"invalid bitstring {key[:80]!r} in {self.labels[entry]}")
        n_bits = pc.utf8_length(cleaned).cast(pa.int32())
        columns: dict[str, Any] = {
            "job_id": pa.array(self.job_ids, pa.string()).take(row_job),
            "bitstring": bitstrings,
            "outcome": outcomes(cleaned),
            "n_bits": n_bits,
            "count": pa.array(self.values, pa.int64()),
            S.PARTITION_COLUMN: pa.array(self.months, pa.string()).take(row_job),
        }
        if self.divided:
            columns["sub_result"] = pa.array(self.subs, pa.int32()).take(row_job)
        table = pa.table({name: columns[name] for name in self.table.column_names}, schema=self.table.schema)
        if invalid:
            keep = np.ones(len(table), dtype=bool)
            keep[list(invalid)] = False
            table = table.filter(pa.array(keep))
        return table, bad

    def _unencodable(self) -> dict[str, str]:
        """The jobs with a key that is not valid UTF-8, and what is wrong."""
        bad: dict[str, str] = {}
        for entry, counts in enumerate(self.counts):
            for key in counts:
                try:
                    st.utf8(key, f"a bitstring in {self.labels[entry]}")
                except st.Unstorable as exc:
                    bad.setdefault(self.job_ids[entry], str(exc))
                    break
        return bad

    def _without(self, job_ids: set[str]) -> _CountsBuilder:
        kept = _CountsBuilder(divided=self.divided)
        for entry, counts in enumerate(self.counts):
            if self.job_ids[entry] not in job_ids:
                kept.add(self.job_ids[entry], self.months[entry], (counts, 0, _SEPARATOR.join(counts)),
                         self.subs[entry], self.labels[entry])
        return kept


def _strings(joined: str, n: int) -> pa.StringArray | None:
    """`n` ASCII strings joined by NULs as one Arrow string column, built over the bytes with numpy (a third of the
    cost of converting a million Python strings one by one); None when the text is not ASCII or does not hold
    exactly `n` strings (a key with a NUL in it), for the caller to convert them the general way."""
    if not joined.isascii():
        return None
    raw = np.frombuffer(joined.encode("ascii"), dtype=np.uint8)
    ends = np.flatnonzero(raw == 0)
    if len(ends) != max(n - 1, 0) or (n == 0 and len(raw)):
        return None
    offsets = np.empty(n + 1, dtype=np.int32)
    offsets[0] = 0
    offsets[1:n] = ends - np.arange(n - 1)  # each separator before it shifts a string's start by one
    offsets[n] = len(raw) - max(n - 1, 0)
    data = raw[raw != 0] if n > 1 else raw
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(data))


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
