"""The transport's direct connections through libcurl (`oqtopus_data.client.curl`): framing, keep-alive, timeouts and
refusals, against scripted sockets."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from oqtopus_data.client.http import Transport
from oqtopus_data.errors import ApiError


class Scripted:
    """A server on 127.0.0.1 answering each connection's requests with the next raw answers, then closing it."""

    def __init__(self, *connections: list[bytes]) -> None:
        self.connections = list(connections)
        self.requests: list[bytes] = []
        self.accepted = 0
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        for answers in self.connections:
            conn, _ = self.sock.accept()
            self.accepted += 1
            with conn:
                for answer in answers:
                    self.requests.append(_read_request(conn))
                    conn.sendall(answer)


def _read_request(conn: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def transport(**options: object) -> Transport:
    settings = {"token": "t" * 12, "proxy": None, "timeout": 5.0, "max_tries": 2, "backoff": 0.001,
                "max_backoff": 0.01, "sleep": time.sleep, "user_agent": "test", **options}
    return Transport(**settings)  # type: ignore[arg-type]


@pytest.fixture
def within() -> Iterator[None]:
    started = time.monotonic()
    yield
    assert time.monotonic() - started < 20  # hang guard only


def test_a_chunked_body_with_extensions_and_a_trailer_is_read_whole(within: None) -> None:
    body = b"4;ext=1\r\nabcd\r\n3\r\nefg\r\n0\r\nX-Trailer: 1\r\n\r\n"
    server = Scripted([b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + body,
                       b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi"])
    t = transport()
    assert t.get(server.url + "/a", kind="storage").body == b"abcdefg"
    assert t.get(server.url + "/b", kind="storage").body == b"hi"  # the same connection, kept alive
    assert server.accepted == 1


def test_a_body_ending_before_its_length_is_retried_on_a_new_connection(within: None) -> None:
    server = Scripted([b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort"],
                      [b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789"])
    t = transport()
    assert t.get(server.url + "/a", kind="storage").body == b"0123456789"
    assert (server.accepted, t.stats.snapshot()["retries"]) == (2, 1)


def test_an_http_1_0_answer_without_keep_alive_is_not_reused(within: None) -> None:
    server = Scripted([b"HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\na"],
                      [b"HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nb"])
    t = transport()
    assert [t.get(server.url + p, kind="storage").body for p in ("/a", "/b")] == [b"a", b"b"]
    assert (server.accepted, t.stats.snapshot()["retries"]) == (2, 0)


def test_an_idle_connection_the_server_closed_is_replaced_without_a_retry(within: None) -> None:
    server = Scripted([b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\na"],
                      [b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nb"])
    t = transport()
    assert t.get(server.url + "/a", kind="storage").body == b"a"
    time.sleep(0.2)  # the server has closed the first connection by now
    assert t.get(server.url + "/b", kind="storage").body == b"b"
    assert t.stats.snapshot()["retries"] == 0


def test_a_header_with_a_line_break_is_refused_before_anything_is_sent(within: None) -> None:
    server = Scripted([b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\na"])
    t = transport(user_agent="ua\r\nX-Smuggled: 1")
    with pytest.raises(ApiError, match="a request header holds a line break"):
        t.get(server.url + "/a", kind="storage")
    assert (server.requests, t.stats.snapshot()["requests"]["storage"]) == ([], 1)


def test_the_request_names_the_host_and_sends_the_token_only_to_the_api(within: None) -> None:
    server = Scripted([b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n[]",
                       b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nz"])
    t = transport()
    t.get(server.url + "/jobs", kind="list", params={"size": 1, "start_time": "2024-01-01T00:00:00Z"})
    t.get(server.url + "/s?X-Amz-Signature=abc", kind="storage")
    api, storage = (r.decode() for r in server.requests)
    assert api.startswith("GET /jobs?size=1&start_time=2024-01-01T00%3A00%3A00Z HTTP/1.1\r\n")
    assert f"Host: {server.url.removeprefix('http://')}\r\n" in api and "q-api-token: tttttttttttt\r\n" in api
    assert storage.startswith("GET /s?X-Amz-Signature=abc HTTP/1.1\r\n") and "q-api-token" not in storage


def test_a_body_that_stops_arriving_fails_at_the_read_timeout_not_only_at_the_deadline(within: None) -> None:
    sock = socket.create_server(("127.0.0.1", 0))

    def stall() -> None:
        for _ in range(2):
            conn, _ = sock.accept()
            _read_request(conn)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
            threading.Timer(3, conn.close).start()  # then nothing for 3 s

    threading.Thread(target=stall, daemon=True).start()
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    t = transport(timeout=0.3, deadline=30.0)
    started = time.monotonic()
    with pytest.raises(ApiError, match=r"timed out \(no byte in 0.3 s\)"):
        t.get(url + "/a", kind="storage")
    assert time.monotonic() - started < 2.5


def test_an_interim_100_continue_is_skipped_and_the_final_answer_read(within: None) -> None:
    server = Scripted([b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Final: 1\r\n\r\nok"])
    t = transport()
    reply = t.get(server.url + "/a", kind="storage")
    assert (reply.status, reply.body, reply.headers.get("x-final")) == (200, b"ok", "1")


CLOSE_DURING_A_TRANSFER = r"""
import socket, sys, threading, time
import certifi
from oqtopus_data.client.curl import Curl

server = socket.create_server(("127.0.0.1", 0))
def serve():
    conn, _ = server.accept()
    conn.recv(4096)
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 20\r\n\r\n")
    for _ in range(20):  # a byte every 50 ms: the reader is inside libcurl when the client is closed
        time.sleep(0.05)
        conn.sendall(b"x")
    time.sleep(1)
threading.Thread(target=serve, daemon=True).start()

curl = Curl(timeout=5.0, ca=certifi.where())
body, failure = [], []
def read():
    try:
        response = curl.get(f"http://127.0.0.1:{server.getsockname()[1]}/", [], None)
        while piece := response.raw.read(4):
            body.append(piece)
        response.close()
    except BaseException as exc:
        failure.append(repr(exc))
reader = threading.Thread(target=read)
reader.start()
time.sleep(0.4)
curl.close()  # the run ends (an API client closed) while a worker is still inside its transfer
reader.join(10)
print(len(b"".join(body)), failure)
sys.exit(0 if len(b"".join(body)) == 20 and not failure else 1)
"""


def test_closing_the_client_while_another_thread_is_inside_a_transfer_lets_that_transfer_end(within: None) -> None:
    # Before: the closing thread freed the handles the reader was using (a segfault, or an error in the reader).
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", CLOSE_DURING_A_TRANSFER], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, (done.returncode, done.stdout, done.stderr[-2000:])
    assert done.stdout.startswith("20 []")
