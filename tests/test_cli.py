"""The commands, through click's CliRunner and once as real subprocesses against the local cloud."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import click
import pytest
import requests
from cli_support import EXPORT_COMMAND
from click.testing import CliRunner
from groundtruth import assert_matches_ground_truth

from oqtopus_data.cli import export_command, main
from oqtopus_data.testing import FakeCloud, Faults

SECRET = "tok-SECRET-7f3a9c-do-not-leak"


@pytest.fixture
def env(tmp_path, monkeypatch):
    """An environment with no OQTOPUS settings and an empty home, so nothing leaks in from the machine."""
    for name in ("OQTOPUS_URL", "OQTOPUS_BASE_URL", "OQTOPUS_API_TOKEN", "OQTOPUS_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "home" / ".config"))
    return monkeypatch


def invoke(command, args):
    return CliRunner().invoke(command, [str(a) for a in args], catch_exceptions=False)


def test_demo_exports_then_continues_incrementally(tmp_path, env):
    out = tmp_path / "demo"
    first = invoke(export_command, ["--demo", "--demo-jobs", "120", out])
    assert first.exit_code == 0, first.output
    assert first.output.startswith(f"export to {out}: commit 1, ")
    assert "jobs by type and status:" in first.output and "rows written: counts" in first.output
    assert "Next: oqtopus-data sql" in first.output
    assert "device snapshots once a week over the demo history, as `oqtopus-export --devices-only` from cron " \
           "records them, are in commit 2" in first.output  # a first demo export records a calibration history
    info = invoke(main, ["info", out])
    assert info.exit_code == 0 and "by job_type: sampling" in info.output and "errors: 0" in info.output
    second = invoke(export_command, ["--demo", "--demo-jobs", "120", out])  # the same demo server, continued
    assert second.exit_code == 0, second.output
    assert second.output.startswith(f"incremental export to {out}: commit 3, ")


def test_missing_url_is_one_sentence_exit_2_and_nothing_written(tmp_path, env):
    result = invoke(export_command, [tmp_path / "out"])
    assert result.exit_code == 2
    assert result.output.count("\n") == 1 and "OQTOPUS_URL" in result.output
    assert not (tmp_path / "out").exists()


def test_missing_token_says_what_to_set(tmp_path, env):
    env.setenv("OQTOPUS_URL", "http://127.0.0.1:9")
    result = invoke(export_command, [tmp_path / "out"])
    assert result.exit_code == 2 and "OQTOPUS_API_TOKEN" in result.output
    assert not (tmp_path / "out").exists()


def test_a_refused_token_is_exit_2_with_nothing_written_and_no_token_shown(tmp_path, env):
    with FakeCloud(n_jobs=10) as cloud:
        env.setenv("OQTOPUS_URL", cloud.url)
        env.setenv("OQTOPUS_API_TOKEN", SECRET)
        result = invoke(export_command, [tmp_path / "out"])
    assert result.exit_code == 2
    assert "OQTOPUS_API_TOKEN" in result.output and SECRET not in result.output
    assert not (tmp_path / "out").exists()


def test_profile_file_supplies_url_and_token(tmp_path, env):
    with FakeCloud(n_jobs=30, token=SECRET) as cloud:
        config = tmp_path / "home" / ".config" / "oqtopus" / "config.ini"
        config.parent.mkdir(parents=True)
        config.write_text(f"[lab]\nurl = {cloud.url}\napi_token = {SECRET}\n")
        result = invoke(export_command, ["--profile", "lab", "-q", tmp_path / "out"])
        assert result.exit_code == 0, result.output
        assert result.output == ""
        assert_matches_ground_truth(tmp_path / "out", cloud)


def test_since_after_until_is_a_usage_error(tmp_path, env):
    result = CliRunner().invoke(export_command, ["--since", "2024-05-01", "--until", "2024-04-01", str(tmp_path)])
    assert result.exit_code == 2 and "--since is after --until" in result.output


def test_a_bad_date_names_the_accepted_forms(tmp_path, env):
    result = CliRunner().invoke(export_command, ["--since", "last tuesday", str(tmp_path)])
    assert result.exit_code == 2 and "2024-01-31T12:00:00Z" in result.output


def test_until_a_bare_date_includes_that_whole_day(tmp_path, env):
    with FakeCloud(n_jobs=200, seed=4) as cloud:
        env.setenv("OQTOPUS_URL", cloud.url)
        env.setenv("OQTOPUS_API_TOKEN", cloud.token)
        days = sorted({cloud.history.job(j).get("submitted_at", "")[:10] for j in cloud.history.job_ids()} - {""})
        since, until = days[5], days[10]
        assert invoke(export_command, ["-q", "--since", since, "--until", until, tmp_path / "out"]).exit_code == 0
        from oqtopus_data import read

        got = read(tmp_path / "out", "jobs")["submitted_at"].dt.strftime("%Y-%m-%d").unique().sort().to_list()
        assert got[0] == since and got[-1] == until


def test_every_command_and_option_has_help_text_and_examples():
    commands = [export_command, *main.commands.values()]
    for command in commands:
        assert command.help, command.name
        assert "\n" not in command.help.split("\n\n")[0], f"{command.name}: the first line is its summary"
        assert "Example" in (command.help or "") + (command.epilog or ""), command.name
        for param in command.params:
            if isinstance(param, click.Option):
                assert param.help, f"{command.name} {param.opts}"
    assert "Examples:" in CliRunner().invoke(export_command, ["--help"]).output


def test_sql_prints_an_aligned_table_and_duckdb_errors_without_traceback(tmp_path, env):
    out = tmp_path / "demo"
    invoke(export_command, ["--demo", "--demo-jobs", "60", "-q", out])
    result = invoke(main, ["sql", out, "SELECT job_type, count(*) AS n FROM jobs GROUP BY 1 ORDER BY 1"])
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert lines[0].split() == ["job_type", "n"] and lines[-1].endswith("rows)")
    bad = CliRunner().invoke(main, ["sql", str(out), "SELECT nope FROM jobs"])
    assert bad.exit_code == 1 and "Binder Error" in bad.output and "Traceback" not in bad.output
    csv_out = tmp_path / "x.csv"
    assert invoke(main, ["sql", out, "SELECT 1 AS a", "--format", "csv", "--output", csv_out]).exit_code == 0
    assert csv_out.read_text() == '"a"\n1\n'


def test_compact_merges_files_of_many_runs_without_changing_results(tmp_path, env):
    with FakeCloud(n_jobs=80, seed=6) as cloud:
        env.setenv("OQTOPUS_URL", cloud.url)
        env.setenv("OQTOPUS_API_TOKEN", cloud.token)
        out = tmp_path / "out"
        for _ in range(4):
            cloud.add_jobs(10)
            assert invoke(export_command, ["-q", out]).exit_code in (0, 1)
        from oqtopus_data import connect

        before = connect(out).execute("SELECT job_id, bitstring, count FROM counts ORDER BY ALL").fetchall()
        result = invoke(export_command, ["--compact", out])
        assert result.exit_code == 0 and " data files -> " in result.output
        assert connect(out).execute("SELECT job_id, bitstring, count FROM counts ORDER BY ALL").fetchall() == before
        assert_matches_ground_truth(out, cloud)


def _files_contain(root: Path, needle: bytes) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and needle in p.read_bytes()]


def test_real_command_exports_and_never_writes_or_prints_the_token(tmp_path):
    faults = Faults(error_every=13, rate_limit_every=17, expire_first_download=True)
    with FakeCloud(n_jobs=150, seed=8, token=SECRET, faults=faults) as cloud:
        victim = next(j for j in cloud.history.job_ids() if cloud.history.status(j) == "succeeded")
        cloud.faults.malformed[victim] = "invalid_json"
        env = {**os.environ, "OQTOPUS_URL": cloud.url, "OQTOPUS_API_TOKEN": SECRET, "HOME": str(tmp_path)}
        out = tmp_path / "out"
        proc = subprocess.run(
            [*EXPORT_COMMAND, str(out), "--sse-logs",
             "--duckdb", str(tmp_path / "v.db")],
            env=env, capture_output=True, timeout=300,
        )
        assert proc.returncode == 1, proc.stderr.decode()  # the malformed job failed, the rest exported
        assert victim.encode() in proc.stderr
        assert_matches_ground_truth(out, cloud, exclude=[victim])
    assert SECRET.encode() not in proc.stdout + proc.stderr
    assert _files_contain(tmp_path, SECRET.encode()) == []
    assert list((out / "sse_logs").glob("*.zip"))


def test_a_second_export_into_the_same_directory_stops_at_once(tmp_path, env):
    with FakeCloud(n_jobs=300, seed=9, faults=Faults(latency=0.01)) as cloud:
        run_env = {**os.environ, "OQTOPUS_URL": cloud.url, "OQTOPUS_API_TOKEN": cloud.token}
        out = tmp_path / "out"
        first = subprocess.Popen([*EXPORT_COMMAND, "-q", str(out)], env=run_env,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        lock = out / "_oqtopus" / "lock"
        deadline = time.monotonic() + 30
        while not (lock.exists() and lock.read_text()) and time.monotonic() < deadline:
            time.sleep(0.02)
        env.setenv("OQTOPUS_URL", cloud.url)
        env.setenv("OQTOPUS_API_TOKEN", cloud.token)
        started = time.monotonic()
        second = invoke(export_command, [out])
        assert time.monotonic() - started < 10
        assert second.exit_code == 2
        assert "another oqtopus-data export is writing to" in second.output and f"pid {first.pid}" in second.output
        assert first.wait(timeout=120) == 0
        assert_matches_ground_truth(out, cloud)


def test_a_full_disk_mid_export_is_a_clear_error_and_the_last_commit_survives(tmp_path, env):
    import errno

    with FakeCloud(n_jobs=60, seed=10) as cloud:
        env.setenv("OQTOPUS_URL", cloud.url)
        env.setenv("OQTOPUS_API_TOKEN", cloud.token)
        out = tmp_path / "out"
        assert invoke(export_command, ["-q", out]).exit_code == 0
        from oqtopus_data import connect

        before = connect(out).execute("SELECT job_id, status FROM jobs ORDER BY 1").fetchall()
        cloud.add_jobs(20)

        def no_space(fd):
            raise OSError(errno.ENOSPC, "No space left on device")

        env.setattr(os, "fsync", no_space)
        result = CliRunner().invoke(export_command, [str(out)])
        env.undo()
        assert result.exit_code == 1
        assert "No space left on device" in result.output and "holds its last commit" in result.output
        assert connect(out).execute("SELECT job_id, status FROM jobs ORDER BY 1").fetchall() == before


def test_fake_cloud_command_serves_an_export(tmp_path):
    server = subprocess.Popen([sys.executable, "-c", "from oqtopus_data.cli import main; main()", "fake-cloud",
                               "--jobs", "40", "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True)
    try:
        url = server.stdout.readline().strip().removeprefix("OQTOPUS_URL=")
        token = server.stdout.readline().strip().removeprefix("OQTOPUS_API_TOKEN=")
        assert url.startswith("http://127.0.0.1:")
        env = {**os.environ, "OQTOPUS_URL": url, "OQTOPUS_API_TOKEN": token, "HOME": str(tmp_path)}
        proc = subprocess.run([*EXPORT_COMMAND, str(tmp_path / "out")], env=env,
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        assert "jobs written" in proc.stdout
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_sql_reads_a_query_from_stdin_and_accepts_a_leading_comment(tmp_path, env):
    out = tmp_path / "demo"
    invoke(export_command, ["--demo", "--demo-jobs", "40", "-q", out])
    piped = CliRunner().invoke(main, ["sql", str(out), "-"], input="-- count them\nSELECT count(*) AS n FROM jobs\n")
    assert piped.exit_code == 0 and piped.output.splitlines()[0] == "n"
    inline = CliRunner().invoke(main, ["sql", str(out), "-- a comment\nSELECT 7 AS seven"])
    assert inline.exit_code == 0 and inline.output.splitlines()[2] == "7"


def test_report_and_ddl_commands(tmp_path, env):
    out = tmp_path / "demo"
    invoke(export_command, ["--demo", "--demo-jobs", "80", "-q", out])
    result = invoke(main, ["report", out, tmp_path / "r.html", "--device", "Kawasaki"])
    assert result.exit_code == 0 and result.output.startswith(f"wrote {tmp_path / 'r.html'}: ")
    assert "<svg" in (tmp_path / "r.html").read_text()
    missing = CliRunner().invoke(main, ["report", str(out), str(tmp_path / "no" / "r.html")])
    assert missing.exit_code == 2 and "does not exist" in missing.output
    ddl = invoke(main, ["ddl", out, "--engine", "spark"])
    assert ddl.exit_code == 0 and "PARTITIONED BY" in ddl.output and str(out) in ddl.output


@pytest.mark.parametrize(("flags", "size", "answer"), [((), 500, 500), (("--spec-api",), 500, 200)])
def test_fake_cloud_command_serves_the_real_server_or_the_specification(flags, size, answer):
    server = subprocess.Popen([sys.executable, "-c", "from oqtopus_data.cli import main; main()", "fake-cloud",
                               "--jobs", "60", "--bursts", "30", "--port", "0", *flags],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = server.stdout.readline().strip().removeprefix("OQTOPUS_URL=")
        token = server.stdout.readline().strip().removeprefix("OQTOPUS_API_TOKEN=")
        reply = requests.get(f"{url}/jobs", params={"size": size}, headers={"q-api-token": token}, timeout=10)
        assert reply.status_code == answer  # the server's code refuses pages above 100; the specification not
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_fake_cloud_command_refuses_bursts_bigger_than_the_history():
    result = CliRunner().invoke(main, ["fake-cloud", "--jobs", "10", "--bursts", "20"])
    assert result.exit_code == 2 and "more than --jobs 10" in result.output
