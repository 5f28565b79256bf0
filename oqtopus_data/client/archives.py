"""Reading the zip archives behind job_info's presigned URLs, safely, and telling a URL from inline content.

The size limit is checked against the declared size before inflating and again while inflating, so a zip bomb
stops at the limit instead of filling memory. The downloaded bytes are read in place (no copy into a BytesIO)
and the entry is inflated into one buffer of its declared size. Its JSON is decoded from those bytes by msgspec's
C decoder (twice the speed of the standard library's, and no text copy); what msgspec refuses is read again by the
standard library, so every archive gives the value or the error it always gave.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
import zlib
from collections.abc import Callable
from urllib.parse import urlsplit

import msgspec

from oqtopus_data.errors import OqtopusDataError

CHUNK = 256 * 1024
OBJECT_KEYS = frozenset({"result", "input", "transpile_result"})
STRING_OR_OBJECT_KEYS = frozenset({"combined_program"})
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")

_SPELLED_WITH_A_VOWEL = frozenset({"s3", "ftp", "sftp", "hdfs", "nfs", "smb", "ssh"})  # an s3:// URL, a file:// URL
Reserve = Callable[[int], object]  # reserves bytes before they are allocated (ByteBudget's Hold.grow)
_JSON = msgspec.json.Decoder()


class ArchiveError(OqtopusDataError, ValueError):
    """An archive is not a zip with one JSON file of the expected shape; `problem` says why."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key} archive: {problem}")
        self.key = key
        self.problem = problem


class _View(io.RawIOBase):
    """A read-only, seekable file over bytes or a bytearray, without copying them (io.BytesIO copies a
    bytearray)."""

    def __init__(self, data: bytes | bytearray) -> None:
        self._view = memoryview(data)
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: len(self._view)}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        data = self._view[self._pos : self._pos + len(buffer)]
        buffer[: len(data)] = data
        self._pos += len(data)
        return len(data)

    def close(self) -> None:
        self._view.release()
        super().close()


def _open(view: _View, key: str) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(view)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise ArchiveError(key, f"not a zip archive ({exc})") from None


def check_zip(data: bytes | bytearray, *, key: str) -> int:
    """Check that `data` is a readable zip archive (its directory, not its content); returns its file count."""
    with _View(data) as view, _open(view, key) as archive:
        return sum(not info.is_dir() for info in archive.infolist())


def read_entry(data: bytes | bytearray, *, key: str, limit: int, reserve: Reserve | None = None) -> bytearray:
    """The inflated bytes of the archive's single file entry, never more than `limit` of them.

    `reserve(n)` is called with the entry's declared size before the buffer is allocated."""
    with _View(data) as view, _open(view, key) as archive:
        entries = [info for info in archive.infolist() if not info.is_dir()]
        if len(entries) != 1:
            found = "no entry" if not entries else f"{len(entries)} entries"
            raise ArchiveError(key, f"expected exactly one file, found {found}")
        info = entries[0]
        if info.file_size > limit:
            raise ArchiveError(key, f"declares {info.file_size} bytes, over the limit of {limit}")
        if reserve is not None:
            reserve(info.file_size)
        # zipfile stops at the declared size and then checks the CRC, so the buffer is never outgrown.
        out = bytearray(info.file_size)
        total = 0
        try:
            with archive.open(info) as handle:
                while chunk := handle.read(CHUNK):
                    out[total : total + len(chunk)] = chunk
                    total += len(chunk)
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
            raise ArchiveError(key, f"corrupt archive ({exc})") from None
        except (RuntimeError, NotImplementedError) as exc:  # encrypted, unknown compression
            raise ArchiveError(key, f"unreadable entry ({exc})") from None
    if total != len(out):
        raise ArchiveError(key, f"corrupt archive (the entry holds {total} of the {len(out)} bytes it declares)")
    return out


def read_archive(data: bytes | bytearray, *, key: str, limit: int, reserve: Reserve | None = None) -> object:
    """The JSON inside a job_info archive; `key` (result, input, ...) decides the root type.

    `reserve(n)` is called before the inflated entry and again before its text are allocated."""
    raw = read_entry(data, key=key, limit=limit, reserve=reserve)
    if reserve is not None:
        reserve(len(raw))  # the values (or the text) decoded from it
    value = _decode(raw, key)
    if key in OBJECT_KEYS and not isinstance(value, dict):
        raise ArchiveError(key, f"the JSON root is {_kind(value)}, expected an object")
    if key in STRING_OR_OBJECT_KEYS and not isinstance(value, dict | str):
        raise ArchiveError(key, f"the JSON root is {_kind(value)}, expected a string or object")
    return value


def _decode(raw: bytearray, key: str) -> object:
    """The JSON value of an entry's bytes, which are emptied once read.

    msgspec reads the bytes in place. It refuses some JSON the standard library reads (a byte-order mark, NaN,
    numbers beyond 64 bits or float range, a lone surrogate escape) and words its errors its own way, so whatever
    it refuses goes through `_decode_text`, whose value or error is the rule."""
    try:
        value = _JSON.decode(raw)
    except (msgspec.DecodeError, RecursionError):
        return _decode_text(raw, key)
    del raw[:]
    return value


def _decode_text(raw: bytearray, key: str) -> object:
    """The standard library's reading of an entry: UTF-8 text (a BOM allowed), then JSON, each error named."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ArchiveError(key, f"the file is not UTF-8 text (byte {exc.start})") from None
    del raw[:]  # the bytes are not needed once decoded: never hold bytes, text and values at once
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ArchiveError(
            key, f"invalid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"
        ) from None
    except RecursionError:
        raise ArchiveError(key, "invalid JSON (nested too deeply)") from None
    except ValueError as exc:  # e.g. an integer of more digits than Python converts
        raise ArchiveError(key, f"invalid JSON ({str(exc)[:100]})") from None
    finally:
        del text  # not kept alive by the traceback of an error
    return value


def _kind(value: object) -> str:
    names = {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}
    return names.get(type(value), "a number")


def is_url(value: object) -> bool:
    """Whether a job_info item is a (presigned) http(s) URL rather than inline content."""
    return isinstance(value, str) and value.startswith(("https://", "http://"))


def url_problem(key: str, value: object) -> str | None:
    """Why a job_info string under `key` is neither a usable http(s) archive URL nor inline content; None when
    it is one of those. The message names the key and the kind of value, never the value (a URL's signature).

    `result`, `input` and `transpile_result` are objects when inline, so any other string there is an error;
    `combined_program` and `sse_log` may be inline text, so only a URL of another scheme is one."""
    if not isinstance(value, str):
        return None
    if is_url(value):
        try:
            parts = urlsplit(value)
            parts.port  # noqa: B018 (raises ValueError on a port that is not a number in range)
        except ValueError as exc:
            return f"{key} is a malformed URL ({str(exc)[:1].lower()}{str(exc)[1:60]})"
        return None if parts.hostname else f"{key} is a malformed URL (no host)"
    scheme = _SCHEME.match(value)
    if scheme:
        name = scheme.group(1).lower()
        article = "an" if name[0] in "aeio" or name in _SPELLED_WITH_A_VOWEL else "a"
        return f"{key} is {article} {name}:// URL, not an http(s) archive URL"
    if key not in OBJECT_KEYS:
        return None
    if not value.strip():
        kind = "an empty string"
    else:
        kind = "a text string" if any(char.isspace() for char in value) else "a relative path"
    return f"{key} is {kind}, not an http(s) archive URL"
