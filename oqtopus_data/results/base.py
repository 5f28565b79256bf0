"""The base of the result objects (`results`): one job as oqtopus-client 1.3.0's `OqtopusJobResult` shows it.

Its own module so that `results` (the job-type classes, SSE logs, `result_from_raw`) stays short; users import
everything from `oqtopus_data.results.objects`. The plain accessors of the job's fields are `result_fields.JobFields`'s;
here are how a job is read and what is derived from its payload.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Self, TypeVar

from oqtopus_data.enums import JobStatus, JobType
from oqtopus_data.results.fields import JobFields
from oqtopus_data.results.payload import JOB_INFO_KEYS, job_extra, plain, read_payload, short_repr
from oqtopus_data.times import NAIVE_AS_UTC, parse_datetime, to_utc

_E = TypeVar("_E", bound=enum.StrEnum)
REQUIRED = ("job_id", "job_type", "status", "name", "device_id", "shots", "job_info")
OPTIONAL = (
    "description", "transpiler_info", "simulator_info", "mitigation_info", "execution_time")
TIMES = ("submitted_at", "ready_at", "running_at", "ended_at")


def field_of(source: Any, name: str) -> Any:
    """`source[name]` for a mapping, `source.name` for a model; None when absent."""
    if type(source) is dict or isinstance(source, Mapping):  # isinstance on the ABC alone is slow
        return source.get(name)
    return getattr(source, name, None)


def coerce_enum(kind: type[_E], value: Any) -> _E | None:
    """`value` (text or another enum) as a member of `kind`, or None."""
    if isinstance(value, enum.Enum):  # another enum, e.g. the SDK's JobsJobType
        value = value.value
    if not isinstance(value, str):
        return None
    try:
        return kind(value)
    except ValueError:
        return None


def _aware(value: Any, name: str, notes: list[str]) -> datetime | None:
    """An ISO-8601 string or a datetime as a timezone-aware datetime in the offset it was given; a naive one is
    read as UTC (times.NAIVE_AS_UTC), with a note."""
    parsed = parse_datetime(value, name, as_given=True)
    if parsed is not None and parsed.tzinfo is None:
        notes.append(f"{name}: {NAIVE_AS_UTC}")
        return to_utc(parsed)
    return parsed


def _job_info_dict(job_info: Any) -> dict[str, Any] | None:
    """job_info as a plain dict shaped like the SDK's view of it (`OqtopusJobResult.job_info`)."""
    if job_info is None:
        return None
    if isinstance(job_info, Mapping):
        items = dict(job_info)
    elif any(hasattr(job_info, key) for key in JOB_INFO_KEYS):
        items = {key: getattr(job_info, key, None) for key in sorted(JOB_INFO_KEYS)}
    else:
        raise ValueError(f"job_info is not a mapping: {type(job_info).__name__}")
    info = {key: plain(value) for key, value in items.items() if value is not None}
    source = info.get("input")
    if isinstance(source, Mapping):  # the SDK's legacy aliases of the input's program and operator
        for key in ("program", "operator"):
            if key not in info and key in source:
                info[key] = source[key]
    info.setdefault("message", None)
    return info


class OqtopusJobResult(JobFields):
    """One job and its outputs, with the API of oqtopus-client's `OqtopusJobResult`.

    Differences from the SDK, on purpose: timestamps are always timezone-aware datetimes (ISO
    strings accepted, in the offset given; naive means UTC, noted); `job_info`, `sampling`,
    `estimation` and `transpile_result` are plain dicts, never pydantic models; older payloads are
    read, not dropped: counts / divided_counts (or one sub-counts) sent as a JSON string are
    parsed, and exp_value / stds sent as `[re, im]` keep the real part (exp_value's imaginary part
    is `exp_value_imag`), where the SDK gives `{}` / None (or fails). Each such change adds a note
    to `normalised`. The reading rules are `oqtopus_data.results.payload`'s, shared with `flatten`.
    Additions: `input`, `program`, `sse_program`, `operator`, `operator_coeff_imag`,
    `combined_program`, `extra`, `raw`, `normalised` (and `exp_value_imag` on estimation results).
    """

    _repr_fields: tuple[str, ...] = ("job_id", "job_type", "status")

    def __init__(
        self,
        *,
        job_id: str,
        job_type: JobType | str,
        status: JobStatus | str,
        name: str,
        description: str | None = None,
        device_id: str,
        shots: int,
        job_info: Mapping[str, Any] | Any,
        transpiler_info: Mapping[str, Any] | None = None,
        simulator_info: Mapping[str, Any] | None = None,
        mitigation_info: Mapping[str, Any] | None = None,
        transpile_result: Mapping[str, Any] | Any | None = None,
        message: str | None = None,
        execution_time: float | None = None,
        submitted_at: datetime | str | None = None,
        ready_at: datetime | str | None = None,
        running_at: datetime | str | None = None,
        ended_at: datetime | str | None = None,
        client: Any | None = None,
    ) -> None:
        """Raises ValueError on an unknown job_type or status (as the SDK) or a bad timestamp."""
        self._job_type = coerce_enum(JobType, job_type)
        if self._job_type is None:
            raise ValueError(f"Invalid job_type: {short_repr(job_type, 200)}")
        self._status = coerce_enum(JobStatus, status)
        if self._status is None:
            raise ValueError(f"Invalid status: {short_repr(status, 200)}")
        self._job_id, self._name, self._description = job_id, name, description
        self._device_id, self._shots, self._execution_time = device_id, shots, execution_time
        self._transpiler_info = transpiler_info
        self._simulator_info = simulator_info
        self._mitigation_info = mitigation_info
        self._transpile_result = plain(transpile_result)
        self._message = message
        self._client = client
        self._raw: Mapping[str, Any] | None = None
        self._job_info = _job_info_dict(job_info)
        self._payload = read_payload(self._job_info, self._transpile_result)
        if self._job_info is not None and "result" in self._job_info:
            self._job_info["result"] = self._payload.result
        self._notes = self._payload.notes
        self._exp_value_imag = self._payload.exp_value_imag
        self._times = {key: _aware(value, key, self._notes) for key, value in zip(
            TIMES, (submitted_at, ready_at, running_at, ended_at), strict=True)}

    @classmethod
    def from_raw(cls, job: Mapping[str, Any] | Any, *, client: Any | None = None) -> Self:
        """Build from the API's job JSON (a mapping) or an object with the SDK model's attributes.

        Raises ValueError naming every missing one of job_id, job_type, status, name, device_id,
        shots and job_info, as the SDK does (a `registered` job has none of them).
        """
        missing = [key for key in REQUIRED if field_of(job, key) is None]
        if missing:
            raise ValueError(f"Job payload is missing required fields: {', '.join(missing)}")
        fields = {key: field_of(job, key) for key in (*REQUIRED, *OPTIONAL, *TIMES)}
        info = fields["job_info"]  # the constructor reads it once; here only two of its items are needed
        result = cls(**fields, transpile_result=field_of(info, "transpile_result"),
                     message=field_of(info, "message"), client=client)
        if isinstance(job, Mapping):
            result._raw = job
        return result

    def _branch(self, key: str) -> dict[str, Any] | None:
        result = (self._job_info or {}).get("result")
        branch = result.get(key) if isinstance(result, Mapping) else None
        return branch if isinstance(branch, dict) else None

    @property
    def sampling(self) -> dict[str, Any] | None:
        """The result's `sampling` payload (counts, divided_counts), or None."""
        return self._branch("sampling")

    @property
    def estimation(self) -> dict[str, Any] | None:
        """The result's `estimation` payload (exp_value, stds), or None."""
        return self._branch("estimation")

    @property
    def input(self) -> dict[str, Any] | None:
        """Addition: the job's input (program, operator, sse_program), even from the oldest form."""
        return self._payload.input

    @property
    def program(self) -> list[str] | None:
        """Addition: the submitted OpenQASM program(s); None when absent or of another shape (see `extra`)."""
        return self._payload.program

    @property
    def sse_program(self) -> str | None:
        """Addition: an SSE job's user program; None when absent or not text (see `extra`)."""
        return self._payload.sse_program

    @property
    def operator(self) -> list[dict[str, Any]] | None:
        """Addition: the estimation operator as `[{"pauli": str, "coeff": float | None}, ...]`; None when absent or
        when a term has another shape (the operator as sent is then in `extra`)."""
        return self._payload.operator

    @property
    def operator_coeff_imag(self) -> list[float | None] | None:
        """Addition: the imaginary part of each operator coefficient sent as `[re, im]` (None for a real one);
        None when no coefficient was complex."""
        return self._payload.operator_coeff_imag

    @property
    def extra(self) -> dict[str, Any]:
        """Addition: what the payload holds that no column declares, by section (`job`, `job_info`, `input`,
        `result`, `transpile_result`; only non-empty ones), presigned URLs replaced by a marker."""
        return job_extra(self._raw, self._payload.extra)

    @property
    def combined_program(self) -> Any:
        """Addition: a multiprogramming job's combined circuit, as sent (JSON text or object)."""
        return (self._job_info or {}).get("combined_program")

    @property
    def raw(self) -> Mapping[str, Any] | None:
        """Addition: the mapping `from_raw` was given (None when built otherwise)."""
        return self._raw

    @property
    def normalised(self) -> list[str]:
        """Addition: one note per thing read differently from the payload as sent (empty if none): an older
        encoding, a date-time without a zone (read as UTC), an input part of unknown shape (left out, see `extra`)."""
        return list(self._notes)

    def __repr__(self) -> str:
        fields = ", ".join(f"{key}={getattr(self, key)!r}" for key in self._repr_fields)
        return f"{type(self).__name__}({fields})"
