"""Job result objects with the API of oqtopus-client 1.3.0's `services.job_results`, no SDK needed.

Code written against the SDK's `OqtopusSamplingJobResult` & co. works on these, so a user's analysis
code runs on an exported history unchanged. `from_raw` takes the API's job JSON (with `job_info`
archives already replaced by their content, or an older inline form) or any object with the SDK
model's attributes. Additions to the SDK's API are marked "Addition" in their docstrings. The base
class is in `result_base`; how a payload is read is `payload`'s rule.
"""

from __future__ import annotations

import base64
import io
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from oqtopus_data.enums import JobStatus, JobType
from oqtopus_data.results.base import OPTIONAL, REQUIRED, TIMES, OqtopusJobResult, coerce_enum, field_of
from oqtopus_data.results.payload import bitstring_to_int, counts_to_int_keys

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
        fields = {key: getattr(self, key) for key in (*REQUIRED, *OPTIONAL, *TIMES)}
        result = cls(**fields, transpile_result=info.get("transpile_result"),
                     message=info.get("message"), client=self._client)
        result._raw, result._payload, result._notes = self._raw, self._payload, list(self._notes)
        result._exp_value_imag = self._exp_value_imag
        return result

    def _log_archive(self) -> tuple[bytes, str | None]:
        """The decoded log archive and the file name the server suggests."""
        if self._client is None:
            raise ValueError("SSE log operations need a client: pass client= to from_raw.")
        if self._job_id is None:
            raise ValueError("job_id is required for SSE log operations.")
        response = self._client.get_sselog(self._job_id)
        data, file_name = field_of(response, "file"), field_of(response, "file_name")
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
    cls = _CLASSES.get(coerce_enum(JobType, field_of(job, "job_type")), OqtopusJobResult)
    return cls.from_raw(job, client=client)
