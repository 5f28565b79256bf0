"""The writer lock of a dataset on an object store: a lease object created, renewed and released conditionally.

The lease `_oqtopus/lock` is created with `If-None-Match: *`, renewed and released with `If-Match` on its ETag, and
taken over (also with `If-Match`) once it expires or its holder is known to be dead. Its expiry is judged on the
store's own clock, so a skewed clock on either writer does not matter.
"""

from __future__ import annotations

import contextlib
import email.utils
import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from oqtopus_data.dataset.storage.common import LOCK
from oqtopus_data.errors import LockError, StoreError

DEFAULT_LEASE_SECONDS = 60.0
MISSING = ("NoSuchKey", "404", "NotFound")  # error codes of an absent object


def error_code(exc: Exception) -> str:
    """The S3 error code of a botocore ClientError ("" for anything else)."""
    return str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))


class Lease:
    """The writer lock on an object store: one lease object, renewed while held, taken over once stale.

    `client` is the S3 client, `key` the lease object's key in `bucket`; `where` names the dataset in messages;
    `errors(action, rel)` turns boto errors into the project's; `botocore` is `botocore.exceptions`.
    """

    def __init__(self, client: Any, bucket: str, key: str, *, where: str, seconds: float,
                 errors: Callable[[str, str], AbstractContextManager[None]], botocore: Any) -> None:
        self.client, self.bucket, self.key, self.where = client, bucket, key, where
        self.errors, self.botocore = errors, botocore
        self.seconds = seconds
        self.owner = uuid.uuid4().hex
        self.etag = ""
        self.renewed = 0.0  # _clock() when the last successful PUT of the lease was sent
        self.lost = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._since = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")

    def _body(self) -> bytes:
        return json.dumps({"owner": self.owner, "since": self._since, "lease_seconds": self.seconds,
                           **_process_identity()}).encode()

    def _put(self, **condition: str) -> None:
        sent = _clock()
        reply = self.client.put_object(Bucket=self.bucket, Key=self.key, Body=self._body(), **condition)
        self.etag, self.renewed = reply["ETag"], sent

    def acquire(self) -> None:
        errors = self.botocore
        with self.errors("lock", LOCK):
            for _ in range(8):
                try:
                    self._put(IfNoneMatch="*")
                    self._check_conditions_honoured()
                    break
                except errors.ClientError as exc:
                    if error_code(exc) not in ("PreconditionFailed", "ConditionalRequestConflict"):
                        raise
                holder = self._read_holder()
                if holder is None:
                    continue  # released meanwhile: try to create it again
                info, etag, expires, now = holder
                if info.get("owner") == self.owner:  # our own PUT, retried after it had gone through
                    self.etag, self.renewed = etag, _clock()
                    break
                if now < expires and not _holder_is_dead(info):
                    raise LockError(
                        f"another oqtopus-data export is writing to {self.where} ({_describe(info)}; "
                        f"its lease runs until {_iso(expires)} unless renewed); wait for it to finish, or export "
                        "into another location")
                try:  # stale: take it over, unless another taker changed it first
                    self._put(IfMatch=etag)
                    break
                except errors.ClientError as exc:
                    if error_code(exc) not in ("PreconditionFailed", "ConditionalRequestConflict", *MISSING):
                        raise
            else:
                raise LockError(f"could not take the lock of {self.where}: other writers keep taking it")
        self._thread = threading.Thread(target=self._renew_loop, name="oqtopus-lease", daemon=True)
        self._thread.start()

    def _check_conditions_honoured(self) -> None:
        """Refuse a store that ignores conditional writes: it could let two writers commit the same version."""
        errors = self.botocore
        for condition in ({"IfNoneMatch": "*"}, {"IfMatch": '"00000000000000000000000000000000"'}):
            try:
                self.client.put_object(Bucket=self.bucket, Key=self.key, Body=self._body(), **condition)
            except errors.ClientError as exc:
                if error_code(exc) == "PreconditionFailed":
                    continue
                raise
            self.client.delete_object(Bucket=self.bucket, Key=self.key)
            raise StoreError(
                f"the object store at {self.client.meta.endpoint_url} ignores conditional writes "
                f"({next(iter(condition))}); oqtopus-data needs them to commit safely: use S3 or a store that "
                "supports If-None-Match and If-Match on PUT")

    def _read_holder(self) -> tuple[dict[str, Any], str, datetime, datetime] | None:
        """The lease's content, ETag, expiry and the store's clock now; None when there is no lease."""
        try:
            reply = self.client.get_object(Bucket=self.bucket, Key=self.key)
        except self.botocore.ClientError as exc:
            if error_code(exc) in MISSING:
                return None
            raise
        try:
            info = json.loads(reply["Body"].read())
            seconds = float(info.get("lease_seconds", DEFAULT_LEASE_SECONDS))
        except (ValueError, TypeError, AttributeError):
            info, seconds = {}, DEFAULT_LEASE_SECONDS
        info = info if isinstance(info, dict) else {}
        # Both times are the store's own clock, so a skewed clock on either writer does not matter.
        date = reply.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("date")
        now = email.utils.parsedate_to_datetime(date) if date else datetime.now(UTC)
        return info, reply["ETag"], reply["LastModified"] + timedelta(seconds=seconds), now

    def _renew_loop(self) -> None:
        while not self._stop.wait(self.seconds / 4) and self.renew():
            pass

    def renew(self) -> bool:
        """Extend the lease (If-Match its ETag); False once another writer holds it."""
        errors = self.botocore
        try:
            self._put(IfMatch=self.etag)
        except errors.ClientError as exc:
            if error_code(exc) != "PreconditionFailed":
                return True  # transient; `check` notices if renewals stop succeeding for too long
            holder = self._read_holder_quietly()
            if holder is not None and holder[0].get("owner") == self.owner:
                self.etag = holder[1]  # our retried renewal had gone through
                return True
            self.lost = True
            return False
        except errors.BotoCoreError:
            pass
        return True

    def _read_holder_quietly(self) -> tuple[dict[str, Any], str, datetime, datetime] | None:
        try:
            return self._read_holder()
        except (self.botocore.ClientError, self.botocore.BotoCoreError):
            return None

    def intact(self) -> bool:
        """Whether the lease object still exists (one GET); one that names another owner marks this lease lost."""
        holder = self._read_holder()
        if holder is None:
            return False
        if holder[0].get("owner") != self.owner:
            self.lost = True
        return True

    def check(self, action: str) -> None:
        """Refuse to change the dataset once the lease may have passed to another writer."""
        if self.lost or _clock() - self.renewed > self.seconds * 0.75:
            self.lost = True
            raise LockError(
                f"this export lost its lock on {self.where} before it could {action} (the lease was not "
                "renewed in time, or another writer took it over); what it committed before stays: run it again")

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self.lost:
            return
        errors = self.botocore
        with contextlib.suppress(errors.ClientError, errors.BotoCoreError):  # else it expires: no harm done
            try:
                self.client.delete_object(Bucket=self.bucket, Key=self.key, IfMatch=self.etag)
            except errors.ClientError as exc:
                if error_code(exc) == "PreconditionFailed":
                    return  # no longer ours
                holder = self._read_holder()  # a store without conditional deletes: check, then delete
                if holder is not None and holder[0].get("owner") == self.owner:
                    self.client.delete_object(Bucket=self.bucket, Key=self.key)


def _clock() -> float:
    """Seconds on a clock that keeps running while the machine sleeps (a lease expires meanwhile)."""
    boottime = getattr(time, "CLOCK_BOOTTIME", None)
    return time.clock_gettime(boottime) if boottime is not None else time.monotonic()


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _describe(info: dict[str, Any]) -> str:
    if "pid" not in info:
        return "holder unknown"
    return f"pid {info['pid']} on {info.get('host', '?')} since {info.get('since', '?')}"


def _process_identity() -> dict[str, Any]:
    """Who holds a lease: host and pid, plus (on Linux) what proves the process is gone when it is."""
    ident: dict[str, Any] = {"host": socket.gethostname(), "pid": os.getpid()}
    with contextlib.suppress(OSError, ValueError, IndexError):
        ident["boot_id"] = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        ident["pid_ns"] = os.readlink("/proc/self/ns/pid")
        ident["start"] = _proc_stat(os.getpid())[1]
    return ident


def _proc_stat(pid: int) -> tuple[str, int]:
    """State letter and start time (clock ticks since boot) of a process, from /proc/PID/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return fields[0], int(fields[19])


def _holder_is_dead(info: dict[str, Any]) -> bool:
    """True only when the holder ran on this machine, in this pid namespace, and that process is gone.

    A writer killed with SIGKILL cannot release its lease; on the same machine the next run need not wait for it to
    expire. A recycled pid is told apart by its start time. Anywhere else, only the expiry frees the lease.
    """
    mine = _process_identity()
    keys = ("host", "boot_id", "pid_ns")
    if "start" not in info or any(not mine.get(k) or info.get(k) != mine.get(k) for k in keys):
        return False
    try:
        state, start = _proc_stat(int(info["pid"]))
    except FileNotFoundError:
        return True
    except (OSError, ValueError, IndexError, TypeError):
        return False
    return state in ("Z", "X") or start != info["start"]
