"""Redirects followed by the transport from libcurl's resolved target, against two real servers on 127.0.0.1 (the
second named `localhost`: another host by name): the token goes only to the host first asked."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from hostile import Hostile, payload, raw

from oqtopus_data.client.api import ApiClient
from oqtopus_data.client.config import Credentials
from oqtopus_data.client.http import MAX_REDIRECTS, _same_origin
from oqtopus_data.errors import ApiError

TOKEN = "tok-SECRET-123"
JOB = {"job_id": "j", "status": "succeeded"}


def moved(location: str, code: int = 302) -> Any:
    return raw(b"moved", code, "text/plain", Location=location)


@pytest.fixture
def two(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Hostile, Hostile, str]]:
    """Server A (http://127.0.0.1:PORT) and server B, reached as http://localhost:PORT."""
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    with Hostile() as first, Hostile() as second:
        yield first, second, second.url.replace("127.0.0.1", "localhost")


def client(url: str, **options: Any) -> ApiClient:
    options.setdefault("sleep", lambda seconds: None)
    return ApiClient(Credentials(url, TOKEN, None, 5.0, "test"), **options)


@pytest.mark.parametrize("code", [301, 302, 303, 307, 308])
def test_a_redirect_on_the_same_host_keeps_the_token(two, code: int) -> None:
    first, _second, _elsewhere = two
    first.on("/jobs/j", moved(f"{first.url}/v2/jobs/j", code))
    first.on("/v2/jobs/j", payload(JOB))
    with client(first.url) as api:
        assert api.get_job("j") == JOB
        assert api.stats.snapshot()["requests"]["job"] == 1  # one attempt
    assert first.headers["/v2/jobs/j"]["q-api-token"] == TOKEN


def test_a_relative_location_is_resolved_against_the_url_asked(two) -> None:
    first, _second, _elsewhere = two
    first.on("/api/jobs/j", moved("../../other/jobs/j?x=1"))
    first.on("/other/jobs/j", payload(JOB))
    with client(f"{first.url}/api") as api:
        assert api.get_job("j") == JOB
    assert first.hits["/other/jobs/j"] == 1
    assert first.headers["/other/jobs/j"]["q-api-token"] == TOKEN


def test_a_redirect_to_another_host_drops_the_token_for_good(two) -> None:
    first, second, elsewhere = two
    first.on("/jobs/j", moved(f"{elsewhere}/jobs/j", 307))
    second.on("/jobs/j", moved(f"{first.url}/back/jobs/j"))  # and back: the token stays dropped
    first.on("/back/jobs/j", payload(JOB))
    with client(first.url) as api:
        assert api.get_job("j") == JOB
    assert first.headers["/jobs/j"]["q-api-token"] == TOKEN
    assert "q-api-token" not in second.headers["/jobs/j"]
    assert "q-api-token" not in first.headers["/back/jobs/j"]


def test_a_redirect_loop_gives_up_with_a_clear_error_naming_the_endpoint(two) -> None:
    first, _second, _elsewhere = two
    first.on("/jobs/j", moved(f"{first.url}/jobs/j?X-Amz-Signature=SIG-SECRET"))
    with client(first.url) as api, pytest.raises(ApiError) as info:
        api.get_job("j")
    assert str(info.value) == (f"GET {first.url}/jobs/j: gave up after {MAX_REDIRECTS} redirects "
                               f"(the last to {first.url}/jobs/j)")
    assert first.hits["/jobs/j"] == MAX_REDIRECTS + 1
    assert api.stats.snapshot()["requests"]["job"] == 1  # not retried


def test_a_presigned_download_follows_a_redirect_without_a_token(two) -> None:
    first, second, elsewhere = two
    first.on("/storage/a.zip", moved(f"{elsewhere}/real/a.zip?X-Amz-Signature=S"))
    second.on("/real/a.zip", raw(b"PK-bytes"))
    with client(first.url) as api:
        assert bytes(api.download(first.storage_url("/storage/a.zip"))) == b"PK-bytes"
    assert "q-api-token" not in second.headers["/real/a.zip"]


@pytest.mark.parametrize(("target", "same"), [
    ("http://api.example.com/x", True),
    ("http://api.example.com:80/x", True),
    ("https://api.example.com/x", True),  # the upgrade requests allowed
    ("https://api.example.com:8443/x", False),
    ("http://api.example.com:8080/x", False),
    ("http://other.example.com/x", False),
])
def test_the_token_follows_only_the_same_origin_or_its_https_upgrade(target: str, same: bool) -> None:
    assert _same_origin(urlsplit("http://api.example.com/v1"), urlsplit(target)) is same
    assert _same_origin(urlsplit("https://api.example.com/v1"), urlsplit("http://api.example.com/x")) is False
