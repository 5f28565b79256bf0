"""Device snapshots against the local OQTOPUS Cloud: `devices_only` runs take one and nothing else, calibrations
follow the server's clock and are stored once, an export's state and rows are left alone, a bad calibration is an
errors row while the snapshot is committed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise

import pytest
from groundtruth import assert_matches_ground_truth

from oqtopus_data import connect
from oqtopus_data.client.api import ApiClient
from oqtopus_data.client.config import Credentials
from oqtopus_data.dataset.dataset import Dataset
from oqtopus_data.errors import StoreError
from oqtopus_data.run.export import ExportOptions, export
from oqtopus_data.testing import FakeCloud, History, generate_history
from oqtopus_data.times import parse_time

FAST = {"max_tries": 3, "backoff": 0.001, "max_backoff": 0.01}
T = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
SNAPSHOT = ExportOptions(devices_only=True)


def run(cloud: FakeCloud, out, options: ExportOptions = SNAPSHOT):
    with ApiClient(Credentials(url=cloud.url, token=cloud.token), workers=4, **FAST) as api:
        return export(api, out, options)


def calibrations(out) -> list[tuple]:
    """(device, calibrated_at, qubits, couplings, first seen) of every stored calibration."""
    return connect(out).execute("""
        SELECT device_id, calibrated_at, n_qubits, n_couplings, first_seen_at
        FROM device_calibrations ORDER BY ALL""").fetchall()


def served(cloud: FakeCloud | History, at: datetime) -> dict[str, datetime]:
    """The calibrated_at GET /devices shows at `at`, per QPU."""
    history = cloud.history if isinstance(cloud, FakeCloud) else cloud
    return {d["device_id"]: parse_time(d["calibrated_at"]) for d in history.devices(at) if "calibrated_at" in d}


def test_the_fake_cloud_recalibrates_its_qpus_every_few_hours_of_its_clock():
    history = generate_history(10, seed=8)
    seen: dict[str, list[datetime]] = {}
    for step in range(3 * 24 * 4):  # every 15 minutes for three days
        at = T + timedelta(minutes=15 * step)
        for device_id, calibrated in served(history, at).items():
            assert calibrated <= at
            times = seen.setdefault(device_id, [])
            if not times or times[-1] != calibrated:
                times.append(calibrated)
    assert sorted(seen) == ["Kawasaki", "Urchin"]
    for times in seen.values():
        assert 10 <= len(times) <= 14
        assert all(timedelta(hours=3) < b - a < timedelta(hours=9) for a, b in pairwise(times))
    assert history.devices(T) == generate_history(10, seed=8).devices(T)  # the same for a seed, every time


def test_devices_only_on_a_new_directory_commits_a_snapshot_and_nothing_else(tmp_path):
    with FakeCloud(n_jobs=60, seed=1) as cloud:
        cloud.set_clock(T)
        report = run(cloud, tmp_path / "out")
        assert {k: v for k, v in cloud.requests.snapshot().items() if v and k != "total"} == {"user": 1, "devices": 1}
    manifest = Dataset(tmp_path / "out").require_latest()
    assert (manifest.version, manifest.operation, manifest.state) == (1, "devices", {})
    assert sorted(manifest.files) == ["coupling_calibrations", "devices", "qubit_calibrations"]
    shown = served(cloud, T)
    assert shown == {"Kawasaki": datetime(2024, 3, 1, 8, 58, 16, tzinfo=UTC),  # the same for a seed, every time
                     "Urchin": datetime(2024, 3, 1, 6, 32, 52, tzinfo=UTC)}
    assert report.calibrations == list(shown.items())
    first_seen = connect(tmp_path / "out").execute("SELECT max(snapshot_at) FROM devices").fetchone()[0]
    assert calibrations(tmp_path / "out") == [("Kawasaki", shown["Kawasaki"], 64, 112, first_seen),
                                              ("Urchin", shown["Urchin"], 16, 24, first_seen)]
    assert dict(report.rows) == {"devices": 4, "qubit_calibrations": 80, "coupling_calibrations": 136}


def test_calibrations_follow_the_server_clock_drift_and_are_stored_once(tmp_path):
    out = tmp_path / "out"
    with FakeCloud(n_jobs=20, seed=2) as cloud:
        cloud.set_clock(T)
        first = run(cloud, out)
        again = run(cloud, out)  # the same calibration: not stored again
        cloud.set_clock(T + timedelta(hours=10))  # calibrations are at most 9 hours apart
        later = run(cloud, out)
    assert (len(first.calibrations), again.calibrations, len(later.calibrations)) == (2, [], 2)
    assert again.rows == {"devices": 4}
    con = connect(out)
    assert con.execute("SELECT count(*), count(DISTINCT snapshot_at) FROM devices").fetchone() == (12, 3)
    stored = calibrations(out)
    assert [(d, at) for d, at, *_ in stored] == sorted({**served(cloud, T)}.items()
                                                        | served(cloud, T + timedelta(hours=10)).items())
    snapshots = [r[0] for r in con.execute("SELECT DISTINCT snapshot_at FROM devices ORDER BY 1").fetchall()]
    assert [first_seen for *_, first_seen in stored] == [snapshots[0], snapshots[2]] * 2
    drift = con.execute("""
        SELECT count(*) FROM qubit_calibrations a JOIN qubit_calibrations b USING (device_id, qubit_id)
        WHERE a.calibrated_at < b.calibrated_at AND a.t1 <> b.t1""").fetchone()[0]
    assert drift == 80  # every qubit's T1 moved between the two calibrations


def test_devices_only_leaves_an_exports_state_and_rows_and_the_next_export_continues(tmp_path):
    out = tmp_path / "out"
    with FakeCloud(n_jobs=150, seed=3) as cloud:
        assert run(cloud, out, ExportOptions(page_size=50)).ok
        before = Dataset(out).require_latest()
        jobs = connect(out).execute("SELECT job_id, status FROM jobs ORDER BY 1").fetchall()
        assert any(status == "running" for _, status in jobs)  # volatile rows, which a commit must carry
        cloud.requests.reset()
        cloud.set_clock(datetime.now(UTC) + timedelta(days=2))  # a new calibration since the export
        snapshot = run(cloud, out)
        assert cloud.requests["list"] == 0 and len(snapshot.calibrations) == 2
        after = Dataset(out).require_latest()
        assert after.state == before.state
        assert {t: es for t, es in after.files.items() if t in ("jobs", "counts", "errors")} == \
            {t: es for t, es in before.files.items() if t in ("jobs", "counts", "errors")}
        assert connect(out).execute("SELECT job_id, status FROM jobs ORDER BY 1").fetchall() == jobs
        cloud.set_clock(None)
        following = run(cloud, out, ExportOptions(page_size=50))
        assert following.ok and following.incremental
        assert following.calibrations == []  # the calibration it sees now was stored by the first export
        assert_matches_ground_truth(out, cloud)
    assert len(calibrations(out)) == 4


def test_a_legacy_server_gives_the_same_calibration_in_its_older_shape(tmp_path):
    values = {}
    for legacy in (False, True):
        with FakeCloud(n_jobs=10, seed=4, legacy=legacy) as cloud:
            cloud.set_clock(T)
            run(cloud, tmp_path / str(legacy))
        values[legacy] = connect(tmp_path / str(legacy)).execute("""
            SELECT device_id, calibrated_at, qubit_id, t1, t2, readout_assignment_error, round(fidelity, 9)
            FROM qubit_calibrations ORDER BY ALL""").fetchall()
    assert len(values[True]) == 80 and values[True] == values[False]


def test_a_malformed_calibration_is_an_errors_row_until_a_snapshot_reads_it(tmp_path, monkeypatch):
    out = tmp_path / "out"
    with FakeCloud(n_jobs=10, seed=5) as cloud:
        cloud.set_clock(T)
        good = cloud.history.devices

        def broken(*args, **kwargs):
            return [{**d, "device_info": "{oops"} if d["device_id"] == "Kawasaki" else d for d in good(*args, **kwargs)]

        monkeypatch.setattr(cloud.history, "devices", broken)
        report = run(cloud, out)
        message = ("device 'Kawasaki': its calibration is left out (device_info is not JSON: Expecting property name "
                   "enclosed in double quotes: line 1 column 2 (char 1)); the device snapshot keeps device_info as "
                   "sent")
        assert report.ok and report.notes == [f"calibration: {message}"]
        con = connect(out)
        assert con.execute("SELECT job_id, stage, message FROM errors").fetchall() == [(None, "calibration", message)]
        assert con.execute("SELECT device_id, device_info FROM devices WHERE device_id = 'Kawasaki'").fetchall() == [
            ("Kawasaki", "{oops")]
        assert [d for d, *_ in calibrations(out)] == ["Urchin"]
        monkeypatch.setattr(cloud.history, "devices", good)
        run(cloud, out)
    con = connect(out)
    assert con.execute("SELECT count(*) FROM errors").fetchone() == (0,)
    assert [d for d, *_ in calibrations(out)] == ["Kawasaki", "Urchin"]


def test_devices_only_refuses_an_export_of_another_server(tmp_path):
    out = tmp_path / "out"
    with FakeCloud(n_jobs=10, seed=6) as cloud:
        assert run(cloud, out, ExportOptions(page_size=50)).ok
    with FakeCloud(n_jobs=10, seed=6) as other, pytest.raises(StoreError, match=(
            r"this directory holds another export \(it was exported from http://127\.0\.0\.1:\d+, not "
            r"http://127\.0\.0\.1:\d+\): use another directory")):
        run(other, out)
    assert Dataset(out).require_latest().version == 1
