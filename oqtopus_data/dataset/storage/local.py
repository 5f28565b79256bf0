"""A dataset in a directory of the local file system: temp file + fsync + rename, fsync'd directories, flock."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import shutil
import socket
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

import pyarrow as pa

from oqtopus_data.dataset.storage.common import (
    LOCK,
    META_DIR,
    check_options,
    gone,
    inside,
    is_staged,
    staged_name,
    write_parquet_into,
)
from oqtopus_data.errors import LockError, StoreError

#: A local directory takes no storage options.
OPTIONS: tuple[str, ...] = ()


class LocalStorage:
    """A dataset directory on a local disk (see oqtopus_data.dataset.storage.Storage for what each method promises)."""

    is_local = True
    staged_name = staticmethod(staged_name)
    is_staged = staticmethod(is_staged)

    def __init__(self, root: str | os.PathLike[str], **options: str) -> None:
        check_options(options, OPTIONS, "a local directory")
        self.root = Path(root).expanduser().absolute()
        self._lock_fd: int | None = None  # the lock file this process holds, while it holds it

    def __repr__(self) -> str:
        return f"LocalStorage({str(self.root)!r})"

    def uri(self, rel: str = "") -> str:
        return str(self.root / inside(rel)) if rel else str(self.root)

    def arrow_filesystem(self) -> Any:
        import pyarrow.fs as pafs

        return pafs.LocalFileSystem()

    def arrow_path(self, rel: str) -> str:
        return str(self._here(inside(rel)))

    def _here(self, rel: str) -> Path:
        """The path of `rel`, once sure that a held lock still guards this directory.

        A directory removed (or removed and made again) under a writer is said so at its next step: making its
        directories again would bring back half a dataset that every reader refuses.
        """
        if self._lock_fd is not None and not self.lock_intact():
            raise gone(f"the dataset directory {self.root}")
        return self.root / inside(rel) if rel else self.root

    def _prepare(self, rel: str) -> Path:
        path = self._here(inside(rel))
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create directory {path.parent}: {exc.strerror or exc}") from exc
        return path

    def write_parquet(self, rel: str, table: pa.Table | Iterable[pa.Table]) -> int:
        path = self._durable_temp(rel, lambda fh: write_parquet_into(fh, table), os.replace)
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
        return self._here(inside(rel)).read_bytes()

    def list(self, rel_dir: str) -> list[str]:
        base = self._here(rel_dir)
        if not base.is_dir():
            return []
        return sorted(str(p.relative_to(self.root)) for p in base.rglob("*") if p.is_file())

    def children(self, rel_dir: str) -> list[str]:
        base = self._here(rel_dir)
        try:
            return sorted(p.name for p in base.iterdir())
        except (FileNotFoundError, NotADirectoryError):
            return []
        except OSError as exc:
            raise StoreError(f"cannot list {base}: {exc.strerror or exc}") from exc

    def delete(self, rel: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._here(inside(rel)).unlink()

    def exists(self, rel: str) -> bool:
        return (self.root / inside(rel)).exists()

    def rename(self, src: str, dst: str) -> None:
        source, target = self._here(inside(src)), self._prepare(dst)
        try:
            os.replace(source, target)
            _fsync_dir(target.parent)
        except OSError as exc:
            raise StoreError(f"cannot move {src} to {target}: {exc.strerror or exc}") from exc

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """flock on `_oqtopus/lock`: the kernel drops it when the holder dies, so a killed run never blocks."""
        fd = self._open_lock()
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
            if not _still_linked(fd, self.root / LOCK):
                # The lock file was removed (remove_root) between our open and our flock: that lock guards nothing.
                raise LockError(f"the directory {self.root} was being removed by a failed first export; "
                                "run the export again")
            info = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                                                        time.gmtime())}
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(info).encode(), 0)
            self._lock_fd = fd
            yield
        finally:
            self._lock_fd = None
            os.close(fd)  # closing releases the flock

    def lock_intact(self) -> bool:
        """Whether the lock file this process holds is still `_oqtopus/lock` of the directory (same inode)."""
        return self._lock_fd is not None and _still_linked(self._lock_fd, self.root / LOCK)

    def _open_lock(self) -> int:
        """Open (creating) the lock file; its directory, if a failed first run removes it meanwhile, is made again."""
        for _ in range(3):
            path = self._prepare(LOCK)
            try:
                return os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            except FileNotFoundError:
                continue  # removed between our mkdir and our open (remove_root)
            except OSError as exc:
                raise StoreError(f"cannot open the lock file {path}: {exc.strerror or exc}") from exc
        raise StoreError(f"cannot open the lock file {self.root / LOCK}: its directory keeps being removed")

    def create_root(self) -> bool:
        """Create the dataset directory (and its parents); True only when this call made the directory itself.

        mkdir is atomic: of two runs racing on a new directory exactly one learns that it created it.
        """
        try:
            self.root.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create directory {self.root.parent}: {exc.strerror or exc}") from exc
        try:
            self.root.mkdir()
        except FileExistsError:
            if not self.root.is_dir():
                raise StoreError(f"{self.root} exists and is not a directory: name a new or empty directory") from None
            return False
        except OSError as exc:
            raise StoreError(f"cannot create directory {self.root}: {exc.strerror or exc}") from exc
        return True

    def remove_root(self) -> None:
        """Delete the dataset directory, the lock file last; call only while holding the lock.

        Another run that opens the lock file after it is unlinked gets a new one and may start writing: the
        directories are then removed only if empty, so nothing of that run is touched.
        """
        meta = self.root / META_DIR
        for parent, keep in ((self.root, meta.name), (meta, "lock")):
            with contextlib.suppress(FileNotFoundError):
                for child in list(parent.iterdir()):
                    if child.name == keep:
                        continue
                    if child.is_dir() and not child.is_symlink():
                        shutil.rmtree(child, ignore_errors=True)
                    else:
                        child.unlink(missing_ok=True)
        (self.root / LOCK).unlink(missing_ok=True)
        for directory in (meta, self.root):
            with contextlib.suppress(OSError):  # not empty: another run is using it now
                directory.rmdir()


def _read_holder(fd: int) -> str:
    try:
        info = json.loads(os.pread(fd, 4096, 0) or b"{}")
        return f"pid {info['pid']} on {info['host']} since {info['since']}"
    except (ValueError, KeyError, OSError):
        return "holder unknown"


def _still_linked(fd: int, path: Path) -> bool:
    try:
        here, there = os.fstat(fd), os.stat(path)
    except FileNotFoundError:
        return False
    return (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
