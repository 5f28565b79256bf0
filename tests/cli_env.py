"""The `env` fixture of the command-line tests (a plugin: `pytest_plugins = ["cli_env"]`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

OQTOPUS_VARIABLES = ("OQTOPUS_URL", "OQTOPUS_BASE_URL", "OQTOPUS_API_TOKEN", "OQTOPUS_PROXY")


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """An environment with no OQTOPUS settings and an empty home, so nothing leaks in from the machine."""
    for name in OQTOPUS_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "home" / ".config"))
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    yield monkeypatch
