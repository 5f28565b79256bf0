"""Exceptions shared by every stage, so the CLI can map each family to one exit status."""

from __future__ import annotations


class OqtopusDataError(Exception):
    """Base class of every error oqtopus-data raises on purpose."""


class ConfigError(OqtopusDataError):
    """Missing or invalid configuration (URL, token, profile, options): exit status 2."""


class AuthError(OqtopusDataError):
    """The API refused the credentials (401/403 on an API endpoint): exit status 2."""


class ApiError(OqtopusDataError):
    """An API call failed for good after its retries; the message never carries the token."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class JobError(OqtopusDataError):
    """One job cannot be exported; `stage` says where (list, fetch, archive, parse, flatten)."""

    def __init__(self, job_id: str | None, stage: str, message: str) -> None:
        super().__init__(f"job {job_id or '<unknown>'}: {stage}: {message}")
        self.job_id = job_id
        self.stage = stage
        self.problem = message


class StoreError(OqtopusDataError):
    """The dataset directory cannot be read or written safely; nothing committed was changed."""


class LockError(StoreError):
    """Another export holds the dataset's lock."""


class DatasetGoneError(ConfigError, StoreError):
    """The dataset a run was writing was removed or replaced meanwhile (`rm -rf OUT_DIR`): exit status 2, and the
    run commits nothing, so it never recreates a dataset from half a run."""
