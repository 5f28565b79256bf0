"""The sync state an export carries from one run to the next, typed and versioned, migrated step by step.

It lives in each commit's manifest (key `state`), written with the data it describes, so it is never ahead of it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from oqtopus_data.errors import StoreError
from oqtopus_data.selection import Filters
from oqtopus_data.times import format_time, parse_time

STATE_VERSION = 3
#: A job is confirmed deleted when GET /jobs/{id} answered 404 at two moments at least this far apart by the
#: server's clock (one 404 is evidence, not proof: a gateway or cache can answer it for a job that exists).
GONE_AFTER = timedelta(hours=1)


@dataclass
class Source:
    """Where an export came from: the API's base URL (never the token) and the account, when the server says."""

    api_url: str
    account_id: str | None = None
    organization: str | None = None
    name: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in {"api_url": self.api_url, "account_id": self.account_id,
                                  "organization": self.organization, "name": self.name}.items() if v is not None}

    @classmethod
    def from_account(cls, api_url: str, account: dict[str, Any]) -> Source:
        """The source of an export from the API's public URL and its GET /users/me answer ({} where it has none)."""
        text = {k: (str(account[key]) if account.get(key) is not None else None)
                for k, key in (("account_id", "id"), ("organization", "organization"), ("name", "name"))}
        return cls(api_url, **text)

    @classmethod
    def from_json(cls, data: Any) -> Source | None:
        if not isinstance(data, dict) or not isinstance(data.get("api_url"), str):
            return None
        text = {k: (str(data[k]) if data.get(k) is not None else None) for k in ("account_id", "organization", "name")}
        return cls(data["api_url"], **text)

    def conflict(self, other: Source) -> str | None:
        """Why `other` is not the same source (another URL or account), or None."""
        if _same_url(self.api_url) != _same_url(other.api_url):
            return f"it was exported from {self.api_url}, not {other.api_url}"
        if self.account_id and other.account_id and self.account_id != other.account_id:
            return f"it holds account {self.account_id}'s jobs, not account {other.account_id}'s"
        return None

    def describe(self) -> str:
        """One line for `info`."""
        who = ", ".join(f"{k} {v}" for k, v in (("account", self.account_id), ("organization", self.organization))
                        if v)
        return self.api_url + (f" ({who})" if who else "")


@dataclass
class SyncState:
    """What the next run needs to continue: the selection, how far the listing got, and the jobs to fetch again."""

    since: datetime | None = None
    filters: dict[str, list[str]] = field(default_factory=lambda: {"statuses": [], "job_types": [], "devices": []})
    #: Every job the server lists before this bound (in the terms of GET /jobs' start_time) was listed and
    #: processed; the next run lists from it minus the lookback (creation-to-submission gap and time-zone slack).
    listed_until: datetime | None = None
    pending: set[str] = field(default_factory=set)  # not terminal when last seen: fetched again by id
    retry: set[str] = field(default_factory=set)  # could not be exported: fetched again by id
    log_retry: set[str] = field(default_factory=set)  # exported, but their SSE log could not be downloaded
    log_none: set[str] = field(default_factory=set)  # finished SSE jobs found to have no log: never asked again
    logs_complete: bool = False  # every exported job's SSE log was looked for (the last run had --sse-logs)
    #: Jobs GET /jobs/{id} answered 404 for, deletion not confirmed yet: when (server's clock) it first did. They
    #: keep their rows and are fetched again by id until `answered_404` confirms it, or they answer again.
    suspects: dict[str, datetime] = field(default_factory=dict)
    last_sync: datetime | None = None
    verified_at: datetime | None = None  # the last reconcile (`--verify`) that listed the whole history
    source: Source | None = None

    def followed(self) -> set[str]:
        """Every job fetched again by id at the start of a run: not terminal, failed, or suspected deleted."""
        return self.pending | self.retry | set(self.suspects)

    def answered_404(self, job_id: str, now: datetime) -> bool:
        """Record that GET /jobs/{id} answered 404 at `now` (server's clock); True when that confirms the job's
        deletion (a 404 at least GONE_AFTER after the first one), which also stops following it."""
        first = self.suspects.setdefault(job_id, now)
        if now - first < GONE_AFTER:
            return False
        self.forget(job_id)
        return True

    def forget(self, job_id: str) -> None:
        """Stop following a job (confirmed deleted, or its rows are final)."""
        self.suspects.pop(job_id, None)
        self.pending.discard(job_id)
        self.retry.discard(job_id)
        self.log_retry.discard(job_id)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "state_version": STATE_VERSION,
            "since": _iso(self.since),
            "filters": self.filters,
            "listed_until": _iso(self.listed_until),
            "pending": sorted(self.pending),
            "retry": sorted(self.retry),
            "log_retry": sorted(self.log_retry),
            "log_none": sorted(self.log_none),
            "logs_complete": self.logs_complete,
            "suspects": {job_id: _iso(at) for job_id, at in sorted(self.suspects.items())},
            "last_sync": _iso(self.last_sync),
            "verified_at": _iso(self.verified_at),
        }
        if self.source is not None:
            out["source"] = self.source.to_json()
        return out

    def continued(self, filters: Filters, source: Source) -> SyncState:
        """The state a run continuing this one starts from: the same selection of jobs (a run without --since keeps
        the export's own) from the same source, else StoreError with the way out."""
        if self.filters != filters.locked():
            before = Filters(**{key: tuple(values) for key, values in self.filters.items()})
            raise StoreError(f"this directory holds jobs selected by {before.describe()}; this run selects "
                             f"{filters.describe()}: use the same options, another directory, or --full-refresh")
        if self.source is not None:
            conflict = self.source.conflict(source)
            if conflict:
                raise StoreError(f"this directory holds another export ({conflict}): use another directory, "
                                 "or --full-refresh to replace it")
            source.account_id = source.account_id or self.source.account_id
        if self.since is not None and filters.since is not None and filters.since < self.since:
            raise StoreError(f"this directory holds jobs since {self.since.isoformat()}; an earlier --since "
                             "needs --full-refresh")
        return replace(self, since=filters.since or self.since, pending=set(self.pending), retry=set(self.retry),
                       log_retry=set(self.log_retry), log_none=set(self.log_none),
                       suspects=dict(self.suspects), source=source)

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> SyncState | None:
        """The state of a manifest (None when it has none), migrated to STATE_VERSION; newer versions refused."""
        if not data:
            return None
        version = data.get("state_version", 1)
        if not isinstance(version, int) or version > STATE_VERSION:
            raise StoreError("the export state was written by a newer oqtopus-data: upgrade, or use --full-refresh")
        data = dict(data)
        if version == 1:
            data, version = _from_v1(data), 2
        if version == 2:
            data = _from_v2(data)
        try:
            return cls(
                since=parse_time(data.get("since")),
                filters=_filters(data.get("filters")),
                listed_until=parse_time(data.get("listed_until")),
                pending=_ids(data.get("pending")),
                retry=_ids(data.get("retry")),
                log_retry=_ids(data.get("log_retry")),
                log_none=_ids(data.get("log_none")),
                logs_complete=data.get("logs_complete") is True,
                suspects=_suspects(data.get("suspects")),
                last_sync=parse_time(data.get("last_sync")),
                verified_at=parse_time(data.get("verified_at")),
                source=Source.from_json(data.get("source")),
            )
        except (TypeError, ValueError) as exc:
            raise StoreError(f"the export state is not readable ({exc}): use --full-refresh") from None


def _from_v1(data: dict[str, Any]) -> dict[str, Any]:
    """Version 1 kept a bookmark (the newest submitted_at committed); listing from it minus the lookback is safe."""
    data["listed_until"] = data.pop("bookmark", None)
    data["state_version"] = 2
    return data


def _from_v2(data: dict[str, Any]) -> dict[str, Any]:
    """Version 2 had no suspected deletions (a 404 dropped a job at once) and no record of a reconcile."""
    data["suspects"] = {}
    data["verified_at"] = None
    data["state_version"] = 3
    return data


def _suspects(value: Any) -> dict[str, datetime]:
    out = {}
    for job_id, at in (value if isinstance(value, dict) else {}).items():
        when = parse_time(at)
        if when is not None:
            out[str(job_id)] = when
    return out


def _filters(value: Any) -> dict[str, list[str]]:
    value = value if isinstance(value, dict) else {}
    return {key: sorted(str(v) for v in value.get(key) or []) for key in ("statuses", "job_types", "devices")}


def _ids(value: Any) -> set[str]:
    return {str(v) for v in value or []}


def _iso(value: datetime | None) -> str | None:
    return None if value is None else format_time(value)


def _same_url(url: str) -> str:
    return url.strip().rstrip("/").lower()
