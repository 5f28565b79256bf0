"""The fake cloud's object storage: presigned, expiring URLs to each job's zip archives.

Like S3: no token, a signature over path, date and lifetime, XML errors (403 expired or bad
signature, 404 no such key, 500/503 from the fault switches).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import os
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

from oqtopus_data.testing import extras
from oqtopus_data.testing.catalog import ARCHIVE_ENTRIES
from oqtopus_data.testing.faults import ARCHIVE_KINDS, COUNTS_KINDS, malform_result, malformed_archive, zip_bytes
from oqtopus_data.testing.httpd import Handler, s3_error
from oqtopus_data.testing.synth import History

_AMZ_DATE = "%Y%m%dT%H%M%SZ"


class PresignedStorage:
    """The bucket of one FakeCloud: signs URLs with a per-cloud secret and serves the archives."""

    def __init__(self, cloud: Any) -> None:  # the FakeCloud it belongs to (which imports this module)
        self.cloud = cloud
        self._secret = os.urandom(32)
        self._lock = threading.Lock()
        self._downloaded: set[tuple[str, str]] = set()  # for Faults.expire_first_download
        self.archive = functools.lru_cache(maxsize=2048)(self._build)

    def presign(self, job_id: str, key: str, date: str | None = None) -> str:
        """A fresh presigned storage URL for one of the job's archives (`date`: X-Amz-Date)."""
        date = date or amz_date(self.cloud.now())
        path = f"/storage/{job_id}/{key}.zip"
        ttl = self.cloud.url_ttl
        return (f"{self.cloud._url}{path}?{_signed_query(date, ttl)}"  # "" until started
                f"&X-Amz-Signature={self._sign(path, date, str(ttl))}")

    def _sign(self, path: str, date: str, expires: str) -> str:
        # A keyed BLAKE2b: an HMAC in effect, and cheap enough for pages of thousands of URLs.
        return hashlib.blake2b(f"{path}\n{date}\n{expires}".encode(), key=self._secret,
                               digest_size=32).hexdigest()

    def handle(self, h: Handler, parts: list[str], query: dict[str, str]) -> None:
        """Answer GET /storage/{job_id}/{key}.zip like S3 answers a presigned URL."""
        cloud = self.cloud
        if len(parts) != 3 or not parts[2].endswith(".zip"):
            h.send(404, s3_error("NoSuchKey", "The specified key does not exist."),
                   "application/xml")
            return
        job_id, key = parts[1], parts[2][:-4]
        date, expires = query.get("X-Amz-Date", ""), query.get("X-Amz-Expires", "")
        signature = query.get("X-Amz-Signature", "")
        path = f"/storage/{job_id}/{key}.zip"
        if not hmac.compare_digest(signature.encode(), self._sign(path, date, expires).encode()):
            h.send(403, s3_error("SignatureDoesNotMatch", "The request signature we calculated "
                                 "does not match the signature you provided."), "application/xml")
            return
        signed = datetime.strptime(date, _AMZ_DATE).replace(tzinfo=UTC)
        if cloud.now() > signed + timedelta(seconds=int(expires)):
            h.send(403, s3_error("AccessDenied", "Request has expired"), "application/xml")
            return
        idx = cloud.history.index(job_id)
        kind = cloud.faults.malformed.get(job_id)
        if idx is None or key not in archive_keys(cloud.history, idx, kind):
            h.send(404, s3_error("NoSuchKey", "The specified key does not exist."),
                   "application/xml")
            return
        if kind == "archive_never_arrives" or (
                key == "sse_log" and job_id in cloud.faults.sse_log_errors):
            h.send(500, s3_error("InternalError", "We encountered an internal error."),
                   "application/xml")
            return
        if cloud.faults.expire_first_download:
            with self._lock:
                first = (job_id, key) not in self._downloaded
                self._downloaded.add((job_id, key))
            if first:
                h.send(403, s3_error("AccessDenied", "Request has expired"), "application/xml")
                return
        broken = key == "result" and (kind in COUNTS_KINDS or kind in ARCHIVE_KINDS)
        h.send(200, self.archive(idx, key, kind if broken else None), "application/zip")

    def _build(self, idx: int, key: str, kind: str | None) -> bytes:
        """The zip archive behind one job_info key (`kind`: a malformed result to serve)."""
        history = self.cloud.history
        if key == "sse_log":  # the log and, sometimes, the user program's output
            files = history.sselog_files(history.job_id(idx))
            return zip_bytes([(name, text.encode()) for name, text in files.items()])
        if key == extras.URL_KEY:
            return zip_bytes([(extras.URL_ENTRY, history.payload(idx, key).encode())])
        entry = ARCHIVE_ENTRIES[key]
        payload = history.payload(idx, key) if key in history.meta(idx).keys else None
        if kind in COUNTS_KINDS:
            payload = malform_result(payload, kind)
        data = json.dumps(payload, ensure_ascii=False).encode()
        if kind in ARCHIVE_KINDS:
            return malformed_archive(kind, entry, data)
        return zip_bytes([(entry, data)])


def archive_keys(history: History, idx: int, kind: str | None) -> tuple[str, ...]:
    """The archives job `idx` has; a malformed result (`kind`) is served even where none exists."""
    keys = history.meta(idx).keys
    if (kind in COUNTS_KINDS or kind in ARCHIVE_KINDS) and "result" not in keys:
        keys = (*keys, "result")
    return keys


def amz_date(when: datetime) -> str:
    """`when` as an X-Amz-Date (the signing time of a presigned URL)."""
    return when.strftime(_AMZ_DATE)


@functools.lru_cache(maxsize=64)
def _signed_query(date: str, ttl: int) -> str:
    return (f"X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=FAKEACCESSKEY%2F{date[:8]}"
            f"%2Fap-northeast-1%2Fs3%2Faws4_request&X-Amz-Date={date}&X-Amz-Expires={ttl}"
            "&X-Amz-SignedHeaders=host")


