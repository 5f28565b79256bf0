"""The DuckDB file of views (`oqtopus-export --duckdb FILE`, `oqtopus-data duckdb`): it shows one commit, every run
given it rewrites it, and one left behind by a run without it is named as stale and refreshed (issue 12, item 14)."""

from __future__ import annotations

import duckdb
import pytest
from cli_support import one_sentence, point_at, run_data, run_export

from oqtopus_data import connect
from oqtopus_data.testing import FakeCloud

pytest_plugins = ["cli_env"]  # the `env` fixture
QUERY = "SELECT job_id, status FROM jobs ORDER BY job_id"


@pytest.fixture
def cloud():
    with FakeCloud(n_jobs=60, seed=41) as server:
        yield server


def through_file(views):
    con = duckdb.connect(str(views), read_only=True)
    try:
        return con.execute(QUERY).fetchall()
    finally:
        con.close()


def test_every_run_given_the_file_leaves_it_showing_the_newest_commit(tmp_path, env, cloud):
    point_at(env, cloud)
    out, views = tmp_path / "out", tmp_path / "views.duckdb"
    for _ in range(2):  # the second run replaces the files of the jobs not yet terminal
        assert run_export("-q", "--duckdb", views, out).exit_code == 0
        assert through_file(views) == connect(out).execute(QUERY).fetchall()
        assert run_data("duckdb", out, views, "--check").exit_code == 0


def test_a_file_left_behind_by_a_run_without_it_is_named_stale_then_refreshed(tmp_path, env, cloud):
    point_at(env, cloud)
    out, views = tmp_path / "out", tmp_path / "views.duckdb"
    assert run_export("-q", "--duckdb", views, out).exit_code == 0
    assert run_export("-q", out).exit_code == 0  # commit 2 replaces files the views name
    with pytest.raises(duckdb.IOException):
        through_file(views)
    stale = run_data("duckdb", out, views, "--check")
    assert stale.exit_code == 1
    assert one_sentence(stale, "oqtopus-data") == (
        f"{views} shows commit 1 of {out}, which is at commit 2 now: its views miss the newer jobs and may name "
        f"files that are gone: refresh it with `oqtopus-data duckdb {out} {views}`")
    refreshed = run_data("duckdb", out, views)
    assert refreshed.stdout == f"wrote {views}: the views over commit 2 of {out}\n"
    assert through_file(views) == connect(out).execute(QUERY).fetchall()


def test_a_views_file_needs_a_local_export_and_an_existing_directory(tmp_path, env):
    remote = run_export("--duckdb", tmp_path / "v.duckdb", "s3://bucket/prefix")
    assert remote.exit_code == 2 and "needs a local export directory" in remote.output
    nowhere = run_data("duckdb", tmp_path, tmp_path / "no" / "v.duckdb")
    assert nowhere.exit_code == 2 and "does not exist" in nowhere.output and "Traceback" not in nowhere.output
