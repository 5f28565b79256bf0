"""Flatteners: a batch of result objects in, one `pyarrow.Table` per table of `schema` out.

Pure functions: no I/O, no clock unless `exported_at` is left out. A job whose payload is wrong (invalid bitstring,
counts that are not non-negative integers, absurd timestamps, ...) lands as one row in `errors` and in no other
table, so a bad job never leaves partial rows. Counts are built as Arrow columns (one list extend per job and a
vectorised bitstring parser), not as row dicts: they are the many rows.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from . import schema as S

# Timestamps outside this range are treated as corrupt rather than written (Parquet readers choke on some).
_MIN_TIME = datetime(2000, 1, 1, tzinfo=UTC)
_MAX_TIME = datetime(2200, 1, 1, tzinfo=UTC)
_TIME_FIELDS = ("submitted_at", "ready_at", "running_at", "ended_at")
_PARSE_CHUNK = 1 << 18  # rows per vectorised parsing step: bounds the temporary arrays
_STR, _INT = frozenset({str}), frozenset({int})
_ZERO, _ONE = ord("0"), ord("1")


class BadJob(ValueError):
    """Raised inside the flattener for one job; turned into an `errors` row."""


def flatten(results: Iterable[Any], *, exported_at: datetime | None = None) -> dict[str, pa.Table]:
    """Flatten results (oqtopus-data's or the official SDK's, duck-typed) into the dataset's tables.

    Returns `jobs`, `counts`, `divided_counts`, `estimations` and `errors`, each with its declared schema.
    """
    exported_at = exported_at or datetime.now(UTC)
    jobs = _Columns(S.JOBS)
    estimations = _Columns(S.ESTIMATIONS)
    counts = _CountsBuilder()
    divided = _CountsBuilder(divided=True)
    errors: list[tuple[str | None, str]] = []

    for result in results:
        job_id = getattr(result, "job_id", None)
        try:
            row = _job_row(result, exported_at)
            sampling = _mapping(getattr(result, "sampling", None))
            job_counts = _counts_of(sampling, "counts") if sampling is not None else None
            job_divided = _divided_of(sampling) if sampling is not None else None
            estimation = _mapping(getattr(result, "estimation", None))
            est_row = _estimation_row(result, estimation) if estimation is not None else None
        except BadJob as exc:
            errors.append((job_id, str(exc)))
            continue
        month = row[S.PARTITION_COLUMN]
        if job_counts is not None:
            row["n_outcomes"] = len(job_counts[0])
            row["total_count"] = sum(job_counts[1])
            counts.add(job_id, month, job_counts)
        for sub, sub_counts in job_divided or ():
            divided.add(job_id, month, sub_counts, sub)
        if est_row is not None:
            est_row["job_id"], est_row[S.PARTITION_COLUMN] = job_id, month
            estimations.append(est_row)
        jobs.append(row)

    counts_table, bad_counts = counts.build()
    divided_table, bad_divided = divided.build()
    bad = {**bad_counts, **bad_divided}
    errors += bad.items()
    tables = {
        "jobs": jobs.build(),
        "counts": counts_table,
        "divided_counts": divided_table,
        "estimations": estimations.build(),
        "errors": _errors_table(errors, exported_at),
    }
    if bad:  # a job with a bad bitstring found by the vectorised pass: drop it from every table
        drop = pa.array(list(bad), pa.string())
        for name in ("jobs", "counts", "divided_counts", "estimations"):
            t = tables[name]
            tables[name] = t.filter(pc.invert(pc.is_in(t["job_id"], value_set=drop)))
    return tables


def error_rows(errors: Iterable[tuple[str | None, str, str]], recorded_at: datetime) -> pa.Table:
    """An `errors` table from (job_id, stage, message) triples, for failures before flattening."""
    errors = list(errors)
    return pa.table(
        {
            "job_id": pa.array([e[0] for e in errors], pa.string()),
            "stage": pa.array([e[1] for e in errors], pa.string()),
            "message": pa.array([e[2] for e in errors], pa.string()),
            "recorded_at": pa.array([recorded_at] * len(errors), S.TIMESTAMP),
        },
        schema=S.ERRORS.schema,
    )


def _errors_table(errors: list[tuple[str | None, str]], at: datetime) -> pa.Table:
    return error_rows(((job_id, "flatten", msg) for job_id, msg in errors), at)


class _Columns:
    """Column lists for the tables with one row per job (few rows: plain appends are fine)."""

    def __init__(self, table: S.Table) -> None:
        self.table = table
        self.data: dict[str, list[Any]] = {name: [] for name in table.column_names}

    def append(self, row: Mapping[str, Any]) -> None:
        for name, values in self.data.items():
            values.append(row.get(name))

    def build(self) -> pa.Table:
        fields = self.table.schema
        return pa.table({f.name: pa.array(self.data[f.name], f.type) for f in fields}, schema=fields)


# ---------------------------------------------------------------------------------------------------- jobs


def _job_row(result: Any, exported_at: datetime) -> dict[str, Any]:
    job_id = getattr(result, "job_id", None)
    if not isinstance(job_id, str) or not job_id:
        raise BadJob(f"job_id is missing or not a string: {job_id!r}")
    shots = getattr(result, "shots", None)
    if shots is not None and (not isinstance(shots, int) or isinstance(shots, bool) or shots < 0):
        raise BadJob(f"shots is not a non-negative integer: {shots!r}")
    row: dict[str, Any] = {
        "job_id": job_id,
        "name": _text(getattr(result, "name", None)),
        "description": _text(getattr(result, "description", None)),
        "job_type": _enum_value(getattr(result, "job_type", None)),
        "status": _enum_value(getattr(result, "status", None)),
        "device_id": _text(getattr(result, "device_id", None)),
        "shots": shots,
        "execution_time": _number(getattr(result, "execution_time", None), "execution_time"),
        "message": _text(getattr(result, "message", None)),
        "transpiler_info": _json_text(getattr(result, "transpiler_info", None)),
        "simulator_info": _json_text(getattr(result, "simulator_info", None)),
        "mitigation_info": _json_text(getattr(result, "mitigation_info", None)),
        "normalised": list(getattr(result, "normalised", None) or []),
        "exported_at": exported_at,
    }
    for name in _TIME_FIELDS:
        row[name] = _timestamp(getattr(result, name, None), name)
    inputs = _input_of(result)
    program = inputs.get("program")
    if program is not None and not (isinstance(program, list) and all(isinstance(p, str) for p in program)):
        raise BadJob("input program is not a list of strings")
    row["program"] = program
    row["sse_program"] = _text(inputs.get("sse_program"))
    combined = _combined_program(result)
    row["combined_program"] = combined if combined is None or isinstance(combined, str) else _json_text(combined)
    transpile = _mapping(getattr(result, "transpile_result", None)) or {}
    row["transpiled_program"] = _text(transpile.get("transpiled_program"))
    row["virtual_physical_mapping"] = _json_text(transpile.get("virtual_physical_mapping"))
    row["transpile_stats"] = _json_text(transpile.get("stats"))
    submitted = row["submitted_at"]
    row[S.PARTITION_COLUMN] = submitted.strftime("%Y-%m") if submitted else S.UNKNOWN_MONTH
    return row


def _input_of(result: Any) -> Mapping[str, Any]:
    """The job's input (program, operator, sse_program) from our helper, else from job_info as the SDK holds it."""
    program = getattr(result, "program", None)
    found = _mapping(getattr(result, "input", None))
    if found is None:
        info = _mapping(getattr(result, "job_info", None)) or {}
        found = _mapping(info.get("input")) or {k: info[k] for k in ("program", "operator") if k in info}
    if program is not None and "program" not in found:
        found = {**found, "program": program}
    return found


def _combined_program(result: Any) -> Any:
    if hasattr(result, "combined_program"):
        return result.combined_program
    info = _mapping(getattr(result, "job_info", None)) or {}
    return info.get("combined_program")


def _timestamp(value: Any, name: str) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise BadJob(f"{name} is not an ISO-8601 date-time: {value[:40]!r}") from None
    if not isinstance(value, datetime):
        raise BadJob(f"{name} is not a date-time: {value!r}")
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    if not _MIN_TIME <= value < _MAX_TIME:
        raise BadJob(f"{name} {value.isoformat()} is out of range (2000 to 2199)")
    return value.astimezone(UTC)


# -------------------------------------------------------------------------------------------------- counts


def _counts_of(sampling: Mapping[str, Any], key: str) -> tuple[list[str], list[int]] | None:
    value = sampling.get(key)
    if value is None:
        return None
    return _count_pairs(value, key)


def _count_pairs(value: Any, what: str) -> tuple[list[str], list[int]]:
    """Keys and values of one counts mapping, checked: string keys, non-negative integer counts."""
    if isinstance(value, str):  # older servers sent counts as JSON text; the result objects normally parse it
        try:
            value = json.loads(value)
        except ValueError:
            raise BadJob(f"{what} is a string that is not JSON") from None
    if not isinstance(value, Mapping):
        raise BadJob(f"{what} is not a mapping of bitstring to count: {type(value).__name__}")
    keys = list(value.keys())
    vals = list(value.values())
    # set(map(type, ...)) runs in C: half the cost of a generator over every count (bool is not int here)
    if not set(map(type, keys)) <= _STR:
        raise BadJob(f"{what} has a key that is not a string")
    if not set(map(type, vals)) <= _INT:
        bad = next(v for v in vals if type(v) is not int)
        raise BadJob(f"{what} has a count that is not an integer: {bad!r}")
    if vals and min(vals) < 0:
        raise BadJob(f"{what} has a negative count: {min(vals)}")
    return keys, vals


def _divided_of(sampling: Mapping[str, Any]) -> list[tuple[int, tuple[list[str], list[int]]]] | None:
    value = sampling.get("divided_counts")
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise BadJob("divided_counts is a string that is not JSON") from None
    if not isinstance(value, Mapping):
        raise BadJob("divided_counts is not a mapping of sub-result to counts")
    out = []
    for key, sub in value.items():
        try:
            index = int(key)
        except (TypeError, ValueError):
            raise BadJob(f"divided_counts has a sub-result key that is not an integer: {key!r}") from None
        out.append((index, _count_pairs(sub, f"divided_counts[{key}]")))
    return out


class _CountsBuilder:
    """Accumulates count pairs of many jobs as flat lists and turns them into Arrow columns at once."""

    def __init__(self, *, divided: bool = False) -> None:
        self.divided = divided
        self.table = S.DIVIDED_COUNTS if divided else S.COUNTS
        self.keys: list[str] = []
        self.values: list[int] = []
        self.job_ids: list[str] = []
        self.months: list[str] = []
        self.subs: list[int] = []
        self.lengths: list[int] = []

    def add(self, job_id: str, month: str, pairs: tuple[list[str], list[int]], sub: int = 0) -> None:
        keys, values = pairs
        self.keys += keys
        self.values += values
        self.job_ids.append(job_id)
        self.months.append(month)
        self.subs.append(sub)
        self.lengths.append(len(keys))

    def build(self) -> tuple[pa.Table, dict[str, str]]:
        """The table, and the jobs whose bitstrings are invalid (job_id -> message), left out of it."""
        lengths = np.asarray(self.lengths, dtype=np.int64)
        row_job = np.repeat(np.arange(len(lengths)), lengths)
        bitstrings = pa.array(self.keys, pa.string())
        cleaned, invalid = _clean_bitstrings(bitstrings)
        bad: dict[str, str] = {}
        for row, message in invalid.items():
            bad.setdefault(self.job_ids[row_job[row]], message)
        n_bits = pc.utf8_length(cleaned).cast(pa.int32())
        columns: dict[str, Any] = {
            "job_id": pa.array(self.job_ids, pa.string()).take(row_job),
            "bitstring": bitstrings,
            "outcome": _outcomes(cleaned),
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


def _clean_bitstrings(bitstrings: pa.StringArray) -> tuple[pa.StringArray, dict[int, str]]:
    """Bitstrings with blanks, `_` and a `0b` prefix removed (as the SDK parses them), and the invalid rows."""
    if len(bitstrings) == 0 or _all_binary(bitstrings):
        return bitstrings, {}
    pure = pc.match_substring_regex(bitstrings, r"^[01]+$")
    cleaned = bitstrings.to_pylist()
    invalid: dict[int, str] = {}
    for row in np.flatnonzero(~pure.to_numpy(zero_copy_only=False)):
        text = cleaned[row]
        fixed = text.strip().replace("_", "").replace(" ", "").removeprefix("0b")
        if not fixed or fixed.strip("01"):
            invalid[int(row)] = f"invalid bitstring {text[:80]!r} in counts"
            fixed = "0"  # placeholder: the row is dropped with its job
        cleaned[row] = fixed
    return pa.array(cleaned, pa.string()), invalid


def _all_binary(strings: pa.StringArray) -> bool:
    """Whether every string is non-empty and only 0s and 1s: one pass over the data buffer, no regex."""
    if strings.null_count:
        return False
    offsets = np.frombuffer(strings.buffers()[1], dtype=np.int32, count=len(strings) + 1, offset=strings.offset * 4)
    if (np.diff(offsets) == 0).any():
        return False
    data = np.frombuffer(strings.buffers()[2], dtype=np.uint8, count=int(offsets[-1] - offsets[0]),
                         offset=int(offsets[0]))
    return bool(((data == _ZERO) | (data == _ONE)).all())


def _outcomes(cleaned: pa.StringArray) -> pa.Array:
    """Clean bitstrings as uint64 (null past 64 bits), parsed with numpy over the Arrow data buffer."""
    parts = [_outcomes_chunk(cleaned.slice(i, _PARSE_CHUNK)) for i in range(0, len(cleaned), _PARSE_CHUNK)]
    return pa.concat_arrays(parts) if parts else pa.array([], pa.uint64())


def _outcomes_chunk(chunk: pa.StringArray) -> pa.Array:
    n = len(chunk)
    offsets = np.frombuffer(chunk.buffers()[1], dtype=np.int32, count=n + 1, offset=chunk.offset * 4)
    data = np.frombuffer(chunk.buffers()[2], dtype=np.uint8)
    lengths = np.diff(offsets)
    values = np.zeros(n, dtype=np.uint64)
    # Rows of one width form a (rows, width) matrix of 0/1 bytes; packbits turns each row, left-padded to 64
    # bits, into 8 big-endian bytes. Widths are few (a job's bitstrings share one), so this loop is short.
    for width in np.unique(lengths).tolist():
        if not 0 < width <= 64:
            continue  # past 64 bits: null (masked below)
        rows = np.flatnonzero(lengths == width)
        bits = np.zeros((len(rows), 64), dtype=np.uint8)
        bits[:, 64 - width:] = data[offsets[rows, None] + np.arange(width)] - _ZERO
        values[rows] = np.packbits(bits, axis=1).view(">u8").ravel()
    return pa.array(values, pa.uint64(), mask=lengths > 64)


# --------------------------------------------------------------------------------------------- estimations


def _estimation_row(result: Any, estimation: Mapping[str, Any]) -> dict[str, Any]:
    exp_value = estimation.get("exp_value")
    imag = getattr(result, "exp_value_imag", None)
    if isinstance(exp_value, list | tuple):  # legacy [re, im]; our result objects normally do this
        if len(exp_value) != 2:
            raise BadJob(f"exp_value is a list of {len(exp_value)} numbers, not [re, im]")
        exp_value, imag = exp_value
    stds = estimation.get("stds")
    if isinstance(stds, list | tuple) and len(stds) == 2:
        stds = stds[0]
    return {
        "exp_value": _number(exp_value, "exp_value"),
        "stds": _number(stds, "stds"),
        "exp_value_imag": _number(imag, "exp_value imaginary part"),
        "operator": _operator(_input_of(result).get("operator", getattr(result, "operator", None))),
    }


def _operator(value: Any) -> list[dict[str, Any]] | None:
    if value is None:
        return None
    if not isinstance(value, list):
        raise BadJob("input operator is not a list of terms")
    terms = []
    for term in value:
        term = _mapping(term)
        if term is None or not isinstance(term.get("pauli"), str):
            raise BadJob("input operator has a term without a pauli string")
        coeff = term.get("coeff")
        if isinstance(coeff, list | tuple) and coeff:  # some payloads give [re, im]
            coeff = coeff[0]
        terms.append({"pauli": term["pauli"], "coeff": _number(coeff, "operator coeff")})
    return terms


# ----------------------------------------------------------------------------------------------- helpers


def _mapping(value: Any) -> Mapping[str, Any] | None:
    """A plain mapping from a mapping or an SDK (pydantic / OpenAPI) model; None for anything else."""
    if value is None or type(value) is dict or isinstance(value, Mapping):  # the ABC check is slow; dicts are common
        return value
    for method in ("to_dict", "model_dump"):
        fn = getattr(value, method, None)
        if callable(fn):
            out = fn()
            return out if isinstance(out, Mapping) else None
    return None


def _enum_value(value: Any) -> str | None:
    value = getattr(value, "value", value)
    return None if value is None else str(value)


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _number(value: Any, name: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadJob(f"{name} is not a number: {value!r}")
    value = float(value)
    if math.isinf(value):
        raise BadJob(f"{name} is infinite")
    return value


_ENCODER = json.JSONEncoder(sort_keys=True, ensure_ascii=False)  # json.dumps would build one per call


def _json_text(value: Any) -> str | None:
    if value is None:
        return None
    mapping = _mapping(value)
    try:
        return _ENCODER.encode(mapping if mapping is not None else value)
    except (TypeError, ValueError) as exc:
        raise BadJob(f"a JSON field cannot be written as JSON: {exc}") from None
