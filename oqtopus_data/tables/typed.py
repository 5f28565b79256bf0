"""The payload's current form declared as types: a job that fits them is checked by msgspec in C and flattened
with little Python; any other job goes through the result objects and the per-value checks, as before.

The declarations are the rules of `results.payload` (which keys each part may hold, the current form of every
value) and the column limits of `storable` (`Int64`, `Count`, `Finite`). A job the decoder refuses (an older form
that earns a `normalised` note, an undeclared key that goes to `extra`, a value out of its column's range, a naive
timestamp) is not an error here: `read_job` hands back the result object instead, and `flatten` reads it the slow
way, so its `errors` row or its rows are exactly what they always were. A job the decoder accepts gives the same
rows as the slow path (tests/test_typed.py compares both on every corpus payload); what the fast path still checks
value by value (UTF-8 text, JSON text columns, timestamps' range) falls back to the slow path when it fails.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from functools import lru_cache
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta, Struct

from oqtopus_data.enums import JobStatus, JobType
from oqtopus_data.redact import scrub_stored
from oqtopus_data.results.circuits import circuit_id
from oqtopus_data.results.objects import OqtopusJobResult, result_from_raw
from oqtopus_data.results.payload import JOB_KEYS, complex_pair, job_extra, pair_note
from oqtopus_data.tables import schema as S
from oqtopus_data.tables import storable as st
from oqtopus_data.tables.storable import Count, Finite

JobTypeText = Literal[tuple(t.value for t in JobType)]  # type: ignore[valid-type]
StatusText = Literal[tuple(s.value for s in JobStatus)]  # type: ignore[valid-type]


#: A number as the server's schema sends exp_value, stds and a coefficient: a list of 1 or 2 (`[x]`, `[re, im]`).
Pair = Annotated[list[Finite], Meta(min_length=1, max_length=2)]


class Term(Struct):
    """An operator term as `read_operator` reads it: other keys of a term are ignored there too."""

    pauli: str
    coeff: Finite | Pair | None = None


class Input(Struct, forbid_unknown_fields=True):
    program: list[str] | None = None  # a lone string is an older form (a note): refused
    operator: list[Term] | None = None
    sse_program: str | None = None


class Sampling(Struct, forbid_unknown_fields=True):
    """Counts are the many values: taken as they are (no copy of a million-entry mapping) and checked by
    `count_columns.count_pairs` at C speed, the one home of the counts rule. Only their shape is checked here:
    counts sent as JSON text are an older form, refused by `decode`."""

    counts: Any = None
    divided_counts: Any = None


class Estimation(Struct, forbid_unknown_fields=True):
    exp_value: Finite | Pair | None = None  # a list: read by `payload.complex_pair`, noted as the slow path notes it
    stds: Finite | Pair | None = None


class Result(Struct, forbid_unknown_fields=True):
    sampling: Sampling | None = None
    estimation: Estimation | None = None


class TranspileResult(Struct, forbid_unknown_fields=True):
    transpiled_program: str | None = None
    stats: Any = None  # any JSON: stored as JSON text (`storable.json_text`), as the slow path does
    virtual_physical_mapping: Any = None


class JobInfo(Struct, forbid_unknown_fields=True):
    """job_info with its archives resolved; the oldest form (program and operator inline) is refused."""

    input: Input | None = None
    combined_program: Any = None  # text as sent, anything else as JSON text (`storable.text`)
    result: Result | None = None
    transpile_result: TranspileResult | None = None
    sse_log: Any = None
    message: str | None = None


class Job(Struct):
    """A job as GET /jobs answers it; keys beyond these go to `extra` (read from the raw mapping)."""

    job_id: Annotated[str, Meta(min_length=1)]
    job_type: JobTypeText
    status: StatusText
    name: str
    device_id: str
    shots: Count
    job_info: JobInfo
    description: str | None = None
    transpiler_info: Any = None  # any JSON: stored as JSON text (`storable.json_text`)
    simulator_info: Any = None
    mitigation_info: Any = None
    execution_time: Finite | None = None
    submitted_at: str | None = None
    ready_at: str | None = None
    running_at: str | None = None
    ended_at: str | None = None


class TypedJob:
    """A job the typed decoder accepted: the Struct, the mapping it came from, its timestamps in UTC, and its numbers
    sent as lists read as `payload` reads them (the notes, estimation's numbers, the operator's terms)."""

    __slots__ = ("estimation", "job", "notes", "operator", "raw", "times")

    def __init__(self, job: Job, raw: Mapping[str, Any], times: tuple[datetime | None, ...]) -> None:
        self.job, self.raw, self.times = job, raw, times
        self.notes: list[str] = []
        self.estimation: tuple[float | None, float | None, float | None] | None = None  # exp_value, stds, imag
        self.operator: tuple[list[dict[str, Any]], list[float | None] | None] | None = None
        info = job.job_info
        estimation = info.result.estimation if info.result is not None else None
        if estimation is not None:
            self.estimation = self._estimation(estimation)
        if info.input is not None and info.input.operator is not None:
            self.operator = self._operator(info.input.operator)

    @property
    def job_id(self) -> str:
        """The job's id (what the exporter's ledger keys by)."""
        return self.job.job_id

    def result(self) -> OqtopusJobResult:
        """The job read the slow way: the result object, for a value the fast path does not take."""
        return result_from_raw(self.raw)

    def _estimation(self, estimation: Estimation) -> tuple[float | None, float | None, float | None]:
        values, imag = [], None
        for key, value in (("exp_value", estimation.exp_value), ("stds", estimation.stds)):
            if type(value) is list:
                pair = complex_pair(value)
                assert pair is not None  # declared: a list of 1 or 2 finite numbers
                value = pair[0]
                if key == "exp_value":
                    imag = pair[1]
                self.notes.append(pair_note(key, pair, "im in exp_value_imag" if key == "exp_value" else "dropped im"))
            values.append(value)
        return values[0], values[1], imag

    def _operator(self, terms: list[Term]) -> tuple[list[dict[str, Any]], list[float | None] | None]:
        read, imags, complex_terms = [], [], False
        for i, term in enumerate(terms):
            coeff, imag = term.coeff, None
            if type(coeff) is list:
                pair = complex_pair(coeff)
                assert pair is not None
                self.notes.append(pair_note(f"operator[{i}].coeff", pair, "im in operator_coeff_imag"))
                coeff, imag = pair
                complex_terms |= imag is not None
            read.append({"pauli": term.pauli, "coeff": coeff})
            imags.append(imag)
        return read, imags if complex_terms else None


def decode(job: Any) -> TypedJob | None:
    """The job checked against the declarations in C; None when it is not in the current form (or not a dict)."""
    if type(job) is not dict:
        return None
    try:
        typed = msgspec.convert(job, Job)
    except (msgspec.ValidationError, ValueError, TypeError, RecursionError):  # a lone surrogate in a key: ValueError
        return None
    result = typed.job_info.result
    if result is not None and result.sampling is not None and not _counts_shape(result.sampling):
        return None
    times = tuple(map(_utc, (typed.submitted_at, typed.ready_at, typed.running_at, typed.ended_at)))
    if False in times:
        return None
    return TypedJob(typed, job, times)  # type: ignore[arg-type]


def _counts_shape(sampling: Sampling) -> bool:
    """Whether counts and divided counts are mappings (of mappings) or absent: text is an older form."""
    counts, divided = sampling.counts, sampling.divided_counts
    if counts is not None and type(counts) is not dict:
        return False
    return divided is None or (type(divided) is dict and all(type(sub) is dict for sub in divided.values()))


def read_job(job: Any, client: Any = None) -> TypedJob | OqtopusJobResult:
    """What `flatten` takes for a job: the typed job when it decodes, else its result object (which raises
    ValueError on a payload it cannot read, as `result_from_raw` does). `client` serves SSE logs on the latter."""
    return decode(job) or result_from_raw(job, client=client)


# Timestamps outside this range are treated as corrupt rather than written (Parquet readers choke on some).
MIN_TIME = datetime(2000, 1, 1, tzinfo=UTC)
MAX_TIME = datetime(2200, 1, 1, tzinfo=UTC)
_YEARS = (f"{MIN_TIME.year:04d}", f"{MAX_TIME.year:04d}")  # the same range as the text of a year (both on Jan 1)


def _utc(text: str | None) -> datetime | bool | None:
    """An aware timestamp in UTC within the columns' range; False for anything the slow path must read (and
    note or name): unparseable, without a zone, out of range."""
    if text is None:
        return None
    if text[-1:] == "Z" and _YEARS[0] <= text[:4] < _YEARS[1]:  # the API's form: UTC, in range (by its year)
        try:
            return datetime.fromisoformat(text)
        except ValueError:
            return False
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        return False
    if value.tzinfo is None:
        return False
    if value.tzinfo is not UTC:
        try:
            value = value.astimezone(UTC)
        except OverflowError:
            return False
    return value if MIN_TIME <= value < MAX_TIME else False


@lru_cache(maxsize=1024)
def _circuit(programs: tuple[str, ...]) -> str | None:
    """circuit_id of a program list, remembered: a history runs the same circuits again and again."""
    return circuit_id(programs)


def job_row(typed: TypedJob, exported_at: datetime) -> dict[str, Any]:
    """The `jobs` row of a typed job, as `flatten._job_row` gives it from its result object (ValueError when a
    value needs the slow path's check and message)."""
    job = typed.job
    info = job.job_info
    inp = info.input
    transpile = info.transpile_result
    json_text = st.json_text
    program, sse = (inp.program, inp.sse_program) if inp is not None else (None, None)
    transpiled = transpile.transpiled_program if transpile is not None else None
    message = scrub_stored(info.message) if info.message is not None else None  # a presigned URL in it: unsigned
    _utf8(job.job_id, job.name, job.device_id, job.description or "", message or "", sse or "", transpiled or "",
          *(program or ()))
    submitted = typed.times[0]
    extra = None if JOB_KEYS.issuperset(typed.raw) else job_extra(typed.raw, {})
    return {
        "job_id": job.job_id,
        "name": job.name,
        "description": job.description,
        "job_type": job.job_type,
        "status": job.status,
        "device_id": job.device_id,
        "shots": job.shots,
        "execution_time": job.execution_time,
        "message": message,
        "transpiler_info": json_text(job.transpiler_info, "transpiler_info"),
        "simulator_info": json_text(job.simulator_info, "simulator_info"),
        "mitigation_info": json_text(job.mitigation_info, "mitigation_info"),
        "program": list(program) if program is not None else None,
        "sse_program": sse,
        "combined_program": st.text(info.combined_program, "combined_program"),
        "transpiled_program": transpiled,
        "virtual_physical_mapping": json_text(transpile.virtual_physical_mapping, "virtual_physical_mapping")
        if transpile else None,
        "transpile_stats": json_text(transpile.stats, "transpile_stats") if transpile else None,
        "normalised": list(typed.notes),
        "n_outcomes": None,
        "total_count": None,
        "exported_at": exported_at,
        "extra": json_text(scrub_stored(extra), "extra") if extra else None,
        "circuit_id": _circuit(tuple(program)) if program else None,
        "submitted_at": submitted,
        "ready_at": typed.times[1],
        "running_at": typed.times[2],
        "ended_at": typed.times[3],
        S.PARTITION_COLUMN: S.partition_month(submitted),
    }


def _utf8(*texts: str) -> None:
    """UnicodeEncodeError (a ValueError: the job goes the slow way, which names the field) unless every text is
    valid UTF-8; one check over all of them, at C speed when they are ASCII."""
    joined = "".join(texts)
    if not joined.isascii():
        joined.encode("utf-8")


def estimation_row(typed: TypedJob) -> dict[str, Any] | None:
    """The `estimations` row of a typed job (without job_id and month), None when it has no estimation."""
    if typed.estimation is None:
        return None
    exp_value, stds, imag = typed.estimation
    terms, coeff_imag = typed.operator or (None, None)
    if terms:
        _utf8(*(term["pauli"] for term in terms))
    return {
        "exp_value": exp_value,
        "stds": stds,
        # only an estimation job's result object has exp_value_imag (the slow path reads it with getattr)
        "exp_value_imag": imag if typed.job.job_type == JobType.ESTIMATION else None,
        "operator": terms,
        "operator_coeff_imag": coeff_imag,
    }


def sampling(typed: TypedJob) -> Sampling | None:
    """The typed job's sampling result, if any."""
    result = typed.job.job_info.result
    return result.sampling if result is not None else None
