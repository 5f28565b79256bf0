"""Exactly once, whatever one answer says: a 404, another job's body, a clock step, and the reconcile (--verify)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from importlib import import_module

import pytest
from cli_support import point_at, run_export

from oqtopus_data import connect
from oqtopus_data.client.api import ApiClient
from oqtopus_data.client.config import Credentials
from oqtopus_data.dataset.dataset import Dataset
from oqtopus_data.dataset.state import STATE_VERSION, SyncState
from oqtopus_data.enums import TERMINAL
from oqtopus_data.run.export import ExportOptions, export
from oqtopus_data.testing import FakeCloud
from oqtopus_data.testing.faults import foreign_body
from oqtopus_data.testing.server import NOT_FOUND

bounds_module = import_module("oqtopus_data.run.bounds")  # where the run's clock is read


def run(cloud, out, **options):
    with ApiClient(Credentials(url=cloud.url, token=cloud.token), workers=8, max_tries=2, backoff=0.01) as api:
        return export(api, out, ExportOptions(page_size=100, **options))


def rows(out, job_id: str) -> list[tuple]:
    return connect(out).execute("SELECT status FROM jobs WHERE job_id = ?", [job_id]).fetchall()


def state(out) -> dict:
    return Dataset(out).latest().state


def running(cloud) -> str:
    return next(j for j in cloud.history.job_ids() if cloud.history.status(j) not in TERMINAL
                and cloud.history.status(j) != "registered")


def answer_404(*job_ids: str):
    return lambda _cloud, job_id: (404, {"message": NOT_FOUND}) if job_id in job_ids else None


@pytest.fixture
def cloud():
    with FakeCloud(n_jobs=150, seed=31) as c:
        yield c


# ---- item 5: one 404 is evidence, not proof --------------------------------------------------------------------
def test_one_404_on_a_followed_job_keeps_its_rows_and_it_is_exported_once_it_finishes(tmp_path, cloud):
    out = tmp_path / "out"
    run(cloud, out)
    victim = running(cloud)
    cloud.faults.on_job = answer_404(victim)
    report = run(cloud, out)
    assert rows(out, victim) == [(cloud.history.status(victim),)]  # kept
    assert victim in state(out)["suspects"] and report.gone == []
    assert any(victim in note and "404" in note for note in report.notes)
    assert report.verified  # an unconfirmed 404 is an anomaly: the run reconciled
    cloud.faults.on_job = None
    cloud.finish(victim)
    report = run(cloud, out)
    assert report.ok
    assert rows(out, victim) == [("succeeded",)]
    assert victim not in state(out)["suspects"] and victim not in state(out)["pending"]


def test_a_deletion_is_confirmed_by_a_second_404_an_hour_later_then_its_rows_are_dropped(tmp_path, cloud):
    out = tmp_path / "out"
    run(cloud, out)
    victim = running(cloud)
    cloud.faults.on_job = answer_404(victim)  # listed, yet 404 by id: only the time rule can confirm it
    run(cloud, out)
    cloud.advance_clock(30 * 60)
    report = run(cloud, out)
    assert rows(out, victim) and report.gone == []  # 30 minutes: not yet
    cloud.advance_clock(31 * 60)
    report = run(cloud, out)
    assert report.gone == [victim]
    assert rows(out, victim) == []
    assert any("deleted on the server" in note and victim in note for note in report.notes)
    assert victim not in state(out)["suspects"] and victim not in state(out)["pending"]


def test_a_final_job_deleted_on_the_server_is_confirmed_by_the_reconcile_and_its_final_rows_dropped(tmp_path, cloud):
    out = tmp_path / "out"
    run(cloud, out)
    (victim,) = cloud.delete_oldest(1)
    before = connect(out).execute("SELECT count(*) FROM jobs").fetchone()[0]
    report = run(cloud, out, verify=True)
    assert report.gone == [victim]
    assert rows(out, victim) == []
    assert connect(out).execute("SELECT count(*) FROM jobs").fetchone()[0] == before - 1
    assert any("no longer listed" in line for line in report.differences)


# ---- item 6: a body must be the job asked for ------------------------------------------------------------------
def test_another_jobs_body_for_a_pending_job_is_its_error_and_never_a_second_row(tmp_path, cloud):
    out = tmp_path / "out"
    run(cloud, out)
    pending = running(cloud)
    other = next(j for j in cloud.history.job_ids() if cloud.history.status(j) == "succeeded")
    cloud.faults.on_job = lambda c, job_id: foreign_body(c, other) if job_id == pending else None
    for _ in range(3):
        report = run(cloud, out)
        assert not report.ok
        assert [(j, s) for j, s, _m in report.errors] == [(pending, "body")]
        assert pending in report.errors[0][2] and other in report.errors[0][2]
        assert rows(out, other) == [("succeeded",)]
        assert rows(out, pending) == [(cloud.history.status(pending),)]  # its rows untouched


def test_the_command_exits_1_naming_the_job_answered_with_another_jobs_body(tmp_path, cloud, monkeypatch):
    point_at(monkeypatch, cloud)
    out = tmp_path / "out"
    assert run_export(out).exit_code == 0
    pending = running(cloud)
    other = next(j for j in cloud.history.job_ids() if cloud.history.status(j) == "succeeded")
    cloud.faults.on_job = lambda c, job_id: foreign_body(c, other) if job_id == pending else None
    result = run_export(out)
    assert result.exit_code == 1
    assert pending in result.output and "Traceback" not in result.output


# ---- item 8: the run's time is the server's ---------------------------------------------------------------------
class _Ahead(datetime):
    """This machine's clock, two days ahead."""

    @classmethod
    def now(cls, tz=None):
        return datetime.now(tz) + timedelta(days=2)


def test_a_run_with_the_machines_clock_two_days_ahead_loses_no_job_created_afterwards(tmp_path, cloud, monkeypatch):
    out = tmp_path / "out"
    monkeypatch.setattr(bounds_module, "datetime", _Ahead)
    run(cloud, out)
    monkeypatch.undo()  # the clock corrected
    new = cloud.add_jobs(5)
    report = run(cloud, out)
    for job_id in new:
        if cloud.history.status(job_id) != "registered":
            assert len(rows(out, job_id)) == 1, job_id
    assert report.ok


def test_time_running_backwards_against_the_state_lists_again_and_says_so(tmp_path, cloud):
    out = tmp_path / "out"
    cloud.set_clock(datetime.now(UTC) + timedelta(days=2))  # the server's clock was ahead, then corrected
    run(cloud, out)
    cloud.set_clock(None)
    new = [j for j in cloud.add_jobs(5) if cloud.history.status(j) != "registered"]
    report = run(cloud, out)
    assert any("time ran backwards" in note for note in report.notes)
    assert report.verified
    assert all(len(rows(out, j)) == 1 for j in new)
    assert datetime.fromisoformat(state(out)["listed_until"]) <= datetime.now(UTC) + timedelta(minutes=1)


# ---- the reconcile --------------------------------------------------------------------------------------------
def test_verify_fetches_a_job_the_listing_left_out_and_then_finds_nothing(tmp_path, cloud, monkeypatch):
    out = tmp_path / "out"
    hidden = next(j for j in cloud.history.job_ids() if cloud.history.status(j) == "succeeded")
    cloud.faults.unrenderable = {hidden}
    run(cloud, out)
    cloud.faults.unrenderable = set()
    run(cloud, out)
    assert rows(out, hidden) == []  # created long before the lookback: no later run lists it again
    point_at(monkeypatch, cloud)
    result = run_export("--verify", out)
    assert result.exit_code == 1, result.output
    assert "missing from the dataset" in result.output and hidden in result.output
    assert rows(out, hidden) == [("succeeded",)]
    result = run_export("--verify", out)
    assert result.exit_code == 0, result.output
    assert "matches" in result.output


def test_verify_quiet_still_says_what_differed_and_nothing_when_all_matches(tmp_path, cloud, monkeypatch):
    out = tmp_path / "out"
    hidden = next(j for j in cloud.history.job_ids() if cloud.history.status(j) == "succeeded")
    cloud.faults.unrenderable = {hidden}
    run(cloud, out)
    cloud.faults.unrenderable = set()
    point_at(monkeypatch, cloud)
    result = run_export("--verify", "-q", out)
    assert result.exit_code == 1
    # -q drops progress and remarks, not the reason for exit status 1
    assert "missing from the dataset" in result.stderr and hidden in result.stderr, result.output
    result = run_export("--verify", "-q", out)
    assert result.exit_code == 0 and result.output == ""


def test_verify_lists_lightly_at_the_largest_page_size(tmp_path):
    with FakeCloud(n_jobs=300, seed=3, api="spec") as cloud:
        out = tmp_path / "out"
        run(cloud, out)
        cloud.requests.reset()
        report = run(cloud, out, verify=True)
        assert report.verified and not report.differences
        assert cloud.requests.snapshot()["list"] < 12


def test_verify_runs_on_its_schedule_and_not_before(tmp_path, cloud):
    out = tmp_path / "out"
    assert not run(cloud, out).verified
    assert state(out)["verified_at"] is not None  # a first run lists everything
    assert not run(cloud, out).verified
    cloud.advance_clock(8 * 86400)
    assert not run(cloud, out, verify_every=None).verified
    assert run(cloud, out).verified
    assert not run(cloud, out).verified


def test_a_version_2_state_is_migrated_with_no_suspects():
    migrated = SyncState.from_json({"state_version": 2, "listed_until": "2024-01-01T00:00:00Z",
                                    "pending": ["a"], "retry": [], "log_retry": []})
    assert migrated is not None and migrated.suspects == {} and migrated.verified_at is None
    assert migrated.to_json()["state_version"] == STATE_VERSION == 3
    again = SyncState.from_json(migrated.to_json())
    assert again == migrated


def test_verify_lists_whole_pages_where_the_server_refuses_fields(tmp_path, cloud):
    out = tmp_path / "out"
    run(cloud, out)
    cloud.faults.on_list = lambda _c, query: (400, {"message": "fields is invalid"}) if "fields" in query else None
    report = run(cloud, out, verify=True)
    assert report.verified and report.ok and not report.differences
    assert any("refused fields" in note for note in report.notes)
    assert any("whole pages" in note and "matches" in note for note in report.notes)


def test_compare_names_missing_changed_and_absent_jobs_but_not_failing_ones():
    from oqtopus_data.run.reconcile import compare

    server = {"a": "succeeded", "b": "running", "c": "succeeded", "e": "failed"}
    held = {"b": ("submitted", False), "c": ("succeeded", True), "d": ("succeeded", True)}
    found = compare(server, held, complete=True, failing=["e"])
    assert (found.missing, found.changed, found.absent) == (["a"], ["b"], ["d"])
    assert compare(server, held, complete=False).absent == []  # an incomplete listing proves no absence
    assert not compare({"c": "succeeded"}, {"c": ("succeeded", True)}, complete=True)


def test_the_client_reads_the_servers_clock_from_its_date_header(cloud):
    with ApiClient(Credentials(url=cloud.url, token=cloud.token)) as api:
        assert api.server_now() is None  # nothing heard yet: the run falls back to this machine's clock
        cloud.set_clock(datetime(2030, 1, 1, tzinfo=UTC))
        api.list_page({"size": 1})
        now = api.server_now()
        assert now is not None and abs(now - datetime(2030, 1, 1, tzinfo=UTC)) < timedelta(seconds=5)
