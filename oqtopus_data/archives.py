"""Reading the one-file zip archives behind job_info's presigned URLs, safely.

The size limit is checked against the declared size before inflating and again while inflating in
chunks, so a zip bomb stops at the limit instead of filling memory.
"""

from __future__ import annotations

import io
import json
import zipfile
import zlib

from oqtopus_data.errors import OqtopusDataError

CHUNK = 256 * 1024
OBJECT_KEYS = frozenset({"result", "input", "transpile_result"})
STRING_OR_OBJECT_KEYS = frozenset({"combined_program"})


class ArchiveError(OqtopusDataError, ValueError):
    """An archive is not a zip with one JSON file of the expected shape; `problem` says why."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key} archive: {problem}")
        self.key = key
        self.problem = problem


def read_entry(data: bytes, *, key: str, limit: int) -> bytes:
    """The inflated bytes of the archive's single file entry, never more than `limit` of them."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise ArchiveError(key, f"not a zip archive ({exc})") from None
    with archive:
        entries = [info for info in archive.infolist() if not info.is_dir()]
        if len(entries) != 1:
            found = "no entry" if not entries else f"{len(entries)} entries"
            raise ArchiveError(key, f"expected exactly one file, found {found}")
        info = entries[0]
        if info.file_size > limit:
            raise ArchiveError(key, f"declares {info.file_size} bytes, over the limit of {limit}")
        chunks: list[bytes] = []
        total = 0
        try:
            with archive.open(info) as handle:
                while chunk := handle.read(CHUNK):
                    total += len(chunk)
                    if total > limit:
                        raise ArchiveError(key, f"inflates past the limit of {limit} bytes")
                    chunks.append(chunk)
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
            raise ArchiveError(key, f"corrupt archive ({exc})") from None
        except (RuntimeError, NotImplementedError) as exc:  # encrypted, unknown compression
            raise ArchiveError(key, f"unreadable entry ({exc})") from None
    return b"".join(chunks)


def read_archive(data: bytes, *, key: str, limit: int) -> object:
    """The JSON inside a job_info archive; `key` (result, input, ...) decides the root type."""
    raw = read_entry(data, key=key, limit=limit)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ArchiveError(key, f"the file is not UTF-8 text (byte {exc.start})") from None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ArchiveError(
            key, f"invalid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"
        ) from None
    except RecursionError:
        raise ArchiveError(key, "invalid JSON (nested too deeply)") from None
    if key in OBJECT_KEYS and not isinstance(value, dict):
        raise ArchiveError(key, f"the JSON root is {_kind(value)}, expected an object")
    if key in STRING_OR_OBJECT_KEYS and not isinstance(value, dict | str):
        raise ArchiveError(key, f"the JSON root is {_kind(value)}, expected a string or object")
    return value


def _kind(value: object) -> str:
    names = {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}
    return names.get(type(value), "a number")


def is_url(value: object) -> bool:
    """Whether a job_info item is a (presigned) http(s) URL rather than inline content."""
    return isinstance(value, str) and value.startswith(("https://", "http://"))
