"""Fault switches of the fake cloud and the broken payloads it serves for malformed jobs."""

from __future__ import annotations

import functools
import io
import json
import struct
import threading
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

MALFORMED_KINDS = (
    "missing_field", "bad_job_type", "bad_status", "absurd_timestamp",  # the job object
    "invalid_bitstring", "non_integer_count", "negative_count",  # the result's counts
    "zip_no_entry", "zip_two_entries", "invalid_json", "json_not_object", "non_utf8",
    "oversized_archive", "zip_bomb",  # the result archive itself
    "archive_never_arrives",  # every storage download of the job answers 500
)
JOB_KINDS = frozenset(MALFORMED_KINDS[:4])
COUNTS_KINDS = frozenset(MALFORMED_KINDS[4:7])
ARCHIVE_KINDS = frozenset(MALFORMED_KINDS[7:14])
OVERSIZED_BYTES = 4 * 1024 * 1024  # the "oversized_archive" result.zip is at least this big
BOMB_BYTES = 1100 * 1024 * 1024  # what the "zip_bomb" result.zip inflates to (over 1 GB)
BAD_BITSTRING = "01x2"


@dataclass
class Faults:
    """Misbehaviours of the fake cloud, all off by default; flip them at any time, even mid-run.

    Every request (API and storage) increments one counter; `*_every=N` fires on every Nth.
    `on_list(cloud, query)` runs before each GET /jobs is answered (the page reflects what it
    changed): property tests add and delete jobs there at chosen moments of a walk; `on_job` does the same for
    GET /jobs/{id} and may answer in its place (`foreign_body` builds the answer of a gateway mixing jobs up).
    """

    latency: float = 0.0  # seconds slept before answering any request
    rate_limit_every: int = 0  # 429 (storage: 503 SlowDown) with Retry-After: retry_after
    retry_after: float = 0.0
    # At most this many requests per second (a bucket of one second's worth, refilled evenly, as API gateways
    # throttle); the others answer as rate_limit_every's do, without Retry-After, and use up nothing.
    rate_limit: float = 0.0
    error_every: int = 0  # 500
    drop_every: int = 0  # close the connection without answering
    expire_first_download: bool = False  # first download of each archive answers 403 expired
    page_size_cap: int = 0  # GET /jobs silently returns at most this many jobs per page
    add_during_listing: int = 0  # after the first GET /jobs, create this many new jobs ...
    delete_during_listing: int = 0  # ... and delete this many of the oldest terminal ones
    malformed: dict[str, str] = field(default_factory=dict)  # job_id -> one of MALFORMED_KINDS
    # jobs the server cannot render: silently left out of listing pages, GET /jobs/{id} 404
    unrenderable: set[str] = field(default_factory=set)
    sse_log_errors: set[str] = field(default_factory=set)  # their SSE log download answers 500
    # (the FakeCloud, the query) before an answer; returning (status, JSON body) answers that instead
    on_list: Callable[[Any, dict[str, str]], tuple[int, Any] | None] | None = None
    # (the FakeCloud, the job id) before GET /jobs/{id} is answered: (status, JSON body) to answer instead (a
    # 404, another job's body), or None to answer as usual
    on_job: Callable[[Any, str], tuple[int, Any] | None] | None = None

    def __post_init__(self) -> None:
        unknown = sorted(set(self.malformed.values()) - set(MALFORMED_KINDS))
        if unknown:
            raise ValueError(f"unknown malformed kinds: {unknown}")


class TokenBucket:
    """`rate` tokens a second, at most `rate` (one second's burst) kept; `take` spends one if there is one."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._tokens = 0.0
        self._at: float | None = None

    def take(self, rate: float) -> bool:
        with self._lock:
            now = self._clock()
            elapsed = 0.0 if self._at is None else now - self._at
            self._tokens = rate if self._at is None else min(rate, self._tokens + elapsed * rate)
            self._at = now
            if self._tokens < 1:
                return False
            self._tokens -= 1
            return True


def malform_job(job: dict[str, Any], kind: str) -> dict[str, Any]:
    """A copy of an API job object broken the way `kind` (one of JOB_KINDS) says."""
    out = dict(job)
    if kind == "missing_field":
        out.pop("shots", None)
    elif kind == "bad_job_type":
        out["job_type"] = "annealing"
    elif kind == "bad_status":
        out["status"] = "exploded"
    elif kind == "absurd_timestamp":
        out["running_at"] = "not-a-date"
        out["ended_at"] = "99999-12-31T23:59:59Z"
    return out


def malform_result(result: dict[str, Any] | None, kind: str, width: int = 2) -> dict[str, Any]:
    """A result whose sampling counts are broken the way `kind` (one of COUNTS_KINDS) says."""
    sampling = dict((result or {}).get("sampling") or {})
    counts = dict(sampling.get("counts") or {"0" * width: 10})
    first = next(iter(counts))
    if kind == "invalid_bitstring":
        counts[BAD_BITSTRING] = counts.pop(first)
    elif kind == "non_integer_count":
        counts[first] = counts[first] + 0.5
    elif kind == "negative_count":
        counts[first] = -abs(counts[first]) - 1
    sampling["counts"] = counts
    return {**(result or {}), "sampling": sampling}


def zip_bytes(entries: list[tuple[str, bytes]], *, stored: bool = False) -> bytes:
    """A zip archive holding `entries` (name, data) in order."""
    buffer = io.BytesIO()
    method = zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED
    with zipfile.ZipFile(buffer, "w", compression=method) as archive:
        for name, data in entries:
            archive.writestr(name, data)
    return buffer.getvalue()


def malformed_archive(kind: str, entry: str, good: bytes) -> bytes:
    """The broken archive served for `kind` (one of ARCHIVE_KINDS); `good` is the real entry."""
    if kind == "zip_no_entry":
        return zip_bytes([])
    if kind == "zip_two_entries":
        return zip_bytes([(entry, good), ("extra.json", b"{}")])
    if kind == "invalid_json":
        return zip_bytes([(entry, good[: max(1, len(good) // 2)])])
    if kind == "json_not_object":
        return zip_bytes([(entry, b"[1, 2, 3]")])
    if kind == "non_utf8":
        return zip_bytes([(entry, b'{"sampling": {"counts": {"00": 1}}, "note": "caf\xe9 \xff"}')])
    if kind == "oversized_archive":
        return oversized_archive(entry)
    if kind == "zip_bomb":
        return zip_bomb(entry)
    raise ValueError(f"not an archive kind: {kind!r}")


@functools.lru_cache(maxsize=4)
def oversized_archive(entry: str) -> bytes:
    """A stored (uncompressed) zip of a valid but huge result.json, over OVERSIZED_BYTES."""
    n = OVERSIZED_BYTES // 30  # each entry takes 37 bytes of JSON
    counts = {format(i, "030b"): 1 for i in range(n)}
    return zip_bytes([(entry, json.dumps({"sampling": {"counts": counts}}).encode())],
                     stored=True)


@functools.lru_cache(maxsize=4)
def zip_bomb(entry: str) -> bytes:
    """A ~1 MB zip whose one entry inflates to BOMB_BYTES of zeros, built without holding them.

    A full flush makes each compressed megabyte self-contained, so one block is repeated.
    """
    mib = bytes(1024 * 1024)
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = compressor.compress(mib) + compressor.flush(zlib.Z_FULL_FLUSH)
    repeats = BOMB_BYTES // len(mib)
    data = block * repeats + compressor.flush()
    crc = 0
    for _ in range(repeats):
        crc = zlib.crc32(mib, crc)
    name = entry.encode()
    common = struct.pack("<HHHHHIII", 20, 0, 8, 0, 0x21, crc, len(data), BOMB_BYTES)
    local = b"PK\x03\x04" + common + struct.pack("<HH", len(name), 0) + name
    central = (b"PK\x01\x02" + struct.pack("<H", 20) + common
               + struct.pack("<HHHHHII", len(name), 0, 0, 0, 0, 0, 0) + name)
    end = b"PK\x05\x06" + struct.pack("<HHHHIIH", 0, 0, 1, 1, len(central),
                                      len(local) + len(data), 0)
    return local + data + central + end


def foreign_body(cloud: Any, other_id: str) -> tuple[int, Any]:
    """The answer of a cache or gateway that mixes jobs up: 200 with `other_id`'s body (fresh URLs included)."""
    idx = cloud.history.index(other_id)
    return 200, cloud._render(idx, None)
