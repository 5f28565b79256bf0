"""Set-up errors of `oqtopus-export` (issue 12, items 11 and 12): each one sentence naming the cause and the fix,
exit status 2, nothing written, no "run again" (there is nothing to resume), and no waiting on retries."""

from __future__ import annotations

import errno
import pathlib
import socket
import time

import pytest
from cli_support import one_sentence, point_at, run_data, run_export
from groundtruth import assert_matches_ground_truth

from oqtopus_data.dataset.dataset import Dataset
from oqtopus_data.testing import FakeCloud, Faults

pytest_plugins = ["cli_env"]  # the `env` fixture
HANG_GUARD = 10.0  # seconds; the old behaviour retried silently for about 15 s before giving up
AGAIN = "run the same command again"


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def cloud():
    with FakeCloud(n_jobs=60, seed=21) as server:
        yield server


def exported(tmp_path, env, cloud, *flags):
    point_at(env, cloud)
    out = tmp_path / "out"
    result = run_export("-q", *flags, out)
    assert result.exit_code == 0, result.output
    return out


def refused(*args):
    started = time.monotonic()
    result = run_export(*args)
    assert time.monotonic() - started < HANG_GUARD
    assert result.exit_code == 2, result.output
    message = one_sentence(result)
    assert AGAIN not in message
    return message


def test_a_refused_connection_names_the_address_and_the_flag(tmp_path, env):
    port = closed_port()
    env.setenv("OQTOPUS_URL", f"http://127.0.0.1:{port}")
    env.setenv("OQTOPUS_API_TOKEN", "token-1234567890")
    message = refused(tmp_path / "out")
    assert message == f"cannot connect to 127.0.0.1:{port} (connection refused): check --url / OQTOPUS_URL."
    assert not (tmp_path / "out").exists()


def test_an_unknown_host_names_the_host_and_the_flag(tmp_path, env):
    real = socket.getaddrinfo

    def resolve(host, *args, **kwargs):
        if host == "oqtopus.invalid":  # answered here: a test never asks a real resolver
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real(host, *args, **kwargs)

    env.setattr(socket, "getaddrinfo", resolve)
    env.setenv("OQTOPUS_API_TOKEN", "token-1234567890")
    message = refused("--url", "https://oqtopus.invalid/api", tmp_path / "out")
    assert message == "cannot connect to oqtopus.invalid:443 (unknown host): check --url / OQTOPUS_URL."


def test_a_url_that_is_not_the_user_api_says_so(tmp_path, env, cloud):
    env.setenv("OQTOPUS_API_TOKEN", cloud.token)
    message = refused("--url", f"{cloud.url}/v9", tmp_path / "out")
    assert message == (f"{cloud.url}/v9/jobs answered 404: the URL is not an OQTOPUS Cloud user API: "
                       "check --url / OQTOPUS_URL.")
    assert not (tmp_path / "out").exists()


def test_a_malformed_url_and_a_token_that_cannot_be_sent_are_one_sentence(tmp_path, env):
    env.setenv("OQTOPUS_API_TOKEN", "token-1234567890")
    assert "malformed" in refused("--url", "http://[::1/api", tmp_path / "out")
    env.setenv("OQTOPUS_API_TOKEN", "tökén-1234567890")
    assert "cannot be sent in an HTTP header" in refused("--url", "http://127.0.0.1:9", tmp_path / "out")


def test_out_dir_a_file_is_refused_and_left_alone(tmp_path, env, cloud):
    point_at(env, cloud)
    target = tmp_path / "notes.txt"
    target.write_text("mine")
    assert "is not a directory" in refused(target)
    assert target.read_text() == "mine"


def test_a_directory_holding_other_files_is_refused_and_left_alone(tmp_path, env, cloud):
    point_at(env, cloud)
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "cat.jpg").write_bytes(b"meow")
    message = refused(tmp_path / "photos")
    assert ("is not empty and holds no oqtopus-data export (it holds cat.jpg): choose an empty or new location"
            in message)
    assert [p.name for p in (tmp_path / "photos").iterdir()] == ["cat.jpg"]


def test_a_directory_that_cannot_be_written_is_a_plain_sentence(tmp_path, env, cloud):
    point_at(env, cloud)
    out = tmp_path / "readonly" / "out"
    real = pathlib.Path.mkdir

    def mkdir(self, *args, **kwargs):  # the tests run as root, which a chmod would not stop
        if str(self).startswith(str(tmp_path / "readonly")):
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        return real(self, *args, **kwargs)

    env.setattr(pathlib.Path, "mkdir", mkdir)
    message = refused(out)
    assert message.endswith(": Permission denied: export into a directory you can write to")
    assert "Errno" not in message and "OSError" not in message


def test_another_selection_is_refused_naming_both_as_flags(tmp_path, env, cloud):
    out = exported(tmp_path, env, cloud, "--device", "Kawasaki")
    versions = Dataset(out).manifest_versions()
    message = refused("--device", "SVSim", "--status", "succeeded", out)
    assert message == ("this directory holds jobs selected by --device Kawasaki; this run selects --status "
                       "succeeded --device SVSim: use the same options, another directory, or --full-refresh")
    assert Dataset(out).manifest_versions() == versions


def test_another_server_is_refused_unless_full_refresh(tmp_path, env, cloud):
    out = exported(tmp_path, env, cloud)
    with FakeCloud(n_jobs=20, seed=22) as other:
        point_at(env, other)
        message = refused(out)
        assert message == (f"this directory holds another export (it was exported from {cloud.url}, not "
                           f"{other.url}): use another directory, or --full-refresh to replace it")
        assert run_export("-q", "--full-refresh", out).exit_code == 0
        assert_matches_ground_truth(out, other)


def test_a_lost_data_file_suggests_repair_which_fetches_it_again(tmp_path, env, cloud):
    out = exported(tmp_path, env, cloud)
    (lost,) = Dataset(out).latest().entries("counts")[:1]
    (out / lost.path).unlink()
    message = refused(out)
    assert f"data file(s) of commit 1 are missing ({lost.path})" in message
    assert "`oqtopus-export --repair`" in message
    repaired = run_export("--repair", out)
    assert repaired.exit_code == 0, repaired.output
    assert "repairing: 1 lost data file(s)" in repaired.stderr
    assert_matches_ground_truth(out, cloud)


def test_unreadable_manifests_are_named_and_full_refresh_rebuilds(tmp_path, env, cloud):
    out = exported(tmp_path, env, cloud)
    for manifest in (out / "_oqtopus" / "manifests").iterdir():
        manifest.write_text("{")
    message = refused(out)
    assert "holds no readable manifest" in message and "--full-refresh" in message
    assert run_export("-q", "--full-refresh", out).exit_code == 0
    assert_matches_ground_truth(out, cloud)


def test_a_typo_in_device_suggests_the_name_and_writes_nothing(tmp_path, env, cloud):
    point_at(env, cloud)
    message = refused("--device", "kawasaki", tmp_path / "out")
    assert message.startswith("--device kawasaki: no such device; did you mean Kawasaki? (devices: ")
    assert not (tmp_path / "out").exists()


def test_an_unknown_storage_option_is_a_usage_error_for_a_local_directory(tmp_path, env, cloud):
    point_at(env, cloud)
    message = refused("--storage-option", "tyop=1", tmp_path / "out")
    assert message.startswith("unknown storage option 'tyop' for a local directory")
    assert not (tmp_path / "out").exists()
    assert run_data("info", tmp_path, "--storage-option", "tyop=1").exit_code == 2


def test_notices_of_the_run_go_to_stderr(tmp_path, env):
    with FakeCloud(n_jobs=30, seed=23, faults=Faults(page_size_cap=7)) as capped:
        point_at(env, capped)
        result = run_export("--page-size", "20", tmp_path / "out")
        quiet = run_export("-q", "--full-refresh", "--page-size", "20", tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert "oqtopus-export: GET /jobs returns at most 7 jobs a page; using page size 7\n" in result.stderr
    assert "GET /jobs returns" not in result.stdout
    assert quiet.exit_code == 0 and quiet.output == ""
