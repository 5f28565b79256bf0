"""Proxies through libcurl, against a real forward proxy on 127.0.0.1 started by each test: the configured proxy,
else the environment's (http_proxy, HTTPS_PROXY, ALL_PROXY) unless NO_PROXY names the host, and a clear set-up error
without the proxy's password when it cannot be reached."""

from __future__ import annotations

import json
import select
import socket
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from hostile import Hostile, payload
from test_tls import self_signed

from oqtopus_data.client.api import ApiClient
from oqtopus_data.client.config import Credentials
from oqtopus_data.errors import ApiError, ConfigError

TOKEN = "tok-SECRET-123"
PASSWORD = "pw-SECRET-42"
API = "http://api.example.invalid/v1"  # never resolved by the client: only the proxy sees the name
PROXY_VARIABLES = ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY", "no_proxy",
                   "NO_PROXY")


class _ProxyHandler(BaseHTTPRequestHandler):
    """A forward proxy: absolute-form GETs are answered as the API would (a job's status); CONNECT opens a tunnel
    to 127.0.0.1 (or is refused with `server.refuse_connect`)."""

    protocol_version = "HTTP/1.1"
    server: Proxy

    def do_GET(self) -> None:
        self.server.seen.append(("GET", self.path, dict(self.headers)))
        body = json.dumps({"job_id": "j", "status": "running"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_CONNECT(self) -> None:
        self.server.seen.append(("CONNECT", self.path, dict(self.headers)))
        host, _, port = self.path.rpartition(":")
        if self.server.refuse_connect or host not in ("127.0.0.1", "localhost"):
            self.send_response(403)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        upstream = socket.create_connection(("127.0.0.1", int(port)))
        self.send_response(200, "Connection established")
        self.end_headers()
        self.wfile.flush()
        _relay(self.connection, upstream)
        self.close_connection = True

    def log_message(self, *args: Any) -> None:
        pass


def _relay(client: socket.socket, upstream: socket.socket) -> None:
    with upstream:
        while True:
            ready, _, _ = select.select([client, upstream], [], [], 5)
            if not ready:
                return
            for sock in ready:
                data = sock.recv(65536)
                if not data:
                    return
                (upstream if sock is client else client).sendall(data)


class Proxy(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _ProxyHandler)
        self.seen: list[tuple[str, str, dict[str, str]]] = []
        self.refuse_connect = False
        threading.Thread(target=self.serve_forever, args=(0.05,), daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass


@pytest.fixture
def proxy(monkeypatch: pytest.MonkeyPatch) -> Iterator[Proxy]:
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    server = Proxy()
    yield server
    server.shutdown()
    server.server_close()


def client(url: str, proxy: str | None = None, **options: Any) -> ApiClient:
    options.setdefault("sleep", lambda seconds: None)
    return ApiClient(Credentials(url, TOKEN, proxy, 5.0, "test"), **options)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_the_configured_proxy_carries_the_request_and_the_token_reaches_the_api_through_it(proxy: Proxy) -> None:
    configured = proxy.url.replace("://", f"://user:{PASSWORD}@")
    with client(API, configured) as api:
        assert api.get_status("j") == "running"
    [(method, target, headers)] = proxy.seen
    assert (method, target) == ("GET", f"{API}/jobs/j/status")
    assert headers["q-api-token"] == TOKEN
    assert headers["Proxy-Authorization"].startswith("Basic ")  # the credentials of the proxy URL, for the proxy


@pytest.mark.parametrize("variable", ["http_proxy", "HTTP_PROXY", "ALL_PROXY"])
def test_the_environments_proxy_is_used_when_none_is_configured(proxy: Proxy, monkeypatch: pytest.MonkeyPatch,
                                                                 variable: str) -> None:
    monkeypatch.setenv(variable, proxy.url)
    with client(API) as api:
        assert api.get_status("j") == "running"
    assert [(m, t) for m, t, _ in proxy.seen] == [("GET", f"{API}/jobs/j/status")]


def test_no_proxy_bypasses_the_environments_proxy(proxy: Proxy, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("http_proxy", proxy.url)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    with Hostile() as server:
        server.on("/jobs/j/status", payload({"job_id": "j", "status": "ready"}))
        with client(server.url) as api:
            assert api.get_status("j") == "ready"
        assert server.hits["/jobs/j/status"] == 1
    assert proxy.seen == []


def test_https_goes_through_the_proxys_tunnel(proxy: Proxy, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert))
    monkeypatch.setenv("HTTPS_PROXY", proxy.url)
    with Hostile() as server:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        server._server.socket = context.wrap_socket(server._server.socket, server_side=True)
        server.on("/jobs/j/status", payload({"job_id": "j", "status": "ready"}))
        port = server.url.rsplit(":", 1)[1]
        with client(f"https://localhost:{port}") as api:
            assert api.get_status("j") == "ready"
            assert api.get_status("j") == "ready"
        assert server.headers["/jobs/j/status"]["q-api-token"] == TOKEN
    assert [(m, t) for m, t, _ in proxy.seen] == [("CONNECT", f"localhost:{port}")]  # one tunnel, kept alive


def test_a_proxy_refusing_the_tunnel_is_a_clear_set_up_error(proxy: Proxy, monkeypatch: pytest.MonkeyPatch) -> None:
    proxy.refuse_connect = True
    monkeypatch.setenv("HTTPS_PROXY", proxy.url)
    with client("https://api.example.invalid/v1") as api, pytest.raises(ConfigError) as info:
        api.preflight()
    assert str(info.value) == (f"cannot connect to the proxy 127.0.0.1:{proxy.server_address[1]} (the proxy refused "
                               "the request): check HTTPS_PROXY, HTTP_PROXY, ALL_PROXY and NO_PROXY.")


def test_an_unreachable_proxy_is_a_clear_set_up_error_without_its_password(proxy: Proxy) -> None:
    port = closed_port()
    with client(API, f"http://user:{PASSWORD}@127.0.0.1:{port}") as api, pytest.raises(ConfigError) as info:
        api.preflight()
    assert str(info.value) == (f"cannot connect to the proxy 127.0.0.1:{port} (connection refused): check "
                               "OQTOPUS_PROXY or the profile's proxy.")
    assert api.stats.snapshot()["requests"]["user"] == 1  # at once, without retries


def test_an_unreachable_proxy_fails_a_request_without_its_password(proxy: Proxy) -> None:
    port = closed_port()
    with client(API, f"http://user:{PASSWORD}@127.0.0.1:{port}", max_tries=2) as api, \
            pytest.raises(ApiError) as info:
        api.get_status("j")
    assert "connection failed" in str(info.value) and PASSWORD not in str(info.value)
    assert PASSWORD not in repr(info.value.__cause__)
