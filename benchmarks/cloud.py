"""The local OQTOPUS Cloud in its own process, so that its threads do not compete with the client for one GIL.

`CloudProcess(n_jobs, latency=...)` starts `python -m benchmarks.cloud` (a FakeCloud on 127.0.0.1, port 0) and talks
to it over stdin/stdout with one-line JSON commands: request counts, reset, latency changes, stop.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

from oqtopus_data.testing import FakeCloud, Faults


class CloudProcess:
    """A FakeCloud served by a child process; a context manager. `url` and `token` once started."""

    def __init__(self, n_jobs: int, *, latency: float = 0.0, seed: int = 0, legacy: bool = False) -> None:
        self.n_jobs, self.latency, self.seed, self.legacy = n_jobs, latency, seed, legacy
        self.url = ""
        self.token = ""
        self._proc: subprocess.Popen[str] | None = None

    def __enter__(self) -> CloudProcess:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.cloud", str(self.n_jobs), str(self.latency), str(self.seed),
             "legacy" if self.legacy else "archives"],
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


def _serve(n_jobs: int, latency: float, seed: int, legacy: bool) -> None:
    cloud = FakeCloud(n_jobs=n_jobs, seed=seed, faults=Faults(latency=latency), legacy=legacy).start()

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
    _serve(int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "legacy")
