"""Reading one response body within its limits: the size cap (on decoded bytes), the byte budget, the attempt's
deadline, bounded decompression and JSON decoding without holding bytes, text and values all at once.

Compressed bodies are inflated here, a chunk at a time with a cap on each step's output (libcurl is told to leave
them encoded): a decoder that inflates a whole read at once lets a gzip bomb (or gzip inside gzip) turn a few KiB
read into gigabytes before any limit can be checked.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterator
from typing import Any

from oqtopus_data.client.curl import CurlResponse
from oqtopus_data.client.limits import Attempt, Deadline, Hold
from oqtopus_data.client.neterrors import BadEncoding, BodyCutShort, Overdue
from oqtopus_data.errors import ApiError
from oqtopus_data.redact import scrub

CHUNK = 64 * 1024
GROW_STEP = 1 << 20  # a body of unknown length reserves its budget a mebibyte at a time
ERROR_BODY_LIMIT = 64 * 1024
ENCODINGS = {"gzip": 31, "x-gzip": 31, "deflate": 47}  # zlib wbits: gzip; zlib (or gzip) for "deflate"
ACCEPT_ENCODING = "gzip, deflate"  # what we ask for, so that a server has no reason to send anything else


class DownloadTooLarge(ApiError):
    """A body went past the size limit; never retried."""


class BadBody(ApiError):
    """A complete body that cannot be read (JSON nested too deeply, not UTF-8, an unknown encoding); asking again
    would not help."""


def overdue(watch: Attempt) -> Overdue:
    seconds = watch.allowed
    return Overdue(f"no complete answer within {seconds:.1f} s" if seconds < 10 else
                   f"no complete answer within {seconds:.0f} s")


def read_body(
    response: CurlResponse, *, label: str, limit: int | None, want_json: bool, watch: Attempt,
    deadline: Deadline, hold: Hold, count: Any,
) -> tuple[bytes | bytearray, Any]:
    """(the body, its JSON value when asked for) of a 2xx response, or the beginning of an error body.

    The body goes into one buffer, preallocated when its length is known, after reserving its bytes in `hold`.
    `count(n)` is told of every decoded chunk."""
    ok = 200 <= response.status_code < 300
    cap = limit if ok else ERROR_BODY_LIMIT
    declared = _content_length(response)
    encoding = response.headers.get("Content-Encoding", "identity").strip().lower() or "identity"
    if ok and cap is not None and declared is not None and declared > cap:
        raise DownloadTooLarge(f"{label}: {declared} bytes is over the limit of {_size(cap)}")
    if encoding != "identity" and encoding not in ENCODINGS:
        raise BadBody(f"{label}: the body is encoded as {scrub(encoding)[:40]!r}, which was not asked for")
    if declared is not None:
        watch.allow(declared)
    exact = declared if ok and encoding == "identity" else None  # the decoded length, when the header tells it
    base = hold.nbytes
    if ok:
        with watch.paused():
            hold.grow(exact if exact is not None else min(GROW_STEP, cap or GROW_STEP))
    body = bytearray(exact) if exact is not None else bytearray()
    try:
        total = _fill(body, response, exact=exact, cap=cap, ok=ok, label=label, encoding=encoding, watch=watch,
                      deadline=deadline, hold=hold, base=base, count=count)
    except BaseException:
        body.clear()  # an exception's frames outlive it (in a retry's cause, a job's error): keep them light
        raise
    if exact is not None and total < exact:
        body.clear()
        raise BodyCutShort(f"got {total} of {exact} bytes")
    if not (ok and want_json):
        return body, None
    return b"", _decode_json(body, label, hold)


def _fill(
    body: bytearray, response: CurlResponse, *, exact: int | None, cap: int | None, ok: bool, label: str,
    encoding: str, watch: Attempt, deadline: Deadline, hold: Hold, base: int, count: Any,
) -> int:
    """Read the body into `body` (in place when its size is `exact`); returns the number of bytes read."""
    total = 0
    for chunk in _chunks(response, ENCODINGS.get(encoding)):
        size = len(chunk)
        count(size)
        if cap is not None and total + size > cap:
            if not ok:
                body += chunk[: cap - total]
                return cap  # an error body only needs its beginning
            raise DownloadTooLarge(f"{label}: the body is over the limit of {_size(cap)}")
        if exact is not None:
            if total + size > exact:
                raise BodyCutShort(f"more than the {exact} bytes declared")
            body[total : total + size] = chunk
        else:
            if ok and base + total + size > hold.nbytes:
                with watch.paused():
                    hold.grow(max(size, GROW_STEP))
            body += chunk
        total += size
        watch.allow(total)
        if deadline.overdue(watch):
            raise overdue(watch)
    return total


def _chunks(response: CurlResponse, wbits: int | None) -> Iterator[bytes]:
    """The decoded body in pieces of at most CHUNK bytes, however much one compressed piece inflates to."""
    if wbits is None:
        yield from _raw_chunks(response)
        return
    inflater = zlib.decompressobj(wbits)
    try:
        for piece in _raw_chunks(response):
            data = inflater.decompress(piece, CHUNK)
            while data:
                yield data
                data = inflater.decompress(inflater.unconsumed_tail, CHUNK) if inflater.unconsumed_tail else b""
            if inflater.eof:
                break
        if tail := inflater.flush():
            yield tail
    except zlib.error as exc:
        raise BadEncoding(f"the compressed body is corrupt ({exc})") from None


def _raw_chunks(response: CurlResponse) -> Iterator[bytes]:
    """The body as sent (not decoded), a piece at a time."""
    read = response.raw.read
    while chunk := read(CHUNK):
        yield chunk


def _decode_json(body: bytearray, label: str, hold: Hold) -> Any:
    """The JSON value of a body. The body is emptied once decoded to text, so that bytes, text and values are
    never all held at once; the text is reserved in the budget like the body."""
    hold.grow(len(body))
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BadBody(f"{label}: the body is not UTF-8 JSON (byte {exc.start})") from None
    del body[:]
    try:
        return json.loads(text)
    except RecursionError:
        raise BadBody(f"{label}: the JSON is nested too deeply to read") from None
    except json.JSONDecodeError as exc:
        raise BodyCutShort(f"the JSON does not parse: {exc}") from None
    except ValueError as exc:  # e.g. an integer of more digits than Python converts
        raise BadBody(f"{label}: the JSON cannot be read ({scrub(str(exc))})") from None
    finally:
        del text  # not kept alive by the traceback of an error


def _content_length(response: CurlResponse) -> int | None:
    try:
        value = int(response.headers.get("Content-Length", ""))
    except ValueError:
        return None
    return value if value >= 0 else None


def _size(nbytes: int) -> str:
    return f"{nbytes // 2**20} MiB" if nbytes % 2**20 == 0 and nbytes else f"{nbytes} bytes"
