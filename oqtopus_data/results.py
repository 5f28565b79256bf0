"""Job result objects with the API of oqtopus-client 1.3.0's `services.job_results`, no SDK needed.

Code written against the SDK's `OqtopusSamplingJobResult` & co. works on these, so a user's analysis
code runs on an exported history unchanged. `from_raw` takes the API's job JSON (with `job_info`
archives already replaced by their content, or an older inline form) or any object with the SDK
model's attributes. Additions to the SDK's API are marked "Addition" in their docstrings.
"""

from __future__ import annotations

import base64
import enum
import io
import zipfile
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Self, TypeVar

from oqtopus_data._bitstrings import (
    bitstring_to_int,
    counts_to_int_keys,
    normalise_result,
    plain,
    read_operator,
    read_program,
)
from oqtopus_data.enums import JobStatus, JobType

__all__ = [
    "JobStatus",
    "JobType",
    "OqtopusEstimationJobResult",
    "OqtopusJobResult",
    "OqtopusMultiManualJobResult",
    "OqtopusSamplingJobResult",
    "OqtopusSseJobResult",
    "bitstring_to_int",
    "result_from_raw",
]


_E = TypeVar("_E", bound=enum.StrEnum)
_REQUIRED = ("job_id", "job_type", "status", "name", "device_id", "shots", "job_info")
_OPTIONAL = (
    "description", "transpiler_info", "simulator_info", "mitigation_info", "execution_time")
_TIMES = ("submitted_at", "ready_at", "running_at", "ended_at")
_JOB_INFO_KEYS = ("input", "combined_program", "result", "transpile_result", "sse_log", "message")


def _field(source: Any, name: str) -> Any:
    """`source[name]` for a mapping, `source.name` for a model; None when absent."""
    if type(source) is dict or isinstance(source, Mapping):  # isinstance on the ABC alone is slow
        return source.get(name)
    return getattr(source, name, None)


def _coerce_enum(kind: type[_E], value: Any) -> _E | None:
    if isinstance(value, enum.Enum):  # another enum, e.g. the SDK's JobsJobType
        value = value.value
    if not isinstance(value, str):
        return None
    try:
        return kind(value)
    except ValueError:
        return None


def _aware(value: Any, name: str) -> datetime | None:
    """An ISO-8601 string or a datetime as a timezone-aware datetime (naive means UTC)."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"{name} is not an ISO-8601 date-time: {value[:40]!r}") from None
    if not isinstance(value, datetime):
        raise ValueError(f"{name} is not a date-time: {type(value).__name__}")
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _job_info_dict(job_info: Any) -> dict[str, Any] | None:
    """job_info as a plain dict shaped like the SDK's view of it (`OqtopusJobResult.job_info`)."""
    if job_info is None:
        return None
    if isinstance(job_info, Mapping):
        items = dict(job_info)
    elif any(hasattr(job_info, key) for key in _JOB_INFO_KEYS):
        keys = (*_JOB_INFO_KEYS, "program", "operator")
        items = {key: getattr(job_info, key, None) for key in keys}
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


def _read_input(info: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The job's input (program, operator, sse_program), from `input` or, in the oldest payloads,
    from job_info itself."""
    if info is None:
        return None
    if isinstance(info.get("input"), Mapping):
        return dict(info["input"])
    legacy = {key: info[key] for key in ("program", "operator", "sse_program") if key in info}
    return legacy or None


class OqtopusJobResult:
    """One job and its outputs, with the API of oqtopus-client's `OqtopusJobResult`.

    Differences from the SDK, on purpose: timestamps are always timezone-aware datetimes (ISO
    strings accepted, naive means UTC); `job_info`, `sampling`, `estimation` and
    `transpile_result` are plain dicts, never pydantic models; older payloads are read, not
    dropped: counts / divided_counts (or one sub-counts) sent as a JSON string are parsed, and
    exp_value / stds sent as `[re, im]` keep the real part (exp_value's imaginary part is
    `exp_value_imag`), where the SDK gives `{}` / None (or fails). Each such change adds a note to
    `normalised`. Additions: `input`, `program`, `operator`, `combined_program`, `raw`,
    `normalised` (and `exp_value_imag` on estimation results).
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
        self._job_type = _coerce_enum(JobType, job_type)
        if self._job_type is None:
            raise ValueError(f"Invalid job_type: {job_type!r}")
        self._status = _coerce_enum(JobStatus, status)
        if self._status is None:
            raise ValueError(f"Invalid status: {status!r}")
        self._job_id, self._name, self._description = job_id, name, description
        self._device_id, self._shots, self._execution_time = device_id, shots, execution_time
        self._transpiler_info = transpiler_info
        self._simulator_info = simulator_info
        self._mitigation_info = mitigation_info
        self._transpile_result = plain(transpile_result)
        self._message = message
        self._times = {key: _aware(value, key) for key, value in zip(
            _TIMES, (submitted_at, ready_at, running_at, ended_at), strict=True)}
        self._client = client
        self._raw: Mapping[str, Any] | None = None
        self._notes: list[str] = []
        self._job_info = _job_info_dict(job_info)
        self._exp_value_imag = None
        if self._job_info is not None and "result" in self._job_info:
            self._job_info["result"], self._exp_value_imag = normalise_result(
                self._job_info["result"], self._notes)
        self._input = _read_input(self._job_info)
        self._program = read_program((self._input or {}).get("program"), self._notes)
        self._operator = read_operator((self._input or {}).get("operator"), self._notes)

    @classmethod
    def from_raw(cls, job: Mapping[str, Any] | Any, *, client: Any | None = None) -> Self:
        """Build from the API's job JSON (a mapping) or an object with the SDK model's attributes.

        Raises ValueError naming every missing one of job_id, job_type, status, name, device_id,
        shots and job_info, as the SDK does (a `registered` job has none of them).
        """
        missing = [key for key in _REQUIRED if _field(job, key) is None]
        if missing:
            raise ValueError(f"Job payload is missing required fields: {', '.join(missing)}")
        fields = {key: _field(job, key) for key in (*_REQUIRED, *_OPTIONAL, *_TIMES)}
        info = fields["job_info"]  # the constructor reads it once; here only two of its items are needed
        result = cls(**fields, transpile_result=_field(info, "transpile_result"),
                     message=_field(info, "message"), client=client)
        if isinstance(job, Mapping):
            result._raw = job
        return result

    @property
    def job_id(self) -> str | None:
        """The job's id."""
        return self._job_id

    @property
    def job_type(self) -> JobType | None:
        """sampling, estimation, multi_manual or sse."""
        return self._job_type

    @property
    def status(self) -> JobStatus | None:
        """The job's status when it was read."""
        return self._status

    @property
    def name(self) -> str | None:
        """The name given at submission."""
        return self._name

    @property
    def description(self) -> str | None:
        """The description given at submission, if any."""
        return self._description

    @property
    def device_id(self) -> str | None:
        """The device the job was submitted to."""
        return self._device_id

    @property
    def shots(self) -> int | None:
        """Number of shots."""
        return self._shots

    @property
    def job_info(self) -> dict[str, Any] | None:
        """job_info as a dict: the keys with a value, `message` always, and (as the SDK) `program` /
        `operator` copied from `input` when job_info has none of its own."""
        return self._job_info

    @property
    def transpiler_info(self) -> Mapping[str, Any] | None:
        """Transpiler settings of the job."""
        return self._transpiler_info

    @property
    def simulator_info(self) -> Mapping[str, Any] | None:
        """Simulator settings of the job."""
        return self._simulator_info

    @property
    def mitigation_info(self) -> Mapping[str, Any] | None:
        """Error-mitigation settings of the job."""
        return self._mitigation_info

    @property
    def transpile_result(self) -> Mapping[str, Any] | Any | None:
        """The transpile result (transpiled_program, stats, virtual_physical_mapping), if any."""
        return self._transpile_result

    @property
    def message(self) -> str | None:
        """The server's error or status text, if any."""
        return self._message

    @property
    def execution_time(self) -> float | int | None:
        """Execution time in seconds, once finished."""
        return self._execution_time

    @property
    def submitted_at(self) -> datetime | None:
        """When the job was accepted (timezone-aware)."""
        return self._times["submitted_at"]

    @property
    def ready_at(self) -> datetime | None:
        """When the job became ready to run (timezone-aware)."""
        return self._times["ready_at"]

    @property
    def running_at(self) -> datetime | None:
        """When the job started running (timezone-aware)."""
        return self._times["running_at"]

    @property
    def ended_at(self) -> datetime | None:
        """When the job reached a terminal status (timezone-aware)."""
        return self._times["ended_at"]

    def is_sampling(self) -> bool:
        """True for a sampling job."""
        return self._job_type is JobType.SAMPLING

    def is_estimation(self) -> bool:
        """True for an estimation job."""
        return self._job_type is JobType.ESTIMATION

    def is_multi_manual(self) -> bool:
        """True for a multi_manual job."""
        return self._job_type is JobType.MULTI_MANUAL

    def is_sse(self) -> bool:
        """True for an SSE job."""
        return self._job_type is JobType.SSE

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
        return self._input

    @property
    def program(self) -> list[str] | None:
        """Addition: the submitted OpenQASM program(s)."""
        return self._program

    @property
    def operator(self) -> list[dict[str, Any]] | None:
        """Addition: the estimation operator as `[{"pauli": str, "coeff": float | None}, ...]`."""
        return self._operator

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
        """Addition: one note per older encoding read differently from the SDK (empty if none)."""
        return list(self._notes)

    def __repr__(self) -> str:
        fields = ", ".join(f"{key}={getattr(self, key)!r}" for key in self._repr_fields)
        return f"{type(self).__name__}({fields})"


class OqtopusSamplingJobResult(OqtopusJobResult):
    """A sampling job's result: counts keyed by bitstring, or by integer."""

    _repr_fields = ("job_id",)

    def get_counts(self) -> dict[str, Any]:
        """The counts with their bitstring keys as sent; `{}` when there are none."""
        counts = (self.sampling or {}).get("counts")
        if not isinstance(counts, Mapping):
            return {}
        return {str(key): value for key, value in counts.items()}

    def counts_with_integer_keys(self) -> dict[str, dict[int, Any]]:
        """`{"counts": {int: n}, "divided_counts": {int: {int: n}}}`; ValueError on a bad key."""
        sampling = self.sampling or {}
        counts = counts_to_int_keys(sampling.get("counts"))
        divided = sampling.get("divided_counts") or {}
        if not isinstance(divided, Mapping):
            raise ValueError(f"divided_counts is not a mapping: {type(divided).__name__}")
        return {
            "counts": counts,
            "divided_counts": {
                int(index): counts_to_int_keys(sub, f"divided_counts[{index}]")
                for index, sub in divided.items()
            },
        }


class OqtopusMultiManualJobResult(OqtopusSamplingJobResult):
    """A multi_manual job's result: a sampling result with counts per sub-program."""

    def get_divided_counts(self) -> dict[str, dict[int, Any]]:
        """`{sub-result index (str): {int: n}}`; sub-results that are not mappings are skipped."""
        divided = (self.sampling or {}).get("divided_counts")
        if not isinstance(divided, Mapping):
            return {}
        return {
            str(index): counts_to_int_keys({str(k): v for k, v in sub.items()})
            for index, sub in divided.items()
            if isinstance(sub, Mapping)
        }


class OqtopusEstimationJobResult(OqtopusJobResult):
    """An estimation job's result: expectation value and standard deviation."""

    _repr_fields = ("job_id",)

    def _number(self, key: str) -> float | None:
        value = (self.estimation or {}).get(key)
        return float(value) if isinstance(value, int | float) else None

    def get_exp_value(self) -> float | None:
        """The estimated expectation value, or None."""
        return self._number("exp_value")

    def get_stds(self) -> float | None:
        """The standard deviation of the estimate, or None."""
        return self._number("stds")

    @property
    def exp_value(self) -> float | None:
        """Same as `get_exp_value()`."""
        return self.get_exp_value()

    @property
    def stds(self) -> float | None:
        """Same as `get_stds()`."""
        return self.get_stds()

    @property
    def exp_value_imag(self) -> float | None:
        """Addition: exp_value's imaginary part when it came as `[re, im]` (older servers)."""
        return self._exp_value_imag


class OqtopusSseJobResult(OqtopusJobResult):
    """An SSE job's result: its log archive (through a client) and its sampling/estimation output.

    The client only needs `get_sselog(job_id)` returning `.file` / `.file_name` or the API's
    mapping `{"file": base64, "file_name": str}`. Unlike the SDK, `download_log(persist=True)` never
    writes outside `save_dir`, whatever name the server sends, and a missing name is not an error.
    """

    _repr_fields = ("job_id",)

    def get_job_result(self) -> OqtopusJobResult:
        """This job as the result class its output fits (multi_manual when it has divided_counts,
        else sampling, else estimation, else the base class); job_type stays `sse`."""
        sampling = self.sampling
        if sampling is not None:
            multi = sampling.get("divided_counts") is not None
            cls: type[OqtopusJobResult] = (
                OqtopusMultiManualJobResult if multi else OqtopusSamplingJobResult)
        elif self.estimation is not None:
            cls = OqtopusEstimationJobResult
        else:
            cls = OqtopusJobResult
        info = self._job_info or {}
        fields = {key: getattr(self, key) for key in (*_REQUIRED, *_OPTIONAL, *_TIMES)}
        result = cls(**fields, transpile_result=info.get("transpile_result"),
                     message=info.get("message"), client=self._client)
        result._raw, result._notes = self._raw, list(self._notes)
        if isinstance(result, OqtopusEstimationJobResult):
            result._exp_value_imag = self._exp_value_imag
        return result

    def _log_archive(self) -> tuple[bytes, str | None]:
        """The decoded log archive and the file name the server suggests."""
        if self._client is None:
            raise ValueError("SSE log operations need a client: pass client= to from_raw.")
        if self._job_id is None:
            raise ValueError("job_id is required for SSE log operations.")
        response = self._client.get_sselog(self._job_id)
        data, file_name = _field(response, "file"), _field(response, "file_name")
        if data is None:
            raise ValueError("SSE log response does not contain file data.")
        try:
            archive = base64.b64decode(data, validate=True)
        except ValueError as exc:  # binascii.Error, or non-ASCII text
            raise ValueError("SSE log file field is not valid base64 data.") from exc
        return archive, file_name if isinstance(file_name, str) else None

    def download_log(
        self,
        *,
        save_dir: str | Path | None = None,
        file_name: str | None = None,
        overwrite: bool = False,
        persist: bool = False,
    ) -> bytes | str:
        """The SSE log archive as bytes; with `persist=True`, written into `save_dir` (default:
        the current directory) and its path returned. A server's file name is cut to a safe base
        name, and nothing is ever written outside `save_dir`."""
        if not persist:
            if save_dir is not None or file_name is not None or overwrite:
                raise ValueError("save_dir/file_name/overwrite require persist=True.")
            return self._log_archive()[0]
        out_dir = Path.cwd() if save_dir is None else Path(save_dir)
        if not out_dir.exists():
            raise ValueError(f"The destination path does not exist: {out_dir}")
        if not out_dir.is_dir():
            raise ValueError(f"The destination path is not a directory: {out_dir}")
        if file_name and _safe_file_name(file_name) != file_name:
            raise ValueError(f"file_name must be a plain file name, not a path: {file_name!r}")
        archive, server_name = self._log_archive()
        name = (file_name or _safe_file_name(server_name)
                or _safe_file_name(f"{self._job_id}_sselog.zip") or "sselog.zip")
        path = out_dir / name
        if path.resolve().parent != out_dir.resolve():  # e.g. a symlink pointing elsewhere
            raise ValueError(f"Refusing to write outside {out_dir}: {name!r}")
        try:
            with path.open("wb" if overwrite else "xb") as out:
                out.write(archive)
        except FileExistsError:
            raise ValueError(f"The file already exists: {path}") from None
        return str(path)

    def read_log_text(self, *, encoding: str = "utf-8", errors: str = "replace") -> str:
        """The log as text: each file of the archive under a `===== name =====` header (the raw
        bytes decoded if the log is not a zip archive)."""
        archive, _ = self._log_archive()
        try:
            with zipfile.ZipFile(io.BytesIO(archive)) as zf:
                names = [name for name in zf.namelist() if not name.endswith("/")]
                parts = [f"===== {name} =====\n{zf.read(name).decode(encoding, errors)}"
                         for name in names]
        except zipfile.BadZipFile:
            return archive.decode(encoding, errors)
        return "\n".join(parts).rstrip()

    def show_log(
        self,
        *,
        encoding: str = "utf-8",
        errors: str = "replace",
        print_fn: Callable[[str], Any] = print,
    ) -> str:
        """Print the log text with `print_fn` and return it."""
        text = self.read_log_text(encoding=encoding, errors=errors)
        print_fn(text)
        return text


def _safe_file_name(name: Any) -> str | None:
    """The last path component of `name` if it is a usable file name, else None."""
    if not isinstance(name, str) or "\x00" in name:
        return None
    base = name.replace("\\", "/").rsplit("/", 1)[-1].strip()
    if base in ("", ".", "..") or len(base.encode()) > 255:
        return None
    return base


_CLASSES: dict[JobType | None, type[OqtopusJobResult]] = {
    JobType.SAMPLING: OqtopusSamplingJobResult,
    JobType.ESTIMATION: OqtopusEstimationJobResult,
    JobType.MULTI_MANUAL: OqtopusMultiManualJobResult,
    JobType.SSE: OqtopusSseJobResult,
}


def result_from_raw(job: Mapping[str, Any] | Any, client: Any | None = None) -> OqtopusJobResult:
    """The result object of the class for the job's job_type, as the SDK's client picks it.

    A missing or unknown job_type raises ValueError, as `OqtopusJobResult.from_raw` does.
    """
    cls = _CLASSES.get(_coerce_enum(JobType, _field(job, "job_type")), OqtopusJobResult)
    return cls.from_raw(job, client=client)
