"""Datasets in S3 or an S3-compatible store: the Storage the store commits through, and a lease as the writer lock.

An object store has no rename and no file lock; what the store needs maps onto S3 like this:

- a data file or log is one PUT (multipart when large): an object appears whole or not at all;
- a commit is the manifest PUT with `If-None-Match: *`, so two writers can never both create version N;
- publishing a staged file is a server-side copy then a delete (a crash between is rolled forward by the next writer);
- the writer lock is a lease object `_oqtopus/lock`: created with `If-None-Match: *`, renewed and released with
  `If-Match` on its ETag, taken over (also with `If-Match`) once it expires or its holder is known to be dead.

Credentials come from boto3's default chain (AWS_* variables, profiles, SSO, instance roles); storage options
(`endpoint_url`, `region`, `profile`, ...) adjust it. Readers get the same credentials as a pyarrow filesystem.
"""

from __future__ import annotations

import contextlib
import email.utils
import functools
import io
import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pyarrow as pa
import pyarrow.parquet as pq

from .errors import ConfigError, LockError, StoreError
from .storage import LOCK, PARQUET_OPTIONS, inside

MULTIPART_BYTES = 64 * 1024 * 1024  # bigger files go up in parts (a single PUT is limited to 5 GiB)
DEFAULT_LEASE_SECONDS = 60.0
OPTIONS = ("endpoint_url", "region", "profile", "aws_access_key_id", "aws_secret_access_key", "aws_session_token",
           "addressing_style", "lock_lease_seconds")
_ALIASES = {"region_name": "region", "profile_name": "profile", "endpoint": "endpoint_url"}
_MISSING = ("NoSuchKey", "404", "NotFound")


def _code(exc: Exception) -> str:
    return str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))


class S3Storage:
    """A dataset under `s3://bucket/prefix`: PUTs, conditional PUTs for commits, a renewed lease for the lock."""

    def __init__(self, url: str, **options: str) -> None:
        self.bucket, self.prefix = _parse_url(url)
        opts = _normalise(options)
        try:
            import boto3  # noqa: F401  (used by _session_and_client; checked here for a clear message)
            import botocore.exceptions
        except ImportError:
            raise ConfigError("datasets on s3:// need boto3: pip install 'oqtopus-data[s3]'") from None
        self._botocore = botocore.exceptions
        try:
            self._session, self._client = _session_and_client(
                tuple(sorted((k, v) for k, v in opts.items() if k != "lock_lease_seconds")),
                tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith("AWS_"))))
        except botocore.exceptions.BotoCoreError as exc:  # unknown profile, bad endpoint URL, ...
            raise ConfigError(f"cannot use {self.uri('')}: {exc}") from None
        try:
            self.lease_seconds = float(opts.get("lock_lease_seconds", DEFAULT_LEASE_SECONDS))
        except ValueError:
            raise ConfigError("--storage-option lock_lease_seconds must be a number of seconds") from None
        if self.lease_seconds < 10:
            raise ConfigError("--storage-option lock_lease_seconds must be at least 10")
        self._lease: _Lease | None = None
        self._arrow_fs: Any = None

    def __repr__(self) -> str:
        return f"S3Storage({self.uri('')!r}, endpoint={self._client.meta.endpoint_url!r})"

    # ------------------------------------------------------------------------------------- names
    def _key(self, rel: str) -> str:
        """The key of `rel` under the prefix; "" is the prefix itself. Nothing outside the prefix is ever named."""
        if rel:
            inside(rel)
        return f"{self.prefix}/{rel}" if self.prefix and rel else (self.prefix or rel)

    def uri(self, rel: str) -> str:
        key = self._key(rel)
        return f"s3://{self.bucket}/{key}" if key else f"s3://{self.bucket}"

    @contextlib.contextmanager
    def _errors(self, action: str, rel: str) -> Iterator[None]:
        """Turn boto errors into the project's: configuration problems exit 2, the rest are store errors."""
        where = self.uri(rel)
        try:
            yield
        except (self._botocore.NoCredentialsError, self._botocore.PartialCredentialsError) as exc:
            raise ConfigError(f"no usable AWS credentials to {action} {where} ({exc}): set AWS_ACCESS_KEY_ID and "
                              "AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or --storage-option profile=NAME") from None
        except self._botocore.ClientError as exc:
            code, message = _code(exc), exc.response.get("Error", {}).get("Message", "")
            if code == "NoSuchBucket":
                raise ConfigError(f"bucket {self.bucket!r} does not exist at {self._client.meta.endpoint_url}") \
                    from None
            if code in ("AccessDenied", "403", "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken"):
                raise ConfigError(f"the object store refused to {action} {where} ({code}): check the AWS "
                                  "credentials and the bucket's permissions") from None
            if code in ("NotImplemented", "501"):
                raise StoreError(f"the object store at {self._client.meta.endpoint_url} cannot {action} {where} "
                                 f"({code}: {message}); oqtopus-data needs S3 conditional writes "
                                 "(If-None-Match / If-Match) to commit safely") from None
            raise StoreError(f"cannot {action} {where}: {code} {message}".rstrip()) from None
        except self._botocore.BotoCoreError as exc:  # connection refused, timeouts after the retries, ...
            raise StoreError(f"cannot {action} {where}: {exc}") from None

    def _guard(self, action: str) -> None:
        if self._lease is not None:
            self._lease.check(action)

    # ------------------------------------------------------------------------------------- Storage
    def write_parquet(self, rel: str, table: pa.Table) -> int:
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink, **PARQUET_OPTIONS)
        data = sink.getvalue().to_pybytes()
        self.write_bytes(rel, data)
        return len(data)

    def write_bytes(self, rel: str, data: bytes) -> None:
        self._guard(f"write {rel}")
        with self._errors("write", rel):
            if len(data) <= MULTIPART_BYTES:
                self._client.put_object(Bucket=self.bucket, Key=self._key(rel), Body=data)
                return
            from boto3.s3.transfer import TransferConfig

            self._client.upload_fileobj(io.BytesIO(data), self.bucket, self._key(rel),
                                        Config=TransferConfig(multipart_threshold=MULTIPART_BYTES,
                                                              multipart_chunksize=MULTIPART_BYTES))

    def create_exclusive(self, rel: str, data: bytes) -> bool:
        self._guard(f"commit {rel}")
        with self._errors("create", rel):
            for attempt in range(6):
                try:
                    self._client.put_object(Bucket=self.bucket, Key=self._key(rel), Body=data, IfNoneMatch="*")
                    return True
                except self._botocore.ClientError as exc:
                    if _code(exc) == "ConditionalRequestConflict":  # a racing conditional write: ask again
                        time.sleep(0.05 * 2**attempt)
                        continue
                    if _code(exc) != "PreconditionFailed":
                        raise
                # Exists. A retried PUT whose first attempt went through finds its own bytes: that is ours.
                try:
                    return self.read_bytes(rel) == data
                except FileNotFoundError:
                    continue
            raise StoreError(f"cannot create {self.uri(rel)}: other writers keep racing for it")

    def read_bytes(self, rel: str) -> bytes:
        with self._errors("read", rel):
            try:
                reply = self._client.get_object(Bucket=self.bucket, Key=self._key(rel))
            except self._botocore.ClientError as exc:
                if _code(exc) in _MISSING:
                    raise FileNotFoundError(self.uri(rel)) from None
                raise
            return reply["Body"].read()

    def list(self, rel_dir: str) -> list[str]:
        base = self._key(rel_dir)
        start = len(self.prefix) + 1 if self.prefix else 0
        out = []
        with self._errors("list", rel_dir):
            pages = self._client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=f"{base}/" if base else "")
            for page in pages:
                out.extend(item["Key"][start:] for item in page.get("Contents", []))
        return sorted(out)

    def delete(self, rel: str) -> None:
        self._guard(f"delete {rel}")
        with self._errors("delete", rel):
            self._client.delete_object(Bucket=self.bucket, Key=self._key(rel))  # absent is not an error

    def exists(self, rel: str) -> bool:
        with self._errors("look up", rel):
            try:
                self._client.head_object(Bucket=self.bucket, Key=self._key(rel))
                return True
            except self._botocore.ClientError as exc:
                if _code(exc) in _MISSING:
                    return False
                raise

    def rename(self, src: str, dst: str) -> None:
        self._guard(f"publish {dst}")
        with self._errors("publish", dst):
            try:
                self._client.copy_object(Bucket=self.bucket, Key=self._key(dst),
                                         CopySource={"Bucket": self.bucket, "Key": self._key(src)})
            except self._botocore.ClientError as exc:
                if _code(exc) in _MISSING and self.exists(dst):
                    return  # another writer rolling the same publish forward finished it
                raise
            self._client.delete_object(Bucket=self.bucket, Key=self._key(src))

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the lease `_oqtopus/lock` (renewed in the background) or raise LockError naming its holder."""
        lease = _Lease(self, self.lease_seconds)
        lease.acquire()
        self._lease = lease
        try:
            yield
        finally:
            self._lease = None
            lease.release()

    def create_root(self) -> bool:
        """A prefix is never created by a run, so a failed run removes nothing there (staged files wait for GC)."""
        return False

    def remove_root(self) -> None:
        """Nothing to remove: see `create_root`."""

    # ------------------------------------------------------------------------------------- readers
    def arrow_filesystem(self) -> Any:
        """A pyarrow S3FileSystem with this storage's credentials, endpoint and region, for the readers."""
        if self._arrow_fs is None:
            self._arrow_fs = self._make_arrow_filesystem()
        return self._arrow_fs

    def _make_arrow_filesystem(self) -> Any:
        import pyarrow.fs as pafs

        with self._errors("read", ""):
            credentials = self._session.get_credentials()
            if credentials is None:
                raise self._botocore.NoCredentialsError()
            frozen = credentials.get_frozen_credentials()
            reply = self._client.head_bucket(Bucket=self.bucket)
        headers = reply.get("ResponseMetadata", {}).get("HTTPHeaders", {})
        region = headers.get("x-amz-bucket-region") or self._client.meta.region_name or "us-east-1"
        endpoint = self._client.meta.endpoint_url
        custom = not (urlsplit(endpoint).hostname or "").endswith((".amazonaws.com", ".amazonaws.com.cn"))
        return pafs.S3FileSystem(
            access_key=frozen.access_key, secret_key=frozen.secret_key, session_token=frozen.token,
            region=region, endpoint_override=endpoint if custom else None,
            retry_strategy=pafs.AwsStandardS3RetryStrategy(max_attempts=8))

    def arrow_path(self, uri: str) -> str:
        """The path of an `s3://` location on `arrow_filesystem()`: bucket/key, without the scheme."""
        return uri.removeprefix("s3://")


# Making a client costs a few hundred milliseconds and `read`/`scan`/`connect` each open the dataset again: one
# per set of options and AWS_* environment. Clients are thread-safe; sessions refresh expiring credentials.
@functools.lru_cache(maxsize=16)
def _session_and_client(options: tuple[tuple[str, str], ...], _env: tuple[tuple[str, str], ...]) -> tuple[Any, Any]:
    import boto3
    import botocore.config

    opts = dict(options)
    session = boto3.Session(
        profile_name=opts.get("profile"), region_name=opts.get("region"),
        aws_access_key_id=opts.get("aws_access_key_id"), aws_secret_access_key=opts.get("aws_secret_access_key"),
        aws_session_token=opts.get("aws_session_token"))
    config = botocore.config.Config(
        retries={"max_attempts": 8, "mode": "standard"}, connect_timeout=10, read_timeout=60, max_pool_connections=32,
        s3={"addressing_style": opts["addressing_style"]} if "addressing_style" in opts else None)
    return session, session.client("s3", endpoint_url=opts.get("endpoint_url"), config=config)


def _parse_url(url: str) -> tuple[str, str]:
    rest = url[len("s3://"):] if url.startswith("s3://") else url
    bucket, _, prefix = rest.partition("/")
    if not bucket:
        raise ConfigError(f"{url!r} names no bucket: give s3://BUCKET/PREFIX")
    return bucket, prefix.strip("/")


def _normalise(options: dict[str, str]) -> dict[str, str]:
    out = {}
    for key, value in options.items():
        name = _ALIASES.get(key, key)
        if name not in OPTIONS:
            raise ConfigError(f"unknown storage option {key!r} for s3://; known: {', '.join(OPTIONS)}")
        out[name] = str(value)
    return out


class _Lease:
    """The writer lock on an object store: one lease object, renewed while held, taken over once stale."""

    def __init__(self, storage: S3Storage, seconds: float) -> None:
        self.storage = storage
        self.client = storage._client
        self.key = storage._key(LOCK)
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
        reply = self.client.put_object(Bucket=self.storage.bucket, Key=self.key, Body=self._body(), **condition)
        self.etag, self.renewed = reply["ETag"], sent

    def acquire(self) -> None:
        errors = self.storage._botocore
        with self.storage._errors("lock", LOCK):
            for _ in range(8):
                try:
                    self._put(IfNoneMatch="*")
                    self._check_conditions_honoured()
                    break
                except errors.ClientError as exc:
                    if _code(exc) not in ("PreconditionFailed", "ConditionalRequestConflict"):
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
                        f"another oqtopus-data export is writing to {self.storage.uri('')} ({_describe(info)}; "
                        f"its lease runs until {_iso(expires)} unless renewed); wait for it to finish, or export "
                        "into another location")
                try:  # stale: take it over, unless another taker changed it first
                    self._put(IfMatch=etag)
                    break
                except errors.ClientError as exc:
                    if _code(exc) not in ("PreconditionFailed", "ConditionalRequestConflict", *_MISSING):
                        raise
            else:
                raise LockError(f"could not take the lock of {self.storage.uri('')}: other writers keep taking it")
        self._thread = threading.Thread(target=self._renew_loop, name="oqtopus-lease", daemon=True)
        self._thread.start()

    def _check_conditions_honoured(self) -> None:
        """Refuse a store that ignores conditional writes: it could let two writers commit the same version."""
        errors = self.storage._botocore
        for condition in ({"IfNoneMatch": "*"}, {"IfMatch": '"00000000000000000000000000000000"'}):
            try:
                self.client.put_object(Bucket=self.storage.bucket, Key=self.key, Body=self._body(), **condition)
            except errors.ClientError as exc:
                if _code(exc) == "PreconditionFailed":
                    continue
                raise
            self.client.delete_object(Bucket=self.storage.bucket, Key=self.key)
            raise StoreError(
                f"the object store at {self.client.meta.endpoint_url} ignores conditional writes "
                f"({next(iter(condition))}); oqtopus-data needs them to commit safely: use S3 or a store that "
                "supports If-None-Match and If-Match on PUT")

    def _read_holder(self) -> tuple[dict[str, Any], str, datetime, datetime] | None:
        """The lease's content, ETag, expiry and the store's clock now; None when there is no lease."""
        try:
            reply = self.client.get_object(Bucket=self.storage.bucket, Key=self.key)
        except self.storage._botocore.ClientError as exc:
            if _code(exc) in _MISSING:
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
        errors = self.storage._botocore
        try:
            self._put(IfMatch=self.etag)
        except errors.ClientError as exc:
            if _code(exc) != "PreconditionFailed":
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
        except (self.storage._botocore.ClientError, self.storage._botocore.BotoCoreError):
            return None

    def check(self, action: str) -> None:
        """Refuse to change the dataset once the lease may have passed to another writer."""
        if self.lost or _clock() - self.renewed > self.seconds * 0.75:
            self.lost = True
            raise LockError(
                f"this export lost its lock on {self.storage.uri('')} before it could {action} (the lease was not "
                "renewed in time, or another writer took it over); what it committed before stays: run it again")

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self.lost:
            return
        errors = self.storage._botocore
        with contextlib.suppress(errors.ClientError, errors.BotoCoreError):  # else it expires: no harm done
            try:
                self.client.delete_object(Bucket=self.storage.bucket, Key=self.key, IfMatch=self.etag)
            except errors.ClientError as exc:
                if _code(exc) == "PreconditionFailed":
                    return  # no longer ours
                holder = self._read_holder()  # a store without conditional deletes: check, then delete
                if holder is not None and holder[0].get("owner") == self.owner:
                    self.client.delete_object(Bucket=self.storage.bucket, Key=self.key)


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
