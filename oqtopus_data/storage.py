"""Where the dataset's bytes live: a small interface the store commits through, and its local-disk form.

The store never renames a committed file and never relies on directory listings for correctness: data files get
unique names, and a commit is one small manifest created exclusively (create-if-absent). That is what object stores
offer too (conditional PUT), so the same store works on both.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO, Protocol

import pyarrow as pa
import pyarrow.parquet as pq

from .errors import LockError, StoreError

PARQUET_OPTIONS = {"compression": "zstd", "compression_level": 3, "use_dictionary": True, "write_statistics": True}


class Storage(Protocol):
    """What the store needs from a place that holds files; paths are relative, `/`-separated."""

    def uri(self, rel: str) -> str:
        """A location readers (DuckDB, polars, pyarrow) understand for `rel`."""
        ...

    def write_parquet(self, rel: str, table: pa.Table) -> int:
        """Write `table` as Parquet at `rel` durably and atomically; return its size in bytes."""
        ...

    def create_exclusive(self, rel: str, data: bytes) -> bool:
        """Create `rel` with `data` durably unless it exists; False when it already existed."""
        ...

    def write_bytes(self, rel: str, data: bytes) -> None:
        """Write `rel` durably and atomically, replacing it if it exists."""
        ...

    def read_bytes(self, rel: str) -> bytes:
        """The content of `rel` (FileNotFoundError when absent)."""
        ...

    def list(self, rel_dir: str) -> list[str]:
        """Relative paths of the files under `rel_dir`, recursively (empty when absent)."""
        ...

    def delete(self, rel: str) -> None:
        """Remove `rel` if it exists."""
        ...

    def exists(self, rel: str) -> bool:
        """Whether `rel` exists."""
        ...

    def rename(self, src: str, dst: str) -> None:
        """Move `src` to `dst` (replacing it), durably; a copy and delete where the store has no rename."""
        ...

    def lock(self) -> contextlib.AbstractContextManager[None]:
        """Hold the dataset's writer lock, or raise LockError naming the holder."""
        ...


class LocalStorage:
    """A dataset directory on a local disk: temp file + fsync + rename, fsync'd directories, flock."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).expanduser().absolute()

    def __repr__(self) -> str:
        return f"LocalStorage({str(self.root)!r})"

    def uri(self, rel: str) -> str:
        return str(self.root / rel)

    def _prepare(self, rel: str) -> Path:
        path = self.root / rel
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create directory {path.parent}: {exc.strerror or exc}") from exc
        return path

    def write_parquet(self, rel: str, table: pa.Table) -> int:
        path = self._durable_temp(rel, lambda fh: pq.write_table(table, fh, **PARQUET_OPTIONS), os.replace)
        return path.stat().st_size

    def write_bytes(self, rel: str, data: bytes) -> None:
        self._durable_temp(rel, lambda fh: fh.write(data), os.replace)

    def create_exclusive(self, rel: str, data: bytes) -> bool:
        try:
            # os.link fails if the target exists: two writers cannot both create version N.
            self._durable_temp(rel, lambda fh: fh.write(data), os.link)
        except FileExistsError:
            return False
        return True

    def _durable_temp(self, rel: str, fill: Callable[[BinaryIO], object],
                      place: Callable[[Path, Path], None]) -> Path:
        """Fill a temporary file, fsync it, `place` it at `rel` (replace or link), fsync the directory."""
        path = self._prepare(rel)
        tmp = path.with_name(f".tmp-{uuid.uuid4().hex}-{path.name}")
        try:
            with open(tmp, "wb") as fh:
                fill(fh)
                fh.flush()
                os.fsync(fh.fileno())
            place(tmp, path)
            _fsync_dir(path.parent)
            return path
        except FileExistsError:
            raise
        except OSError as exc:
            raise StoreError(f"cannot write {path}: {exc.strerror or exc}") from exc
        finally:
            tmp.unlink(missing_ok=True)

    def read_bytes(self, rel: str) -> bytes:
        return (self.root / rel).read_bytes()

    def list(self, rel_dir: str) -> list[str]:
        base = self.root / rel_dir
        if not base.is_dir():
            return []
        return sorted(str(p.relative_to(self.root)) for p in base.rglob("*") if p.is_file())

    def delete(self, rel: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            (self.root / rel).unlink()

    def exists(self, rel: str) -> bool:
        return (self.root / rel).exists()

    def rename(self, src: str, dst: str) -> None:
        target = self._prepare(dst)
        try:
            os.replace(self.root / src, target)
            _fsync_dir(target.parent)
        except OSError as exc:
            raise StoreError(f"cannot move {src} to {target}: {exc.strerror or exc}") from exc

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """flock on `_oqtopus/lock`: the kernel drops it when the holder dies, so a killed run never blocks."""
        path = self._prepare("_oqtopus/lock")
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise StoreError(f"cannot open the lock file {path}: {exc.strerror or exc}") from exc
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
                holder = _read_holder(fd)
                raise LockError(
                    f"another oqtopus-data export is writing to {self.root} ({holder}); "
                    "wait for it to finish, or export into another directory"
                ) from None
            info = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                                                        time.gmtime())}
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(info).encode(), 0)
            yield
        finally:
            os.close(fd)  # closing releases the flock


def _read_holder(fd: int) -> str:
    try:
        info = json.loads(os.pread(fd, 4096, 0) or b"{}")
        return f"pid {info['pid']} on {info['host']} since {info['since']}"
    except (ValueError, KeyError, OSError):
        return "holder unknown"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def open_storage(location: str | os.PathLike[str], **options: str) -> Storage:
    """The Storage for a local path, a `file://` URL or an `s3://bucket/prefix` URL (`options` go to S3)."""
    text = os.fspath(location)
    if text.startswith("s3://"):
        from .objectstore import S3Storage  # needs boto3, the `s3` extra: only imported for s3:// locations

        return S3Storage(text, **options)
    if text.startswith("file://"):
        text = text[len("file://"):]
    elif "://" in text:
        raise StoreError(f"unsupported dataset location {text!r}: give a local directory or an s3:// URL")
    return LocalStorage(text)
