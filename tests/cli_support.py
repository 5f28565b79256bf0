"""Helpers of the command-line tests: CliRunner calls, the command as a real process, one-sentence errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from oqtopus_data.cli import export_command, main

#: `oqtopus-export` as a real process of this interpreter (for environments without the console script).
EXPORT_COMMAND = [sys.executable, "-c", "from oqtopus_data.cli import export_command; "
                  "export_command(prog_name='oqtopus-export')"]


def point_at(env: pytest.MonkeyPatch, cloud: Any) -> None:
    """Credentials of a local cloud in the environment."""
    env.setenv("OQTOPUS_URL", cloud.url)
    env.setenv("OQTOPUS_API_TOKEN", cloud.token)


def run_export(*args: Any) -> Result:
    """`oqtopus-export ARGS` through CliRunner; exceptions reach the test (there must be none)."""
    return CliRunner().invoke(export_command, [str(a) for a in args], catch_exceptions=False)


def run_data(*args: Any, stdin: str | None = None) -> Result:
    """`oqtopus-data ARGS` through CliRunner; exceptions reach the test (there must be none)."""
    return CliRunner().invoke(main, [str(a) for a in args], input=stdin, catch_exceptions=False)


def export_process(out: Path | str, *args: str, cloud: Any, **popen: Any) -> subprocess.Popen:
    """`oqtopus-export ARGS OUT` as a real process against a local cloud."""
    env = {**os.environ, "OQTOPUS_URL": cloud.url, "OQTOPUS_API_TOKEN": cloud.token, "NO_PROXY": "127.0.0.1"}
    return subprocess.Popen([*EXPORT_COMMAND, *args, str(out)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen)


def one_sentence(result: Result, program: str = "oqtopus-export") -> str:
    """The single stderr line of a failed command, without the program prefix (asserting there is one line)."""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"{program}: "), lines[0]
    assert "Traceback" not in result.output
    return lines[0].removeprefix(f"{program}: ")
