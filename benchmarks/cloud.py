"""The local OQTOPUS Cloud in its own process, so that its threads do not compete with the client for one GIL.

`CloudProcess(n_jobs, latency=...)` starts `python -m benchmarks.cloud` (a FakeCloud on 127.0.0.1, port 0) and talks
to it over stdin/stdout with one-line JSON commands: request counts, reset, latency changes, faults, the requests a
run needs, stop. `latencies` sets a latency per kind of request (`list`, `job`, `storage`, ...; `default` for the
others) instead of one for all.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from typing import Any
from urllib.parse import urlsplit

from oqtopus_data.testing import FakeCloud, Faults
from oqtopus_data.testing.synth import generate_history

PAGE = 100  # the largest page GET /jobs serves
FETCHED_ARCHIVES = ("input", "combined_program", "result", "transpile_result")  # what an export downloads


class CloudProcess:
    """A FakeCloud served by a child process; a context manager. `url` and `token` once started."""

    def __init__(self, n_jobs: int, *, latency: float = 0.0, seed: int = 0, legacy: bool = False,
                 latencies: dict[str, float] | None = None, sdk_readable: bool = False) -> None:
        self.n_jobs, self.latency, self.seed, self.legacy = n_jobs, latency, seed, legacy
        self.sdk_readable = sdk_readable
        self.latencies = latencies or {}
        self.url = ""
        self.token = ""
        self._proc: subprocess.Popen[str] | None = None

    def __enter__(self) -> CloudProcess:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.cloud", str(self.n_jobs), str(self.latency), str(self.seed),
             "legacy" if self.legacy else "archives", json.dumps(self.latencies),
             "sdk" if self.sdk_readable else "all-forms"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env,
            cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
        )
        hello = self._reply()
        self.url, self.token = hello["url"], hello["token"]
        return self

    def __exit__(self, *exc: object) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        try:
            self._send(proc, {"cmd": "stop"})
            proc.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired, ValueError):
            proc.kill()
            proc.wait()

    def command(self, cmd: str, **args: Any) -> dict[str, Any]:
        """Send one command (`stats`, `reset`, `latency`, `cpu`) and return the child's JSON answer."""
        assert self._proc is not None
        self._send(self._proc, {"cmd": cmd, **args})
        return self._reply()

    def stats(self) -> dict[str, Any]:
        """Requests by kind since the last reset, TCP connections accepted, and the server's CPU seconds."""
        return self.command("stats")

    def reset(self) -> None:
        """Zero the request counters."""
        self.command("reset")

    def fault(self, **values: Any) -> None:
        """Set fault switches (`Faults` fields), e.g. `fault(rate_limit=200)`."""
        self.command("fault", values=values)

    def needed(self) -> dict[str, int]:
        """The requests an export of the whole history cannot do without: one listing page per 100 jobs, one GET
        per archive, one GET /devices ({"list", "storage", "devices", "total", "jobs"})."""
        return self.command("needed")

    @staticmethod
    def _send(proc: subprocess.Popen[str], message: dict[str, Any]) -> None:
        assert proc.stdin is not None
        proc.stdin.write(json.dumps(message) + "\n")
        proc.stdin.flush()

    def _reply(self) -> dict[str, Any]:
        assert self._proc is not None and self._proc.stdout is not None
        line = self._proc.stdout.readline()
        if not line:
            raise RuntimeError("the fake cloud process exited")
        return json.loads(line)


class _KindLatencyCloud(FakeCloud):
    """A FakeCloud whose latency depends on the kind of request (a listing page costs more than an archive)."""

    def __init__(self, *args: Any, latencies: dict[str, float], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.latencies = latencies

    def _handle(self, h: Any) -> None:
        parts = [p for p in urlsplit(h.path).path.split("/") if p]
        kind = "list" if parts == ["jobs"] else "job" if parts[:1] == ["jobs"] else (parts or ["other"])[0]
        delay = self.latencies.get(kind, self.latencies.get("default", 0.0))
        if delay > 0:
            time.sleep(delay)
        super()._handle(h)


def _needed(cloud: FakeCloud) -> dict[str, int]:
    history = cloud.history
    ids = history.job_ids()
    archives = 0
    for job_id in ids:
        idx = history.index(job_id)
        meta = history.meta(idx)
        if meta.job["status"] != "registered":
            archives += sum(1 for key in meta.keys if key in FETCHED_ARCHIVES)
    pages = math.ceil(len(ids) / PAGE)
    return {"list": pages, "storage": archives, "devices": 1, "total": pages + archives + 1, "jobs": len(ids)}


def _serve(n_jobs: int, latency: float, seed: int, legacy: bool, latencies: dict[str, float],
           sdk_readable: bool) -> None:
    # oqtopus-client 1.3.0 refuses an exp_value written as a list ([x], [re, im]: its model wants a number), so a
    # history the SDK script reads too writes every exp_value as a number.
    history = generate_history(n_jobs, seed=seed, exp_value_forms=("number",)) if sdk_readable else None
    if latencies:
        cloud: FakeCloud = _KindLatencyCloud(n_jobs=n_jobs, seed=seed, legacy=legacy, latencies=latencies,
                                             history=history)
    else:
        cloud = FakeCloud(n_jobs=n_jobs, seed=seed, faults=Faults(latency=latency), legacy=legacy, history=history)
    cloud.start()

    def say(value: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(value) + "\n")
        sys.stdout.flush()

    say({"url": cloud.url, "token": cloud.token})
    base_connections = 0
    try:
        for line in sys.stdin:
            message = json.loads(line)
            cmd = message["cmd"]
            if cmd == "stop":
                break
            if cmd == "reset":
                cloud.requests.reset()
                base_connections = cloud.connections_opened
                say({"ok": True})
            elif cmd == "latency":
                cloud.faults.latency = float(message["seconds"])
                say({"ok": True})
            elif cmd == "fault":
                for key, value in message["values"].items():
                    setattr(cloud.faults, key, value)
                say({"ok": True})
            elif cmd == "needed":
                say(_needed(cloud))
            elif cmd == "stats":
                times = os.times()
                say({"requests": cloud.requests.snapshot(),
                     "connections": cloud.connections_opened - base_connections,
                     "cpu_seconds": times.user + times.system})
            else:
                say({"error": f"unknown command {cmd}"})
    finally:
        cloud.stop()


if __name__ == "__main__":
    _serve(int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "legacy", json.loads(sys.argv[5]),
           sys.argv[6] == "sdk")
