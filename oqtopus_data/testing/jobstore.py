"""The compact store behind a synthetic history: a few bytes per job, two listing orders, mutations.

Only the light fields are held (creation and submission time, type, status, device, name, width);
everything else is rebuilt on demand from (seed, job index) by the History built on this store.
"""

from __future__ import annotations

import hashlib
import heapq
import random
import threading
from array import array
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

from oqtopus_data.testing.catalog import (
    CANCEL,
    CANCELLING,
    COVER,
    DESCRIPTIONS,
    FAIL,
    JOB_TYPES,
    NAME_INDEX,
    NAMES,
    OK,
    OPEN,
    POOL_CUM,
    READY,
    REG,
    RUN,
    STATUSES,
    SUB,
    TERMINAL,
    TYPE_CUM,
    S,
    devices_for,
    mix,
    pick,
)
from oqtopus_data.testing.index import JobOrder
from oqtopus_data.testing.payloads import DEFAULT_EXP_VALUE_FORMS, EXP_VALUE_FORMS
from oqtopus_data.testing.timeline import NO_TIME, TWO_STEP_MIN, creation_instants, iso, submission_delay, to_us

DEFAULT_START = datetime(2024, 1, 1, tzinfo=UTC)
_UNFINISHED = (SUB, SUB, SUB, SUB, READY, READY, RUN, RUN, RUN, CANCELLING)



class JobStore:
    """Jobs as parallel arrays indexed by creation number, with the server's and the
    specification's listing orders kept up to date through every mutation.

    `clock` is the server's clock (FakeCloud sets it to its `now`): jobs are added and submitted
    at its time, and scheduled two-step submissions happen when it passes them.
    """

    def __init__(self, n_jobs: int, *, seed: int = 0, start: datetime = DEFAULT_START,
                 days: int = 300, bursts: Sequence[int] = (), two_step: float = 0.15,
                 max_submit_delay: timedelta = timedelta(days=1),
                 undeclared: bool = False,
                 exp_value_forms: Sequence[str] = DEFAULT_EXP_VALUE_FORMS) -> None:
        if n_jobs < 0 or days <= 0 or not 0 <= two_step <= 1:
            raise ValueError("n_jobs must be >= 0, days > 0 and two_step in [0, 1]")
        if not exp_value_forms or set(exp_value_forms) - set(EXP_VALUE_FORMS):
            raise ValueError(f"exp_value_forms must be some of {EXP_VALUE_FORMS}")
        self.seed, self.days, self.has_undeclared = seed, days, undeclared
        self.exp_value_forms = tuple(exp_value_forms)
        self.two_step, self.max_submit_delay = two_step, max_submit_delay
        self.start = start if start.tzinfo else start.replace(tzinfo=UTC)
        self.clock: Callable[[], datetime] = lambda: datetime.now(UTC)
        self._lock = threading.RLock()
        self._created = array("q")  # created_at: whole seconds after start (a MySQL DATETIME)
        self._sub = array("q")  # submitted_at: microseconds after start, NO_TIME if registered
        self._type, self._status, self._dev = bytearray(), bytearray(), bytearray()
        self._width, self._desc = bytearray(), bytearray()
        self._name = array("I")
        self._stage: dict[int, int] = {}  # stage reached by jobs finished through finish()
        self._deleted: set[int] = set()
        self._registered: set[int] = set()
        self._open: set[int] = set()  # submitted, not finished
        self._pending: list[tuple[int, int]] = []  # heap of (submission due, idx)
        self._vqe: dict[str, list[int]] = {}  # series prefix -> [next step, run length]
        self._mask = mix(seed, -1, 0) & 0xFFFFFFFFFFFF
        self._ids: list[str] | None = None
        self._epoch_us = int(self.start.timestamp()) * S + self.start.microsecond
        self._build(n_jobs, bursts)

    # ---- generation -------------------------------------------------------------------------
    def _build(self, n: int, bursts: Sequence[int]) -> None:
        rng, trng = random.Random(mix(self.seed, -1, 1)), random.Random(mix(self.seed, -1, 2))
        end = self.days * 86400 * S
        delay = self.max_submit_delay // timedelta(microseconds=1)
        tail = n - max(3, n // 200)  # the latest jobs are often not finished
        # Draw order kept from earlier versions (gaps, then per job the rounding and the job's
        # fields from `rng`), so that a seed still yields the same jobs; submission delays come
        # from their own stream.
        for i, created in enumerate(creation_instants(rng, n, end, bursts)):
            whole = rng.random() < 0.2  # some servers send whole seconds
            self._append(rng, COVER[i] if n >= 40 and i < len(COVER) else None,
                         0.6 if i >= tail else 0.0)
            sub = created + submission_delay(trng, self.two_step, delay)
            if whole:
                sub = -(-sub // S) * S
            self._created.append(created // S)
            self._sub.append(sub if sub <= end else NO_TIME)  # not submitted yet
        if n >= 12:
            for back, st in ((3, RUN), (2, READY), (1, SUB)):
                self._status[n - back] = st
                if self._sub[n - back] == NO_TIME:  # these stay submitted: one step, then
                    self._sub[n - back] = self._created[n - back] * S + S
        if n >= 20:
            for i in rng.sample(range(int(n * 0.7), n - 3), 2):
                self._sub[i] = NO_TIME
        for i in range(n):
            if self._sub[i] == NO_TIME:
                self._status[i] = REG
        self._reindex()

    def _append(self, rng: random.Random, forced: tuple[str, str] | None,
                unfinished: float) -> None:
        """Draw one job's fields (the `forced` type and name, if given) and status."""
        jt = JOB_TYPES.index(forced[0]) if forced else pick(rng, TYPE_CUM)
        pool = NAMES[JOB_TYPES[jt]]
        k = (next(j for j, p in enumerate(pool) if p[0] == forced[1]) if forced
             else pick(rng, POOL_CUM[JOB_TYPES[jt]]))
        name, width = pool[k][0], pool[k][1]
        if width == 0:
            width = rng.randint(2, 20) if jt == 0 else max(4, 2 * rng.randint(1, 2) + 3 * rng.randint(0, 2))
        if name.endswith("-"):
            name = self._vqe_step(rng, name)
        ids, cum = devices_for(width)
        self._type.append(jt)
        self._name.append(NAME_INDEX[name])
        self._width.append(width)
        self._dev.append(ids[pick(rng, cum)])
        self._desc.append(0 if rng.random() < 0.35 else rng.randrange(1, len(DESCRIPTIONS)))
        self._status.append(self._draw_status(rng, unfinished))

    @staticmethod
    def _draw_status(rng: random.Random, unfinished: float) -> int:
        """Not finished with probability `unfinished`, else succeeded/failed/cancelled 86/9/5."""
        r = rng.random()
        if r < unfinished:
            return _UNFINISHED[int(r / unfinished * len(_UNFINISHED))]
        r = rng.random()
        return OK if r < 0.86 else FAIL if r < 0.95 else CANCEL

    def _vqe_step(self, rng: random.Random, prefix: str) -> str:
        state = self._vqe.setdefault(prefix, [0, rng.randint(20, 80)])
        step = state[0]
        state[0] += 1
        if state[0] >= state[1]:
            state[0], state[1] = 0, rng.randint(20, 80)
        return f"{prefix}{step:03d}"

    def _reindex(self) -> None:
        live = [i for i in range(len(self._sub)) if i not in self._deleted]
        self._registered = {i for i in live if self._status[i] == REG}
        self._open = {i for i in live if self._status[i] in OPEN}
        created = []  # creation order is index order: sort only each second's jobs by id
        for i in live:
            if created and self._created[created[-1]] != self._created[i]:
                self._sort_tail(created)
            created.append(i)
        self._sort_tail(created)
        self._by_created = JobOrder(created, self._created_key, self._created.__getitem__)
        self._by_submitted = JobOrder(sorted(live, key=self._submitted_time),
                                      self._submitted_key, self._submitted_time)

    def _sort_tail(self, items: list[int]) -> None:
        """Sort the trailing run of `items` that shares one created_at second by job id."""
        k = len(items) - 1
        while k > 0 and self._created[items[k - 1]] == self._created[items[-1]]:
            k -= 1
        if k < len(items) - 1:
            items[k:] = sorted(items[k:], key=self.job_id)

    def _created_key(self, idx: int) -> tuple[int, str]:
        return self._created[idx], self.job_id(idx)

    def _submitted_time(self, idx: int) -> int:
        """The specification's sort time: submitted_at, or creation for a registered job."""
        sub = self._sub[idx]
        return sub if sub != NO_TIME else self._created[idx] * S

    def _submitted_key(self, idx: int) -> tuple[int, int]:
        return self._submitted_time(idx), idx

    # ---- identity ---------------------------------------------------------------------------
    def job_id(self, idx: int) -> str:
        """The UUID-like id of job number `idx`; its last 12 hex digits encode the index."""
        h = hashlib.blake2b(f"{self.seed}:{idx}".encode(), digest_size=10).hexdigest()
        variant = "89ab"[int(h[15], 16) & 3]
        return f"{h[:8]}-{h[8:12]}-4{h[12:15]}-{variant}{h[16:19]}-{idx ^ self._mask:012x}"

    def index(self, job_id: str) -> int | None:
        """The index of a live job, or None for an unknown or deleted id."""
        if not isinstance(job_id, str) or len(job_id) != 36:
            return None
        try:
            idx = int(job_id[24:], 16) ^ self._mask
        except ValueError:
            return None
        if idx >= len(self._sub) or idx in self._deleted or self.job_id(idx) != job_id:
            return None
        return idx

    def __len__(self) -> int:
        return len(self._by_created)

    def __contains__(self, job_id: object) -> bool:
        return isinstance(job_id, str) and self.index(job_id) is not None

    def _idx(self, job_id: str) -> int:
        idx = self.index(job_id)
        if idx is None:
            raise KeyError(job_id)
        return idx

    # ---- times ------------------------------------------------------------------------------
    def iso(self, us: int) -> str:
        """An offset from the history start as ISO-8601 with `Z` (microseconds only if needed)."""
        return iso(us, self._epoch_us)

    def to_us(self, when: datetime) -> int:
        """`when` (naive = UTC) as microseconds after the history start."""
        return to_us(when, self._epoch_us)

    def submitted_us(self, idx: int) -> int | None:
        """Submission time of job `idx` as microseconds after `start`; None if registered."""
        sub = self._sub[idx]
        return None if sub == NO_TIME else sub

    def created_s(self, idx: int) -> int:
        """Creation time of job `idx` as whole seconds after `start`."""
        return self._created[idx]

    # ---- mutations ----------------------------------------------------------------------------
    def add_jobs(self, n: int, *, at: datetime | None = None, registered: float = 0.0,
                 two_step: float = 0.0, max_gap: timedelta = timedelta(hours=1),
                 unfinished: float = 0.3) -> list[str]:
        """Create `n` jobs at `at` (default: `clock()`, the server's now): created_at is that
        whole second, as the server stores it, for all of them.

        Each is submitted between created_at and `at`, so nothing lies in the server's future
        (a share `unfinished` of them not finished yet), or for a share `registered` left
        registered (see `submit`), or for a share `two_step` submitted by itself when the clock
        passes `at` + 5 s..`max_gap`. Returns the new ids in creation order.
        """
        with self._lock:
            base = self.to_us(at or self.clock())
            rng = random.Random(mix(self.seed, -2, len(self._sub)))
            out = []
            for _ in range(n):
                idx = len(self._sub)
                self._append(rng, None, unfinished)
                self._created.append(base // S)
                r = rng.random()
                if r < registered + two_step:
                    self._sub.append(NO_TIME)
                    self._status[idx] = REG
                    self._registered.add(idx)
                    if r >= registered:
                        gap = submission_delay(rng, 1.0, max_gap // timedelta(microseconds=1))
                        heapq.heappush(self._pending, (base + max(gap, TWO_STEP_MIN), idx))
                else:
                    second = base // S * S
                    self._sub.append(second + int(rng.random() * (base - second + 1)))
                    if self._status[idx] in OPEN:
                        self._open.add(idx)
                self._by_created.insert(idx)
                self._by_submitted.insert(idx)
                out.append(self.job_id(idx))
            return out

    def submit(self, job_id: str, *, at: datetime | None = None) -> None:
        """Submit a registered job at `at` (default: the clock's now): it becomes `submitted`."""
        with self._lock:
            idx = self._idx(job_id)
            if self._status[idx] != REG:
                raise ValueError(f"job {job_id} is {STATUSES[self._status[idx]]}, not registered")
            when = self.to_us(at or self.clock())
            if when < self._created[idx] * S:
                raise ValueError(f"job {job_id} cannot be submitted before it was created")
            self._submit(idx, when)

    def _submit(self, idx: int, when: int) -> None:
        self._by_submitted.remove(idx)
        self._sub[idx] = when
        self._status[idx] = SUB
        self._registered.discard(idx)
        self._open.add(idx)
        self._by_submitted.insert(idx)

    def settle(self) -> None:
        """Make the scheduled two-step submissions whose time the clock has passed."""
        if not self._pending:
            return
        with self._lock:
            now = self.to_us(self.clock())
            while self._pending and self._pending[0][0] <= now:
                when, idx = heapq.heappop(self._pending)
                if idx not in self._deleted and self._status[idx] == REG:
                    self._submit(idx, when)

    def finish(self, job_id: str, status: str = "succeeded") -> None:
        """Make a submitted/ready/running/cancelling job terminal; it gains timestamps and results."""
        if status not in TERMINAL:
            raise ValueError(f"not a terminal status: {status!r}")
        with self._lock:
            idx = self._idx(job_id)
            old = self._status[idx]
            if old not in OPEN:
                raise ValueError(f"job {job_id} is {STATUSES[old]}, not waiting or running")
            new = STATUSES.index(status)
            reached = RUN if old == CANCELLING else old
            self._stage[idx] = (RUN if new == OK else reached if new == CANCEL
                                else max(reached, READY))
            self._status[idx] = new
            self._open.discard(idx)

    def delete(self, job_id: str) -> None:
        """Delete a job (any status; the server allows terminal ones): it leaves listings, GET
        answers 404 and its archives disappear."""
        with self._lock:
            idx = self._idx(job_id)
            self._by_created.remove(idx)
            self._by_submitted.remove(idx)
            self._deleted.add(idx)
            self._registered.discard(idx)
            self._open.discard(idx)

