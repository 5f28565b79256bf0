"""Benchmark 8: client CPU per HTTP request, sequential GETs of archives from the local cloud (in its own process):
the Transport as it is (retries, deadline, byte budget and body checks included) against the client libraries it
could stand on, each kept alive: pycurl (libcurl), urllib3 2.x connection pools used directly, urllib3's
PoolManager, the standard library's http.client, and requests."""

from __future__ import annotations

import http.client
import time
from typing import Any
from urllib.parse import urlsplit

from .cloud import CloudProcess
from .common import Mode, table

NAME = "transport"
PAGE = 100  # the server's largest page


def run(mode: Mode) -> dict[str, Any]:
    n = mode.pick(300, 1_000)
    import requests
    import urllib3

    from oqtopus_data.client.http import Transport

    def transport() -> Transport:
        return Transport(token="x", proxy=None, timeout=30.0, max_tries=1, backoff=0.1,
                         max_backoff=1.0, sleep=time.sleep, user_agent="oqtopus-data-benchmark")

    with CloudProcess(n + 200, latency=0.0) as cloud:
        urls: list[str] = []
        for page in range(1, (n + 200) // PAGE + 1):
            listed = requests.get(f"{cloud.url}/jobs", params={"size": PAGE, "page": page},
                                  headers={"q-api-token": cloud.token}, timeout=60).json()
            urls += [j["job_info"]["input"] for j in listed if isinstance(j.get("job_info"), dict)
                     and "input" in j["job_info"]]
        urls = urls[:n]
        as_is = transport()
        pool = urllib3.PoolManager(maxsize=4)
        parts = urlsplit(urls[0])
        conn = http.client.HTTPConnection(parts.hostname or "", parts.port)
        direct_pool = urllib3.HTTPConnectionPool(parts.hostname or "", parts.port, maxsize=4)
        session = requests.Session()
        headers = {"Accept-Encoding": "gzip, deflate"}

        def bare(url: str) -> bytes:
            target = urlsplit(url)
            conn.request("GET", f"{target.path}?{target.query}", headers=headers)
            return conn.getresponse().read()

        def pooled(url: str) -> bytes:
            target = urlsplit(url)
            response = direct_pool.urlopen("GET", f"{target.path}?{target.query}", headers=headers, retries=False,
                                           redirect=False, preload_content=False, decode_content=False)
            body = b"".join(response.stream(65536, decode_content=False))
            response.release_conn()
            return body

        variants = {"oqtopus_data.client.http.Transport, as it is": lambda u: as_is.get(u, kind="storage").body}
        curl = _curl()
        if curl is not None:
            variants["pycurl.Curl kept alive (libcurl 8)"] = curl
        variants.update({
            "urllib3 2.x HTTPConnectionPool.urlopen, streamed": pooled,
            "urllib3.PoolManager.request (no requests)": lambda u: pool.request("GET", u).data,
            "http.client.HTTPConnection kept alive (no pool, no checks)": bare,
            "requests.Session.get": lambda u: session.get(u, headers=headers, timeout=30).content,
        })

        best = dict.fromkeys(variants, float("inf"))
        for get in variants.values():  # warm: connections opened, archives built and cached by the server
            for url in urls[:50]:
                get(url)
        for _ in range(3):
            for name, get in variants.items():
                c0 = time.process_time()
                for url in urls:
                    get(url)
                best[name] = min(best[name], (time.process_time() - c0) / len(urls))
    table(f"8. transport: client CPU per request, best of 3 x {len(urls)} sequential GETs "
          "[python -m benchmarks --only transport]", ["", "ms CPU / request", "max requests/s on one core"],
          [[name, v * 1e3, 1 / v] for name, v in best.items()],
          note="The request floor of benchmark 1 (16 workers, 20 ms) needs 800 requests/s from one process, which "
               "must also unzip, parse, flatten and write: compare with benchmark 1's client CPU per request (all of "
               "the export's work).")
    return {name: v * 1e3 for name, v in best.items()}


def _curl() -> Any:
    """A GET through one reused pycurl handle (libcurl keeps the connection alive), or None without pycurl."""
    try:
        import pycurl
    except ImportError:
        return None
    import io

    handle = pycurl.Curl()
    handle.setopt(pycurl.HTTPHEADER, ["Accept-Encoding: gzip, deflate"])

    def get(url: str) -> bytes:
        buffer = io.BytesIO()
        handle.setopt(pycurl.URL, url)
        handle.setopt(pycurl.WRITEDATA, buffer)
        handle.perform()
        return buffer.getvalue()

    return get
