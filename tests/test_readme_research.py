"""The README's "Questions in one line" block runs as printed on the demo export, and says true things."""

from __future__ import annotations

import contextlib
import io
import os
import re
from pathlib import Path

import pytest
from demo_export import build_demo_export

README = Path(__file__).resolve().parent.parent / "README.md"


def block() -> str:
    text = README.read_text(encoding="utf-8")
    section = text[text.index("### Questions in one line"):]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_the_readme_questions_run_on_the_demo_export(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    build_demo_export(tmp_path / "demo-out", n_jobs=120)
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    shown = io.StringIO()
    with contextlib.redirect_stdout(shown):
        exec(compile(block(), str(README), "exec"), scope)  # noqa: S102 - the README's own code
    assert scope["r"].get_counts() == scope["od"].counts("demo-out", scope["job_id"]) != {}
    assert "circuit_id" in shown.getvalue() and "usage_monthly" not in shown.getvalue()
    used = scope["con"].execute("SELECT count(*) FROM job_qubits WHERE job_id = ?", [scope["job_id"]]).fetchone()[0]
    assert used > 0
    assert os.getcwd() == str(tmp_path)
