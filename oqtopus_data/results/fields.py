"""The job's fields as oqtopus-client 1.3.0's `OqtopusJobResult` shows them, read-only: a mixin of `result_base`.

Its own module so that the result class (`result_base.OqtopusJobResult`) keeps construction and what it derives from
the payload; the fields here are stored by its constructor as given (types, statuses and timestamps already read).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from oqtopus_data.enums import JobStatus, JobType


class JobFields:
    """The SDK's accessors of a job's fields and its type tests, over what `OqtopusJobResult.__init__` stores."""

    _job_id: str
    _job_type: JobType | None
    _status: JobStatus | None
    _name: str
    _description: str | None
    _device_id: str
    _shots: int
    _job_info: dict[str, Any] | None
    _transpiler_info: Mapping[str, Any] | None
    _simulator_info: Mapping[str, Any] | None
    _mitigation_info: Mapping[str, Any] | None
    _transpile_result: Mapping[str, Any] | Any | None
    _message: str | None
    _execution_time: float | None
    _times: dict[str, datetime | None]

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
