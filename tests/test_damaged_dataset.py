"""A damaged dataset (a lost data file, a truncated manifest) is named, never read past, and never blocks a way out."""

from __future__ import annotations

from datetime import UTC, datetime

import pyarrow as pa
import pytest
from conftest import result
from groundtruth import assert_matches_ground_truth

from oqtopus_data import connect, flatten, read, scan, write_dataset
from oqtopus_data.client.api import ApiClient
from oqtopus_data.client.config import Credentials
from oqtopus_data.dataset.dataset import Dataset
from oqtopus_data.dataset.manifest import MissingFilesError
from oqtopus_data.dataset.writer import collect_garbage
from oqtopus_data.errors import StoreError
from oqtopus_data.query.views import DatasetWarning
from oqtopus_data.run.export import ExportOptions, export
from oqtopus_data.tables.schema import PARTITION_COLUMN
from oqtopus_data.testing import FakeCloud

AT = datetime(2025, 6, 1, tzinfo=UTC)
FIX = "--full-refresh"


def tables(name: str, month: str | None = None) -> dict[str, pa.Table]:
    """The flattened tables of one corpus payload, moved to another submission month when asked."""
    out = flatten([result(name)], exported_at=AT)
    if month is not None:
        for key, table in out.items():
            if PARTITION_COLUMN in table.column_names:
                i = table.schema.get_field_index(PARTITION_COLUMN)
                out[key] = table.set_column(i, PARTITION_COLUMN, pa.array([month] * table.num_rows, pa.string()))
    return out


def job_ids(out) -> list[str]:
    return sorted(read(out, "jobs")["job_id"].to_list())


def manifest_file(out, version: int):
    return out / "_oqtopus" / "manifests" / f"{version:020d}.json"


def truncate(path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def run(cloud: FakeCloud, out, **options):
    with ApiClient(Credentials(url=cloud.url, token=cloud.token), workers=8) as api:
        return export(api, out, ExportOptions(page_size=50, **options))


# ---------------------------------------------------------------------------------------------- a lost data file
def test_every_reader_names_a_missing_data_file_and_the_way_out(tmp_path):
    write_dataset(tables("sampling_current"), tmp_path)
    write_dataset(tables("estimation_current"), tmp_path)
    (lost,) = Dataset(tmp_path).latest().entries("counts")
    (tmp_path / lost.path).unlink()
    readers = {
        "read": lambda: read(tmp_path, "counts"),
        "scan": lambda: scan(tmp_path, "jobs"),
        "connect": lambda: connect(tmp_path),
        "read_table": lambda: Dataset(tmp_path).read_table("counts"),
    }
    for name, reader in readers.items():
        with pytest.raises(MissingFilesError) as caught:
            reader()
        message = str(caught.value)
        assert f"1 data file(s) of commit 2 are missing ({lost.path})" in message, name
        assert FIX in message, name
        assert caught.value.missing == [lost] and caught.value.months == ["2025-03"], name


def test_an_export_refuses_to_continue_a_dataset_that_lost_a_file_and_changes_nothing(tmp_path):
    out = tmp_path / "out"
    with FakeCloud(n_jobs=60, seed=12) as cloud:
        assert run(cloud, out).ok
        before = Dataset(out).latest()
        lost = before.entries("counts")[0]
        (out / lost.path).unlink()
        with pytest.raises(MissingFilesError, match=rf"commit {before.version} are missing \({lost.path}\); an "
                                                    rf"export does not continue .*--repair.*{FIX}"):
            run(cloud, out)
        assert Dataset(out).manifest_versions()[-1] == before.version
        assert Dataset(out).latest() == before
        assert run(cloud, out, full_refresh=True).ok  # the way out the message gives
        assert_matches_ground_truth(out, cloud)


def test_an_export_with_repair_fetches_the_months_of_a_lost_file_again(tmp_path):
    out = tmp_path / "out"
    with FakeCloud(n_jobs=120, seed=13) as cloud:
        assert run(cloud, out).ok
        for table in ("counts", "jobs"):  # a per-job file of one month, and the jobs file of another
            lost = Dataset(out).latest().entries(table)[-1]
            (out / lost.path).unlink()
        notes: list[str] = []
        with ApiClient(Credentials(url=cloud.url, token=cloud.token), workers=8) as api:
            report = export(api, out, ExportOptions(repair=True), notice=notes.append)
        assert report.ok
        assert any(note.startswith("repairing: 2 lost data file(s)") for note in notes), notes
        assert_matches_ground_truth(out, cloud)
        assert run(cloud, out).ok  # and the dataset continues normally afterwards
        assert_matches_ground_truth(out, cloud)


def test_a_lost_file_of_rows_that_may_still_change_is_fetched_again_without_repair(tmp_path):
    out = tmp_path / "out"
    with FakeCloud(n_jobs=120, seed=14) as cloud:
        assert run(cloud, out).ok
        volatile = [e for e in Dataset(out).latest().entries("jobs") if not e.final]
        assert volatile, "the fake history ends with jobs still running"
        (out / volatile[0].path).unlink()
        notes: list[str] = []
        with ApiClient(Credentials(url=cloud.url, token=cloud.token), workers=8) as api:
            assert export(api, out, ExportOptions(), notice=notes.append).ok
        assert any("may still change are gone" in note for note in notes), notes
        assert_matches_ground_truth(out, cloud)


def test_a_repairing_writer_takes_out_every_per_job_file_of_the_months_that_lost_one(tmp_path):
    write_dataset(tables("sampling_current", "2025-01"), tmp_path)
    write_dataset(tables("multi_manual_current", "2025-02"), tmp_path)
    kept = {e.path for e in Dataset(tmp_path).latest().all_entries() if e.partition == "2025-02"}
    lost = next(e for e in Dataset(tmp_path).latest().entries("counts") if e.partition == "2025-01")
    (tmp_path / lost.path).unlink()
    with Dataset(tmp_path).writer(repair=True) as writer:
        assert writer.missing == [lost] and writer.missing_months == ["2025-01"]
        dropped = writer.drop_partitions(writer.missing_months)
        assert {e.table for e in dropped} == {"jobs"}  # the lost counts file is already out of the commit
        manifest = writer.commit()
    assert {e.path for e in manifest.all_entries()} == kept
    assert job_ids(tmp_path) == [result("multi_manual_current").job_id]


# ---------------------------------------------------------------------------------- a truncated newest manifest
def test_readers_use_the_newest_readable_manifest_and_say_which_they_skipped(tmp_path):
    write_dataset(tables("sampling_current"), tmp_path)
    write_dataset(tables("estimation_current"), tmp_path)
    truncate(manifest_file(tmp_path, 2))
    manifest = Dataset(tmp_path).latest()
    assert manifest.version == 1
    assert manifest.notes[0].startswith(f"{manifest_file(tmp_path, 2)} is not a readable oqtopus-data manifest")
    assert manifest.notes[-1].startswith("read commit 1 of 20")
    with pytest.warns(DatasetWarning) as caught:
        assert job_ids(tmp_path) == [result("sampling_current").job_id]
        assert connect(tmp_path).execute("SELECT count(*) FROM jobs").fetchone() == (1,)
    assert [str(w.message) for w in caught] == ["\n".join(manifest.notes)] * 2


def test_a_writer_continues_from_the_newest_readable_commit_above_the_broken_version(tmp_path):
    write_dataset(tables("sampling_current"), tmp_path)
    write_dataset(tables("estimation_current"), tmp_path)
    truncate(manifest_file(tmp_path, 2))
    with Dataset(tmp_path).writer() as writer:
        assert writer.base.version == 1 and "is not a readable" in writer.notes[0]
        writer.write("jobs", tables("multi_manual_current")["jobs"])
        manifest = writer.commit()
    assert manifest.version == 3 and manifest.notes == writer.notes
    assert Dataset(tmp_path).verified().notes == []  # the files the fallback commit kept were not collected
    assert job_ids(tmp_path) == sorted([result("sampling_current").job_id, result("multi_manual_current").job_id])


def test_with_no_readable_manifest_only_a_fresh_writer_proceeds(tmp_path):
    write_dataset(tables("sampling_current"), tmp_path)
    truncate(manifest_file(tmp_path, 1))
    for blocked in (lambda: Dataset(tmp_path).latest(), lambda: read(tmp_path, "jobs"),
                    lambda: Dataset(tmp_path).writer()):
        with pytest.raises(StoreError, match=rf"holds no readable manifest \(.* is not a readable .*{FIX}"):
            blocked()
    with Dataset(tmp_path).writer(fresh=True) as writer:
        assert writer.base is None and writer.notes[-1] == "this fresh export starts from an empty dataset"
        writer.write("jobs", tables("estimation_current")["jobs"])
        assert writer.commit().version == 2
    assert job_ids(tmp_path) == [result("estimation_current").job_id]


@pytest.mark.parametrize("damage", [b"", b"\xff\xfe", b"[" * 100_000, b'{"format": "oqtopus-data"}', b"null"],
                         ids=["empty", "not utf-8", "nested too deep", "no fields", "not an object"])
def test_any_unreadable_newest_manifest_is_skipped_for_the_older_one(tmp_path, damage):
    write_dataset(tables("sampling_current"), tmp_path)
    write_dataset(tables("estimation_current"), tmp_path)
    manifest_file(tmp_path, 2).write_bytes(damage)
    manifest = Dataset(tmp_path).latest()
    assert manifest.version == 1
    assert manifest.notes[0].startswith(f"{manifest_file(tmp_path, 2)} is not a readable oqtopus-data manifest: ")


def test_garbage_collection_deletes_nothing_while_the_newest_manifest_is_unreadable(tmp_path):
    write_dataset(tables("sampling_current"), tmp_path)
    write_dataset(tables("estimation_current"), tmp_path)
    truncate(manifest_file(tmp_path, 2))
    files = sorted(p for p in tmp_path.rglob("*.parquet"))
    assert collect_garbage(Dataset(tmp_path).storage) == 0
    assert sorted(p for p in tmp_path.rglob("*.parquet")) == files


def test_an_export_and_a_full_refresh_run_past_a_truncated_newest_manifest(tmp_path):
    out = tmp_path / "out"
    with FakeCloud(n_jobs=90, seed=13) as cloud:
        assert run(cloud, out, checkpoint_jobs=30, batch_jobs=30).ok
        versions = Dataset(out).manifest_versions()
        assert len(versions) >= 3
        truncate(manifest_file(out, versions[-1]))
        cloud.add_jobs(5)
        report = run(cloud, out)
        assert report.ok and report.version == versions[-1] + 1
        assert_matches_ground_truth(out, cloud)
        truncate(manifest_file(out, report.version))
        refreshed = run(cloud, out, full_refresh=True)
        assert refreshed.ok and refreshed.version == report.version + 1
        assert_matches_ground_truth(out, cloud)


def test_a_lost_month_is_only_in_the_months_named(tmp_path):
    """`months` are what a repair fetches again: the partitions of per-job files, not the unpartitioned tables."""
    write_dataset(tables("sampling_current", "2025-01"), tmp_path)
    write_dataset({"devices": _devices()}, tmp_path)
    manifest = Dataset(tmp_path).latest()
    for entry in manifest.entries("counts") + manifest.entries("devices"):
        (tmp_path / entry.path).unlink()
    with pytest.raises(MissingFilesError) as caught:
        Dataset(tmp_path).writer()
    assert sorted(e.table for e in caught.value.missing) == ["counts", "devices"]
    assert caught.value.months == ["2025-01"]


def _devices() -> pa.Table:
    from oqtopus_data.tables.devices import devices_table

    return devices_table([{"device_id": "Kawasaki", "device_type": "QPU", "status": "available", "n_qubits": 64}], AT)
