"""Benchmark 8: client CPU per HTTP request, the figure that decides how close an export gets to the request
floor (one Python process sustains at most 1 / CPU-per-request requests per second). Sequential GETs of archive
URLs from the local cloud (latency 0): oqtopus-data's Transport as it is (it switches off requests' per-request
environment lookups when no proxy variable or netrc file needs them), the same with them on (`session.trust_env =
True`: proxy variables, CA bundle variables and ~/.netrc re-read on every request, as before commit 1b6f4a2), and
bare urllib3 (what requests is built on)."""

from __future__ import annotations

import time
from typing import Any

from .cloud import CloudProcess
from .common import Mode, table

NAME = "transport"


def run(mode: Mode) -> dict[str, Any]:
    n = mode.pick(300, 1_000)
    import requests
    import urllib3

    from oqtopus_data.http import Transport

    def transport() -> Transport:
        return Transport(token="x", proxy=None, pool_size=4, timeout=30.0, max_tries=1, backoff=0.1,
                         max_backoff=1.0, sleep=time.sleep, user_agent="oqtopus-data-benchmark")

    with CloudProcess(n + 200, latency=0.0) as cloud:
        listed = requests.get(f"{cloud.url}/jobs", params={"size": n + 200}, headers={"q-api-token": cloud.token},
                              timeout=60).json()
        urls = [j["job_info"]["input"] for j in listed if isinstance(j.get("job_info"), dict)
                and "input" in j["job_info"]][:n]
        as_is = transport()
        lookups = transport()
        lookups.session.trust_env = True
        lookups.session.verify = True
        pool = urllib3.PoolManager(maxsize=4)
        variants = {
            f"oqtopus_data.http.Transport, as it is (trust_env {as_is.session.trust_env})":
                lambda u: as_is.get(u, kind="storage").body,
            "Transport with session.trust_env = True": lambda u: lookups.get(u, kind="storage").body,
            "urllib3.PoolManager.request (no requests)": lambda u: pool.request("GET", u).data,
        }
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
