"""No traceback reaches a user from any command (issue 12, item 9 of the proof): every command against bad
inputs, a hostile server, damaged datasets, missing paths and bad options ends with one of the documented exit
statuses and without a traceback or an "internal error"."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from datetime import UTC, datetime

import pytest
from click.testing import CliRunner
from conftest import result
from hostile import Hostile, gzip_bomb, job, nested, payload, raw, status

from oqtopus_data import flatten, write_dataset
from oqtopus_data.cli import export_command, main
from oqtopus_data.dataset.dataset import Dataset

pytest_plugins = ["cli_env"]  # the `env` fixture
AT = datetime(2025, 6, 1, tzinfo=UTC)


def check(command, args, statuses, stdin=None):
    """Run a command as a user would (CliRunner catching everything) and check how it ended."""
    done = CliRunner().invoke(command, [str(a) for a in args], input=stdin)
    if not isinstance(done.exception, SystemExit | type(None)):
        raise AssertionError(f"{args}: {done.exception!r} escaped") from done.exception
    assert "Traceback" not in done.output and "internal error" not in done.output, (args, done.output)
    assert done.exit_code in statuses, (args, done.exit_code, done.output)
    return done


# ---- a hostile server ---------------------------------------------------------------------------------------------
def _server(server, jobs, me=None, devices=None):
    server.on("/users/me", me or payload({"id": "u-1"}))
    server.on("/devices", devices or payload([]))
    server.on("/jobs", *jobs)


SERVERS = {
    "refused credentials": lambda s: s.on("/users/me", status(401)),
    "no such api": lambda s: _server(s, [status(404)], me=status(404)),
    "a listing that is not a list": lambda s: _server(s, [payload({"not": "a list"})]),
    "JSON nested 200,000 deep": lambda s: _server(s, [raw(nested(200_000), content_type="application/json")]),
    "a gzip bomb": lambda s: _server(s, [gzip_bomb(200 * 2**20)]),
    "jobs that are not objects": lambda s: _server(s, [payload([42, "x", None, {"job_id": 5}]), payload([])]),
    "a malformed archive URL": lambda s: _server(s, [payload([job("j1", {"result": "http://[::1/x"})]), payload([])]),
    "a lone surrogate in an id": lambda s: _server(s, [raw(
        b'[{"job_id": "a\\udc00b", "job_type": "sampling", "status": "succeeded", "shots": 1}]',
        content_type="application/json"), payload([])]),
    "devices that are not a list": lambda s: _server(s, [payload([])], devices=payload("x")),
    "a huge count": lambda s: _server(s, [payload([job("j2", {"result": {"sampling": {"counts": {"0": 2**70}}}})]),
                                          payload([])]),
}


@pytest.mark.parametrize("scenario", sorted(SERVERS))
def test_export_against_a_hostile_server(tmp_path, env, scenario):
    with Hostile() as server:
        SERVERS[scenario](server)
        env.setenv("OQTOPUS_URL", server.url)
        env.setenv("OQTOPUS_API_TOKEN", "tok-hostile-123456")
        check(export_command, [tmp_path / "out"], {1, 2})
        check(export_command, ["--sse-logs", "--device", "SVSim", tmp_path / "out2"], {1, 2})


# ---- damaged datasets ---------------------------------------------------------------------------------------------
def _manifest(out):
    return sorted((out / "_oqtopus" / "manifests").iterdir())[-1]


def _rewrite(out, change):
    path = _manifest(out)
    body = json.loads(path.read_text())
    change(body)
    path.write_text(json.dumps(body))


def _damage(out, kind):
    entry = Dataset(out).latest().entries("counts")[0]
    if kind == "lost data file":
        (out / entry.path).unlink()
    elif kind == "data file of garbage":
        (out / entry.path).write_bytes(b"PAR1 not really" * 10)
    elif kind == "manifests of garbage":
        for path in _manifest(out).parent.iterdir():
            path.write_text("{")
    elif kind == "a planted ../ path":
        _rewrite(out, lambda b: b["tables"]["jobs"][0].update(path="jobs/../../../../etc/passwd"))
    elif kind == "a newer schema":
        _rewrite(out, lambda b: b.update(schema_version=99))
    elif kind == "state of a newer version":
        _rewrite(out, lambda b: b["state"].update(state_version=99))
    elif kind == "a state that is not an object":
        _rewrite(out, lambda b: b.update(state=[1, 2]))


DAMAGE = ["intact", "lost data file", "data file of garbage", "manifests of garbage", "a planted ../ path",
          "a newer schema", "state of a newer version", "a state that is not an object"]


@pytest.fixture
def dataset(tmp_path):
    out = tmp_path / "ds"
    write_dataset(flatten([result("sampling_current"), result("estimation_current")], exported_at=AT), out)
    return out


def reading_commands(location, tmp_path):
    views = tmp_path / "views.duckdb"
    return [
        (main, ["info", location]),
        (main, ["sql", location, "SELECT count(*) FROM counts"]),
        (main, ["sql", location, "SELECT * FROM jobs", "--format", "csv"]),
        (main, ["report", location, tmp_path / "r.html"]),
        (main, ["ddl", location, "--engine", "duckdb"]),
        (main, ["duckdb", location, views]),
        (main, ["duckdb", location, views, "--check"]),
        (export_command, ["--compact", location]),
    ]


@pytest.mark.parametrize("kind", DAMAGE)
def test_every_reading_command_on_a_damaged_dataset(dataset, tmp_path, kind):
    _damage(dataset, kind)
    for command, args in reading_commands(dataset, tmp_path):
        check(command, args, {0} if kind == "intact" else {0, 1, 2})


@pytest.mark.parametrize("where", ["missing", "a file", "an empty directory"])
def test_every_reading_command_on_a_location_without_an_export(tmp_path, where):
    location = tmp_path / "here"
    if where == "a file":
        location.write_text("x")
    elif where == "an empty directory":
        location.mkdir()
    for command, args in reading_commands(location, tmp_path):
        check(command, args, {2} if args[-1] != "--check" else {1, 2})


# ---- bad options ----------------------------------------------------------------------------------------------------
def busy_port():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    return sock


def test_bad_options_are_usage_errors(dataset, tmp_path, env):
    with busy_port() as sock:
        cases = [
            (main, ["info"]), (main, ["info", dataset, "--storage-option", "novalue"]),
            (main, ["sql", dataset, "SELECT 1", "--format", "xml"]), (main, ["sql", dataset, "SELECT 1", "--format",
                                                                               "parquet"]),
            (main, ["report", dataset]), (main, ["report", dataset, tmp_path]),
            (main, ["report", dataset, tmp_path / "r.html", "--since", "2025-02-01", "--until", "2025-01-01"]),
            (main, ["ddl", dataset, "--engine", "oracle"]), (main, ["nope"]),
            (main, ["fake-cloud", "--port", "70000"]), (main, ["fake-cloud", "--port", sock.getsockname()[1]]),
            (export_command, ["--since", "yesterday", tmp_path / "o"]),
            (export_command, ["--since", "0001-01-01T00:00:00+01:00", tmp_path / "o"]),
            (export_command, ["--page-size", "0", tmp_path / "o"]), (export_command, ["--workers", "0", tmp_path]),
            (export_command, ["--max-submit-delay", "99999999999999999999d", tmp_path / "o"]),
            (export_command, ["--max-submit-delay", "soon", tmp_path / "o"]),
            (export_command, ["--status", "registered", tmp_path / "o"]),
            (export_command, [tmp_path / "o"]),  # no credentials
            (export_command, ["--profile", "nosuch", tmp_path / "o"]),
            (export_command, ["--duckdb", tmp_path, tmp_path / "o"]),
        ]
        for command, args in cases:
            check(command, args, {2})
    assert not (tmp_path / "o").exists()


def test_help_and_version_of_every_command(env):
    check(export_command, ["--help"], {0})
    check(export_command, ["--version"], {0})
    check(main, ["--version"], {0})
    for name in main.commands:
        assert check(main, [name, "--help"], {0}).output.startswith(f"Usage: oqtopus-data {name} ")
    assert check(main, ["schema"], {0}).output.startswith("#")


def test_a_damaged_dataset_as_a_real_process(dataset):
    _damage(dataset, "data file of garbage")
    done = subprocess.run([sys.executable, "-m", "oqtopus_data.cli", "info", str(dataset)], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.startswith("oqtopus-data: cannot read the export: ")
