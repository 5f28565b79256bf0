"""Where a dataset's bytes live: the Storage protocol every backend keeps, and `open_storage` to pick one.

The dataset never renames a committed file and never relies on directory listings for correctness: data files get
unique names, and a commit is one small manifest created exclusively (create-if-absent). That is what object stores
offer too (conditional PUT), so the same dataset code works on each backend: `local` (a directory) and `s3`.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable
from typing import Any, Protocol, runtime_checkable

import pyarrow as pa

from oqtopus_data.dataset.storage.common import inside, is_staged, path_problem, staged_name
from oqtopus_data.dataset.storage.local import LocalStorage
from oqtopus_data.errors import StoreError

__all__ = ["Storage", "inside", "is_staged", "open_storage", "path_problem", "staged_name"]


@runtime_checkable
class Storage(Protocol):
    """What the dataset needs from a place that holds files; paths are relative, `/`-separated, "" is the root.

    Every method means the same on every backend; a path that could leave the dataset is a StoreError.
    """

    #: True when `uri()` names files of this machine that DuckDB and polars open by themselves (and a DuckDB
    #: database file can keep views over); False when readers go through `arrow_filesystem()`.
    is_local: bool

    def uri(self, rel: str = "") -> str:
        """A location people and readers understand for `rel` (an absolute path, or an s3:// URL)."""
        ...

    def arrow_filesystem(self) -> Any:
        """A `pyarrow.fs.FileSystem` that reads this storage, with its credentials."""
        ...

    def arrow_path(self, rel: str) -> str:
        """The path of `rel` on `arrow_filesystem()`."""
        ...

    def write_parquet(self, rel: str, table: pa.Table | Iterable[pa.Table]) -> int:
        """Write `table` as Parquet at `rel` durably and atomically; return its size in bytes. An iterable of tables
        of one schema is written part by part (`common.write_parquet_into`)."""
        ...

    def write_bytes(self, rel: str, data: bytes) -> None:
        """Write `rel` durably and atomically, replacing it if it exists."""
        ...

    def create_exclusive(self, rel: str, data: bytes) -> bool:
        """Create `rel` with `data` durably unless it exists; False when it already existed."""
        ...

    def read_bytes(self, rel: str) -> bytes:
        """The content of `rel` (FileNotFoundError when absent)."""
        ...

    def list(self, rel_dir: str) -> list[str]:
        """Relative paths of the files under `rel_dir`, recursively, sorted (empty when absent)."""
        ...

    def children(self, rel_dir: str) -> list[str]:
        """Names of the files and directories right under `rel_dir`, sorted (empty when absent).

        A local disk may also show empty directories, which an object store cannot hold.
        """
        ...

    def exists(self, rel: str) -> bool:
        """Whether the file `rel` exists."""
        ...

    def delete(self, rel: str) -> None:
        """Remove the file `rel` if it exists."""
        ...

    def rename(self, src: str, dst: str) -> None:
        """Move `src` to `dst` (replacing it), durably; a copy and delete where the backend has no rename."""
        ...

    def staged_name(self, rel: str) -> str:
        """The hidden name `rel` is written under until its commit publishes it (engines that list skip it)."""
        ...

    def is_staged(self, rel: str) -> bool:
        """Whether `rel` is a staged name (a file no commit has published yet)."""
        ...

    def lock(self) -> contextlib.AbstractContextManager[None]:
        """Hold the dataset's writer lock, or raise LockError naming the holder."""
        ...

    def lock_intact(self) -> bool:
        """Whether the lock this process holds is still the dataset's lock file: False once the location was
        removed (or removed and made again) while the lock was held, so a writer never commits into what is left."""
        ...

    def create_root(self) -> bool:
        """Make the dataset's location exist; True only when this very call created it (StoreError if it cannot)."""
        ...

    def remove_root(self) -> None:
        """Remove a location `create_root` made and no commit reached; only while holding the lock."""
        ...


def open_storage(location: str | os.PathLike[str], **options: str) -> Storage:
    """The Storage for a local path, a `file://` URL or an `s3://bucket/prefix` URL.

    `options` are checked for every kind of location: an unknown one is a ConfigError naming the valid ones
    (a local directory takes none; see `s3.OPTIONS`).
    """
    text = os.fspath(location)
    if text.startswith("s3://"):
        from oqtopus_data.dataset.storage.s3 import (
            S3Storage,  # boto3 is imported only for s3:// locations (the `s3` extra)
        )

        return S3Storage(text, **options)
    return LocalStorage(local_path(text), **options)


def is_local_location(location: str | os.PathLike[str]) -> bool:
    """Whether a location names a local directory (a path or a file:// URL), without opening anything."""
    text = os.fspath(location)
    return not text.startswith("s3://") and ("://" not in text or text.startswith("file://"))


def local_path(location: str) -> str:
    """The directory a local location names; StoreError for a URL scheme that is neither file:// nor s3://."""
    if location.startswith("file://"):
        return location[len("file://"):]
    if "://" in location:
        raise StoreError(f"unsupported dataset location {location!r}: give a local directory or an s3:// URL")
    return location
