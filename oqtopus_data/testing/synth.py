"""Deterministic synthetic OQTOPUS job history: the fake cloud's data and the tests' ground truth.

Only a few bytes per job are held (creation and submission time, type, status, device, name,
width, two listing orders); the rest of a job, from its shots to its counts and programs, is
rebuilt on demand from (seed, job index), so 200,000 jobs fit in a few MB and the same job always
yields the same content.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any

from oqtopus_data.testing import extras, legacy
from oqtopus_data.testing.catalog import DESCRIPTIONS, DEVICES, FAIL, NAME_LIST, REG, STATUSES, TERMINAL, S
from oqtopus_data.testing.devices import device_records
from oqtopus_data.testing.index import JobOrder
from oqtopus_data.testing.index import window as window_of
from oqtopus_data.testing.jobmeta import Meta, submitted_job, with_job_info
from oqtopus_data.testing.jobstore import DEFAULT_START, JobStore
from oqtopus_data.testing.payloads import DEFAULT_EXP_VALUE_FORMS, JobPayloads
from oqtopus_data.testing.timeline import from_us


def generate_history(n_jobs: int, *, seed: int = 0, start: datetime = DEFAULT_START,
                     days: int = 300, bursts: Sequence[int] = (), two_step: float = 0.15,
                     max_submit_delay: timedelta = timedelta(days=1),
                     undeclared: bool = False,
                     exp_value_forms: Sequence[str] = DEFAULT_EXP_VALUE_FORMS) -> History:
    """Build a deterministic history of `n_jobs` jobs created over `days` days from `start`.

    `bursts`: sizes of batches created within one second each; `two_step`: the share of jobs
    registered first and submitted 5 s..`max_submit_delay` later; `undeclared`: some jobs carry
    keys no schema declares (see extras.py); `exp_value_forms`: how estimation results write exp_value,
    drawn per job among these (payloads.EXP_VALUE_FORMS).
    """
    return History(n_jobs, seed=seed, start=start, days=days, bursts=bursts, two_step=two_step,
                   max_submit_delay=max_submit_delay, undeclared=undeclared,
                   exp_value_forms=exp_value_forms)


class History(JobStore):
    """A compact, mutable synthetic job history; `job()` is the ground truth the API must serve."""

    def __init__(self, n_jobs: int, **options: Any) -> None:
        """`n_jobs` jobs; `options` as for `generate_history`."""
        super().__init__(n_jobs, **options)
        self._meta_cached = functools.lru_cache(maxsize=8192)(self._meta)

    # ---- iteration ----------------------------------------------------------------------------
    def __iter__(self) -> Iterator[str]:
        """Live job ids in the server's listing order, (created_at, job_id) (a snapshot)."""
        self.settle()
        return (self.job_id(i) for i in list(self._by_created.items))

    def job_ids(self, order: str = "created") -> list[str]:
        """Live job ids in ascending listing order: "created" = (created_at, job_id), the server's;
        "submitted" = (submitted_at, index), the specification's (registered jobs at creation)."""
        if order == "created":
            return list(self)
        if order != "submitted":
            raise ValueError(f"order must be 'created' or 'submitted', not {order!r}")
        self.settle()
        return [self.job_id(i) for i in list(self._by_submitted.items)]

    def jobs(self) -> Iterator[dict[str, Any]]:
        """Iterate lazily over full ground-truth jobs in (created_at, job_id) order."""
        return (self.job(j) for j in self)

    def status(self, job_id: str) -> str:
        """The current status of a job."""
        self.settle()
        return STATUSES[self._status[self._idx(job_id)]]

    def created_at(self, job_id: str) -> datetime:
        """When the job was created (registered), in whole seconds: what the server filters on."""
        return from_us(self._created[self._idx(job_id)] * S, self._epoch_us)

    # ---- metadata ---------------------------------------------------------------------------
    def meta(self, idx: int) -> Meta:
        """The job without job_info and what its job_info holds. Cached: treat as read-only."""
        return self._meta_cached(idx, self._status[idx], self._stage.get(idx))

    def _meta(self, idx: int, st: int, stage: int | None) -> Meta:
        if st == REG:
            return Meta({"job_id": self.job_id(idx), "status": "registered"}, (), None, {})
        job, keys, message = submitted_job(
            seed=self.seed, idx=idx, job_id=self.job_id(idx), job_type=self._type[idx],
            name=self._name[idx], description=self._desc[idx], device=self._dev[idx],
            width=self._width[idx], status=st, stage=stage, submitted_us=self._sub[idx],
            iso=self.iso)
        more = self._undeclared(idx, keys, job["job_id"], job["name"])
        job.update(more.get("job", {}))
        info = dict(more.get("job_info", {}))
        if extras.URL_KEY in info:
            del info[extras.URL_KEY]
            keys = (*keys, extras.URL_KEY)
        return Meta(job, keys, message, info)

    def _undeclared(self, idx: int, keys: tuple[str, ...], job_id: str,
                    name: str) -> dict[str, dict[str, Any]]:
        if not self.has_undeclared:
            return {}
        return extras.undeclared_keys(self.seed, idx, keys, extras.execution_log(job_id, name))

    # ---- ground truth -------------------------------------------------------------------------
    def job(self, job_id: str) -> dict[str, Any]:
        """The full job as the API returns it, with job_info resolved inline (decoded objects)."""
        self.settle()
        idx = self._idx(job_id)
        job, keys, message, info_extras = self.meta(idx)
        job = copy.deepcopy(job)
        if job["status"] == "registered":
            return job
        info: dict[str, Any] = {k: self.payload(idx, k) for k in keys if k != extras.URL_KEY}
        if message is not None:
            info["message"] = message
        info.update(copy.deepcopy(info_extras))
        if extras.URL_KEY in keys:
            info[extras.URL_KEY] = self.payload(idx, extras.URL_KEY)
        return with_job_info(job, info)

    def undeclared(self, job_id: str) -> dict[str, dict[str, Any]]:
        """The job's undeclared keys by level ("job", "job_info", "input", "result",
        "transpile_result"), as in `job()`; {} when the history has none for it.

        Under "job_info", extras.URL_KEY (if present) is served as a presigned URL to an archive
        and shown here, as in `job()`, resolved to that archive's text.
        """
        idx = self._idx(job_id)
        meta = self.meta(idx)
        if self._status[idx] == REG:
            return {}
        keys = tuple(k for k in meta.keys if k != extras.URL_KEY)
        return self._undeclared(idx, keys, job_id, meta.job["name"])

    def payload(self, idx: int, key: str) -> Any:
        """The decoded content of one job_info archive (for sse_log, the log text)."""
        meta = self.meta(idx)
        if key == extras.URL_KEY:
            return extras.execution_log(meta.job["job_id"], meta.job["name"])
        value = self._payloads(idx).build(key)
        if self.has_undeclared and key in ("input", "result", "transpile_result"):
            keys = tuple(k for k in meta.keys if k != extras.URL_KEY)
            value.update(self._undeclared(idx, keys, meta.job["job_id"], meta.job["name"]).get(
                key, {}))
        return value

    def _payloads(self, idx: int) -> JobPayloads:
        return JobPayloads(seed=self.seed, idx=idx, job_type=self._type[idx],
                           width=self._width[idx], name=self._name[idx], device=self._dev[idx],
                           submitted_us=self._sub[idx], shots=self.meta(idx).job["shots"],
                           failed=self._status[idx] == FAIL, iso=self.iso,
                           exp_value_forms=self.exp_value_forms)

    def sselog_files(self, job_id: str) -> dict[str, str]:
        """The text files of an SSE job's log archive (sse_log.log, sometimes user_program.log),
        for an SSE job that has run (else KeyError)."""
        idx = self._idx(job_id)
        if "sse_log" not in self.meta(idx).keys:
            raise KeyError(job_id)
        return self._payloads(idx).sselog_files()

    def legacy_quirks(self, job_id: str) -> frozenset[str]:
        """Which old-server quirks (LEGACY_QUIRKS) the legacy form of this job shows."""
        idx = self._idx(job_id)
        return legacy.legacy_quirks(self.seed, idx, self._type[idx], self.meta(idx).keys)

    def legacy_job(self, job_id: str) -> dict[str, Any]:
        """The job in the legacy inline form, with this job's quirks applied."""
        return legacy.legacy_form(self.job(job_id), self.legacy_quirks(job_id))

    # ---- listing ------------------------------------------------------------------------------
    def list_page(self, *, by: str = "created", window: str | None = None, start_us: int | None = None,
                  end_us: int | None = None, status: str | None = None, q: str | None = None,
                  q_in_id: bool = False, desc: bool = False, page: int = 1, size: int = 100,
                  repeat_last: bool = False) -> tuple[list[int], int]:
        """One page of job indices and the number of matches, in O(log n + page) without filters.

        by="created": the server's order (created_at, job_id); by="submitted": the specification's
        (submitted_at, index). `window` (default: `by`) is what start_us/end_us (us after start)
        bound, inclusive: "created" the whole-second created_at, "submitted" submitted_at
        (registered jobs, which have none, left out of a bounded window). `status`: that status
        only; `q`: case-insensitive substring of name or description (or id, with `q_in_id`).
        Past the last page: [] or, with `repeat_last`, the last page again.
        """
        window = window or by
        if by not in ("created", "submitted") or window not in ("created", "submitted"):
            raise ValueError(f"by and window must be 'created' or 'submitted', not {by!r}, {window!r}")
        self.settle()
        with self._lock:
            skip: list[int] = []
            order = self._by_created if by == "created" else self._by_submitted
            bounded = start_us is not None or end_us is not None
            if window == "created":
                low = None if start_us is None else -(-start_us // S)
                a, b = self._by_created.span(low, None if end_us is None else end_us // S)
            else:
                a, b = self._by_submitted.span(start_us, end_us)
                if bounded:
                    skip = sorted(p for p in map(self._by_submitted.position, self._registered) if a <= p < b)
            base: Sequence[int] = order.items
            if window != by and bounded:  # the window of one order, paged in the other
                span = self._by_submitted if window == "submitted" else self._by_created
                base = self._in_order(order, set(span.items[a:b]) - {span.items[p] for p in skip})
                a, b, skip = 0, len(base), []
            if status is not None or q:
                code = None if status is None else STATUSES.index(status)
                drop = {base[p] for p in skip}
                kept = [i for i in base[a:b] if i not in drop
                        and (code is None or self._status[i] == code)]
                base = self._search(kept, q, with_id=q_in_id) if q else kept
                a, b, skip = 0, len(base), []
            total = b - a - len(skip)
            if total <= 0:
                return [], 0
            if repeat_last:
                page = min(page, -(-total // size))
            return window_of(base, a, b, skip, (page - 1) * size, size, desc), total

    @staticmethod
    def _in_order(order: JobOrder, chosen: set[int]) -> list[int]:
        """The jobs `chosen` in the listing order `order`."""
        if len(chosen) * 16 > len(order):
            return [i for i in order.items if i in chosen]
        return sorted(chosen, key=order.key)

    def terminal_ids(self, limit: int | None = None, *, newest: bool = False) -> list[str]:
        """Ids of live terminal jobs (those the server lets a user delete), oldest created first
        (newest first with `newest`), at most `limit`."""
        self.settle()
        with self._lock:
            items = self._by_created.items
            out = []
            for i in (reversed(items) if newest else items):
                if limit is not None and len(out) >= limit:
                    break
                if STATUSES[self._status[i]] in TERMINAL:
                    out.append(self.job_id(i))
            return out

    def _search(self, items: Sequence[int], q: str, *, with_id: bool) -> list[int]:
        q = q.lower()
        names = {i for i, n in enumerate(NAME_LIST) if q in n.lower()}
        descs = {i for i, d in enumerate(DESCRIPTIONS) if d and q in d.lower()}
        if with_id and (self._ids is None or len(self._ids) < len(self._sub)):
            self._ids = [self.job_id(i) for i in range(len(self._sub))]
        ids, name, desc, status = self._ids, self._name, self._desc, self._status
        return [i for i in items if (with_id and q in ids[i]) or (
            status[i] != REG and (name[i] in names or desc[i] in descs))]

    # ---- devices ------------------------------------------------------------------------------
    def devices(self, at: datetime | None = None, *, legacy: bool = False) -> list[dict[str, Any]]:
        """The device list as GET /devices returns it at `at` (default: the clock's now): each QPU's newest
        calibration by then (older servers' shape if `legacy`); n_pending_jobs follows the history."""
        with self._lock:
            pending = [0] * len(DEVICES)
            for i in self._open:
                pending[self._dev[i]] += 1
        return device_records(self.seed, self.to_us(at or self.clock()), pending, self.iso, legacy=legacy)

    def device_snapshots(self, every: timedelta) -> list[tuple[datetime, list[dict[str, Any]]]]:
        """GET /devices every `every` from the history's start to its end, as a cron of `oqtopus-export
        --devices-only` would have recorded it: (snapshot time, records)."""
        times = [self.start + every * n for n in range(1, int(timedelta(days=self.days) / every) + 1)]
        return [(at, self.devices(at)) for at in times]
