"""Text bound for a message, a log or the dataset, with secrets taken out: the API token and presigned URL signatures.

A presigned URL carries its signature in the query string, but other presigners put it in `;params` or in a
path segment, so all three are scrubbed. The token is replaced only where the whole token appears, and only
when it is long enough to be told apart from ordinary words. Text stored in the dataset (a job's message, its
extra keys) goes through `scrub_signatures`: it keeps the text whole and takes out only what signs.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

MESSAGE_LIMIT = 200
MIN_REDACTED_TOKEN = 8  # a shorter "token" (say `x`) would turn every x of a message into <token>

_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>)]+")
_QUERY = re.compile(r"\?[^\s'\"<>)]+")
_PARAMS = re.compile(r";[^\s/?;=&'\"<>)]+=[^\s/?;'\"<>)]*")
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
    text = _signing_values(text)
    return text if len(text) <= MESSAGE_LIMIT else text[: MESSAGE_LIMIT - 1] + "…"


REDACTED = "<redacted>"
# The query parameters that carry a presigned URL's secret: AWS SigV4 and V2, GCS, Alibaba OSS, Azure SAS (`sig`),
# CloudFront (Signature, Policy, Key-Pair-Id), and the generic names other presigners use.
_SIGNING_NAME = (r"(?:x-(?:amz|goog|oss)-(?:signature|credential|security-token)|signature|sig|security-token|token"
                 r"|credential|awsaccesskeyid|googleaccessid|ossaccesskeyid|key-pair-id|policy)")
# `=` as it is, or percent-encoded once or twice (a presigned URL quoted inside another URL's query).
_EQUALS = r"(?:=|%3d|%253d)"
# A value ends at a separator: `&` (or its encoded forms), `;`, a space, a quote, a bracket, a comma, a backslash.
_VALUE = r"(?:(?!%26|%2526)[^\s&;'\"<>()\[\]{},\\])+"
# A key starts the text, follows a character that cannot be part of a name, or follows an encoded `&`, `?` or `/`.
_KEY_START = r"(?:(?<=%26)|(?<=%3f)|(?<=%2f)|(?<=%2526)|(?<=%253f)|(?<![a-z0-9_%-]))"
_SIGNATURE = re.compile(rf"(?i){_KEY_START}({_SIGNING_NAME}{_EQUALS}){_VALUE}")
_QUOTED_SIGNATURE = re.compile(rf"""(?i)(["'])({_SIGNING_NAME})\1(\s*:\s*)(["'])[^"'\\]*\4""")
_TEXT_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>()\[\]{}\\]+")


def scrub_signatures(text: str) -> str:
    """`text` with every signature taken out, wherever it stands: a URL keeps scheme://host/path (its query and
    `;params` become `?<redacted>`, a path segment that looks like a signature `<redacted>`), and a signing key=value
    anywhere else (in a sentence, a relative URL, a percent-encoded URL, a quoted mapping) keeps only its key.
    Nothing else of the text changes, and it is not shortened: it is what the dataset stores."""
    if not text:
        return text
    return _signing_values(_TEXT_URL.sub(_scrub_url, text))


def _signing_values(text: str) -> str:
    """`text` with the value of every signing key=value (or quoted key: value) replaced by REDACTED."""
    text = _SIGNATURE.sub(rf"\1{REDACTED}", text)
    return _QUOTED_SIGNATURE.sub(rf"\1\2\1\3\4{REDACTED}\4", text)


def scrub_stored(value: Any) -> Any:
    """`value` (text, or a mapping or list holding text) with `scrub_signatures` applied to every string in it."""
    if isinstance(value, str):
        return scrub_signatures(value)
    if isinstance(value, Mapping):
        return {key: scrub_stored(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [scrub_stored(item) for item in value]
    return value


def _scrub_url(match: re.Match[str]) -> str:
    url = match.group()
    end = len(url)
    while end and url[end - 1] in ".,:!?":  # the sentence's punctuation after a URL is not part of it
        end -= 1
    url, tail = url[:end], url[end:]
    shown = redact_url(url)
    base = url.split("?", 1)[0].split("#", 1)[0]
    signed = "?" in url or ";" in base.split("://", 1)[-1].partition("/")[2]
    return shown + ("?" + REDACTED if signed else "") + tail
