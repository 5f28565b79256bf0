"""Shared fixtures: the payload corpus (tests/fixtures/payloads), result objects built from it, and a hostile
server on 127.0.0.1 (tests/hostile.py) that the client reaches without a proxy."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hostile import Hostile

from oqtopus_data.results.objects import result_from_raw

PAYLOADS = Path(__file__).parent / "fixtures" / "payloads"


def load_payload(name: str) -> dict[str, Any]:
    """One payload of the corpus by file stem."""
    return json.loads((PAYLOADS / f"{name}.json").read_text(encoding="utf-8"))


def result(name: str) -> Any:
    """Our result object for one payload of the corpus."""
    return result_from_raw(load_payload(name))


@pytest.fixture
def good_results() -> list[Any]:
    """Results of every corpus payload that builds without error (all four job types, both forms)."""
    out = []
    for path in sorted(PAYLOADS.glob("*.json")):
        try:
            out.append(result_from_raw(json.loads(path.read_text(encoding="utf-8"))))
        except ValueError:
            continue
    return out


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[Hostile]:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    with Hostile() as hostile:
        yield hostile
