"""Plain HTTP helpers for the tests of the local OQTOPUS Cloud (tests/ is on sys.path under pytest)."""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

import requests

from oqtopus_data.testing import FakeCloud

TOKEN = "test-token"


def api(cloud: FakeCloud, path: str, token: str | None = TOKEN, **params: Any) -> requests.Response:
    """GET `path` from the cloud's API with the token (None: without one)."""
    headers = {"q-api-token": token} if token is not None else {}
    return requests.get(f"{cloud.url}{path}", headers=headers, params=params, timeout=10)


def listing(cloud: FakeCloud, **params: Any) -> list[dict]:
    """One GET /jobs page, which must answer 200."""
    response = api(cloud, "/jobs", **params)
    assert response.status_code == 200, response.text
    return response.json()


def listed_ids(cloud: FakeCloud, **params: Any) -> list[str]:
    """The job ids of one GET /jobs page."""
    return [job["job_id"] for job in listing(cloud, **params)]


def walk(cloud: FakeCloud, size: int = 100, **params: Any) -> list[str]:
    """Job ids of every page until an empty one (server API: `[]` past the end)."""
    out, page = [], 1
    while ids := listed_ids(cloud, page=page, size=size, **params):
        out += ids
        page += 1
    return out


def unzip(content: bytes) -> dict[str, bytes]:
    """The entries of a zip archive by name."""
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def resolve(served: dict) -> dict:
    """A served job with every presigned job_info URL replaced by its archive's decoded content."""
    info = {}
    for key, value in served["job_info"].items():
        if not (isinstance(value, str) and value.startswith("http")):
            info[key] = value
            continue
        response = requests.get(value, timeout=10)
        assert response.status_code == 200, (key, response.text)
        entries = unzip(response.content)
        name = next(iter(entries))
        text = entries[name].decode()
        info[key] = json.loads(text) if name.endswith(".json") else text
    return {**served, "job_info": info}


def first(cloud: FakeCloud, *, job_type: str | None = None, status: str = "succeeded") -> str:
    """The first job (listing order) of that type and status."""
    return next(j for j in cloud.history.job_ids() if cloud.history.status(j) == status and (
        job_type is None or cloud.history.job(j)["job_type"] == job_type))
