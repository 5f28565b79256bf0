"""Text bound for a message or a log, with secrets taken out: the API token and presigned URL signatures.

A presigned URL carries its signature in the query string, but other presigners put it in `;params` or in a
path segment, so all three are scrubbed. The token is replaced only where the whole token appears, and only
when it is long enough to be told apart from ordinary words.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

MESSAGE_LIMIT = 200
MIN_REDACTED_TOKEN = 8  # a shorter "token" (say `x`) would turn every x of a message into <token>

_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>)]+")
_QUERY = re.compile(r"\?[^\s'\"<>)]+")
_PARAMS = re.compile(r";[^\s/?;=&'\"<>)]+=[^\s/?;'\"<>)]*")
_SIGNED = re.compile(r"(?i)\b((?:x-amz-|x-goog-)?(?:signature|sig|credential|security-token|token))=[^\s&;'\"<>)]+")
_SECRET_SEGMENT = re.compile(r"[A-Za-z0-9+_%=-]{40,}")  # a hash or an HMAC in base64 or hex


def redact_url(url: str) -> str:
    """scheme://host/path of a URL, for messages: no user info, query, fragment or `;params`, and no path
    segment that looks like a signature. Never raises: a malformed URL becomes "<malformed URL>"."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises ValueError on a port that is not a number)
    except ValueError:
        return "<malformed URL>"
    host = parts.netloc.rpartition("@")[2]
    path = "/".join(_segment(segment) for segment in parts.path.split("/"))
    return f"{parts.scheme}://{host}{path}"


def _segment(segment: str) -> str:
    segment = segment.split(";", 1)[0]
    return "<redacted>" if "=" in segment or _SECRET_SEGMENT.fullmatch(segment) else segment


def scrub(text: str, token: str | None = None) -> str:
    """`text` without the token, URL queries, params and signatures, shortened to MESSAGE_LIMIT characters."""
    if token and len(token) >= MIN_REDACTED_TOKEN:
        # Exception texts may quote the token escaped (repr), so remove both spellings.
        text = text.replace(token, "<token>").replace(repr(token)[1:-1], "<token>")
    text = _URL.sub(lambda match: redact_url(match.group()), text)
    text = _QUERY.sub("", text)
    text = _PARAMS.sub("", text)
    text = _SIGNED.sub(r"\1=<redacted>", text)
    return text if len(text) <= MESSAGE_LIMIT else text[: MESSAGE_LIMIT - 1] + "…"
