"""HTTPS through the transport (libcurl): certificates checked as requests checked them (the CA bundle variables,
else certifi's), on 127.0.0.1."""

from __future__ import annotations

import datetime
import ipaddress
import json
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from test_wire import transport

from oqtopus_data.errors import ApiError


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for localhost and 127.0.0.1 (its own issuer) and its key, as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                         x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self.server.clients.add(self.client_address)  # type: ignore[attr-defined]
        body = json.dumps({"path": self.path, "token": self.headers.get("q-api-token") is not None}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def https(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    cert, key = self_signed(tmp_path)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.clients = set()  # type: ignore[attr-defined]
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"https://localhost:{server.server_address[1]}", cert, server.clients  # type: ignore[attr-defined]
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("variable", ["REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE"])
def test_https_with_a_trusted_certificate_is_read_over_one_kept_alive_connection(https, monkeypatch,
                                                                                   variable) -> None:
    url, cert, clients = https
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(variable, str(cert))  # as requests and curl read them
    client = transport()
    try:
        first = client.get(f"{url}/jobs?page=1", kind="list", want_json=True)
        second = client.get(f"{url}/jobs?page=2", kind="list", want_json=True)
    finally:
        client.close()
    assert (first.data, second.data) == ({"path": "/jobs?page=1", "token": True},
                                         {"path": "/jobs?page=2", "token": True})
    assert len(clients) == 1


def test_https_with_a_certificate_nobody_vouches_for_is_refused_at_once(https, monkeypatch) -> None:
    url, _cert, _clients = https
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE"):
        monkeypatch.delenv(name, raising=False)
    client = transport(max_tries=4)
    try:
        with pytest.raises(ApiError, match="TLS verification failed") as info:
            client.get(f"{url}/jobs", kind="list", want_json=True)
        with pytest.raises(ApiError, match="TLS verification failed") as refused:
            client.get(f"{url}/j/result.zip?X-Amz-Signature=SIG-SECRET", kind="storage")
    finally:
        client.close()
    assert client.stats.snapshot()["retries"] == 0
    assert "SIG-SECRET" not in str(refused.value) and f"{url}/j/result.zip" in str(refused.value)
    assert "tttttttttttt" not in str(info.value)
