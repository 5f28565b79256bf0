"""Datasets in S3 or an S3-compatible store (see oqtopus_data.dataset.storage.Storage for what each method promises).

An object store has no rename and no file lock; what the dataset needs maps onto S3 like this:

- a data file or log is one PUT (multipart when large): an object appears whole or not at all;
- a commit is the manifest PUT with `If-None-Match: *`, so two writers can never both create version N;
- publishing a staged file is a server-side copy then a delete (a crash between is rolled forward by the next writer);
- the writer lock is a lease object (s3_lease.py).

Credentials come from boto3's default chain (AWS_* variables, profiles, SSO, instance roles); storage options
(`endpoint_url`, `region`, `profile`, ...) adjust it. Readers get the same credentials as a pyarrow filesystem.
"""

from __future__ import annotations

import contextlib
import io
import os
import time
from collections.abc import Iterable, Iterator
from typing import Any

import pyarrow as pa

from oqtopus_data.dataset.storage.common import LOCK, check_options, inside, is_staged, staged_name, write_parquet_into
from oqtopus_data.dataset.storage.s3_client import arrow_filesystem, boto_errors, session_and_client
from oqtopus_data.dataset.storage.s3_lease import DEFAULT_LEASE_SECONDS, MISSING, Lease, error_code
from oqtopus_data.errors import ConfigError, StoreError

MULTIPART_BYTES = 64 * 1024 * 1024  # bigger files go up in parts (a single PUT is limited to 5 GiB)
#: The storage options of an s3:// location (`--storage-option KEY=VALUE`).
OPTIONS = ("endpoint_url", "region", "profile", "aws_access_key_id", "aws_secret_access_key", "aws_session_token",
           "addressing_style", "lock_lease_seconds")
ALIASES = {"region_name": "region", "profile_name": "profile", "endpoint": "endpoint_url"}


class S3Storage:
    """A dataset under `s3://bucket/prefix`: PUTs, conditional PUTs for commits, a renewed lease for the lock."""

    is_local = False
    staged_name = staticmethod(staged_name)
    is_staged = staticmethod(is_staged)

    def __init__(self, url: str, **options: str) -> None:
        self.bucket, self.prefix = _parse_url(url)
        opts = check_options(options, OPTIONS, "s3://", ALIASES)
        try:
            import boto3  # noqa: F401  (used by session_and_client; checked here for a clear message)
            import botocore.exceptions
        except ImportError:
            raise ConfigError("datasets on s3:// need boto3: pip install 'oqtopus-data[s3]'") from None
        self._botocore = botocore.exceptions
        try:
            self._session, self._client = session_and_client(
                tuple(sorted((k, v) for k, v in opts.items() if k != "lock_lease_seconds")),
                tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith("AWS_"))))
        except botocore.exceptions.BotoCoreError as exc:  # unknown profile, bad endpoint URL, ...
            raise ConfigError(f"cannot use {self.uri('')}: {exc}") from None
        self.lease_seconds = _lease_seconds(opts)
        self._lease: Lease | None = None
        self._arrow_fs: Any = None

    def __repr__(self) -> str:
        return f"S3Storage({self.uri('')!r}, endpoint={self._client.meta.endpoint_url!r})"

    # ------------------------------------------------------------------------------------- names
    def _key(self, rel: str) -> str:
        """The key of `rel` under the prefix; "" is the prefix itself. Nothing outside the prefix is ever named."""
        if rel:
            inside(rel)
        return f"{self.prefix}/{rel}" if self.prefix and rel else (self.prefix or rel)

    def uri(self, rel: str = "") -> str:
        key = self._key(rel)
        return f"s3://{self.bucket}/{key}" if key else f"s3://{self.bucket}"

    def _errors(self, action: str, rel: str) -> contextlib.AbstractContextManager[None]:
        """Boto errors as the project's while doing `action` on `rel` (see `s3_client.boto_errors`)."""
        return boto_errors(action, self.uri(rel), self.bucket, self._client.meta.endpoint_url)

    def _guard(self, action: str) -> None:
        if self._lease is not None:
            self._lease.check(action)

    # ------------------------------------------------------------------------------------- Storage
    def write_parquet(self, rel: str, table: pa.Table | Iterable[pa.Table]) -> int:
        sink = pa.BufferOutputStream()  # compressed Parquet only: a fraction of the tables it is written from
        write_parquet_into(sink, table)
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
                    if error_code(exc) == "ConditionalRequestConflict":  # a racing conditional write: ask again
                        time.sleep(0.05 * 2**attempt)
                        continue
                    if error_code(exc) != "PreconditionFailed":
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
                if error_code(exc) in MISSING:
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

    def children(self, rel_dir: str) -> list[str]:
        base = self._key(rel_dir)
        start = len(base) + 1 if base else 0
        out = set()
        with self._errors("list", rel_dir):
            pages = self._client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=f"{base}/" if base else "", Delimiter="/")
            for page in pages:
                out.update(item["Prefix"][start:].rstrip("/") for item in page.get("CommonPrefixes", []))
                out.update(item["Key"][start:] for item in page.get("Contents", []))
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
                if error_code(exc) in MISSING:
                    return False
                raise

    def rename(self, src: str, dst: str) -> None:
        self._guard(f"publish {dst}")
        with self._errors("publish", dst):
            try:
                self._client.copy_object(Bucket=self.bucket, Key=self._key(dst),
                                         CopySource={"Bucket": self.bucket, "Key": self._key(src)})
            except self._botocore.ClientError as exc:
                if error_code(exc) in MISSING and self.exists(dst):
                    return  # another writer rolling the same publish forward finished it
                raise
            self._client.delete_object(Bucket=self.bucket, Key=self._key(src))

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the lease `_oqtopus/lock` (renewed in the background) or raise LockError naming its holder."""
        lease = Lease(self._client, self.bucket, self._key(LOCK), where=self.uri(), seconds=self.lease_seconds,
                      errors=self._errors, botocore=self._botocore)
        lease.acquire()
        self._lease = lease
        try:
            yield
        finally:
            self._lease = None
            lease.release()

    def lock_intact(self) -> bool:
        """Whether the lease object is still there (a removed prefix takes it along); LockError once another writer
        holds it."""
        lease = self._lease
        if lease is None:
            return False
        lease.check("commit")
        with self._errors("look up", LOCK):
            present = lease.intact()
        lease.check("commit")  # another writer's lease: LockError, as for a lease lost any other way
        return present

    def create_root(self) -> bool:
        """A prefix is never created by a run, so a failed run removes nothing there (staged files wait for GC)."""
        return False

    def remove_root(self) -> None:
        """Nothing to remove: see `create_root`."""

    # ------------------------------------------------------------------------------------- readers
    def arrow_filesystem(self) -> Any:
        """A pyarrow S3FileSystem with this storage's credentials, endpoint and region, for the readers."""
        if self._arrow_fs is None:
            self._arrow_fs = arrow_filesystem(self._session, self._client, self.bucket, self._errors("read", ""))
        return self._arrow_fs

    def arrow_path(self, rel: str) -> str:
        """`bucket/key`: the path of `rel` on `arrow_filesystem()`."""
        return f"{self.bucket}/{self._key(rel)}"


def _lease_seconds(opts: dict[str, str]) -> float:
    """The lock's lease (`--storage-option lock_lease_seconds`): a number of seconds, at least 10."""
    try:
        seconds = float(opts.get("lock_lease_seconds", DEFAULT_LEASE_SECONDS))
    except ValueError:
        raise ConfigError("--storage-option lock_lease_seconds must be a number of seconds") from None
    if seconds < 10:
        raise ConfigError("--storage-option lock_lease_seconds must be at least 10")
    return seconds


def _parse_url(url: str) -> tuple[str, str]:
    rest = url[len("s3://"):] if url.startswith("s3://") else url
    bucket, _, prefix = rest.partition("/")
    if not bucket:
        raise ConfigError(f"{url!r} names no bucket: give s3://BUCKET/PREFIX")
    return bucket, prefix.strip("/")
