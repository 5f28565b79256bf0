"""Garbage collection deletes only files this dataset wrote: never a file behind a symlinked table directory."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from conftest import result

from oqtopus_data import flatten, write_dataset
from oqtopus_data.client.api import ApiClient
from oqtopus_data.client.config import Credentials
from oqtopus_data.dataset.dataset import Dataset
from oqtopus_data.run.export import ExportOptions, export
from oqtopus_data.testing import FakeCloud

AT = datetime(2025, 6, 1, tzinfo=UTC)
pytest_plugins = ["s3server"]  # the `s3` fixture: moto's server on 127.0.0.1


def tables(*names: str) -> dict:
    return flatten([result(n) for n in names], exported_at=AT)


def files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and p.suffix in (".parquet", ".staged")}


def move_behind_symlink(out: Path, table: str, disk: Path) -> Path:
    """Move `out/table` to `disk/table` and leave a symlink in its place, as a user short of space does."""
    disk.mkdir()
    shutil.move(out / table, disk / table)
    (out / table).symlink_to(disk / table, target_is_directory=True)
    return disk / table


def test_an_export_never_deletes_a_file_it_did_not_write_behind_a_symlinked_table_directory(tmp_path):
    out = tmp_path / "out"
    with FakeCloud(n_jobs=120, seed=2) as cloud:
        creds = Credentials(url=cloud.url, token=cloud.token)
        with ApiClient(creds, workers=4) as api:
            assert export(api, out, ExportOptions(page_size=50)).ok
        before = Dataset(out).latest()
        volatile = {e.path for e in before.entries("jobs") if not e.final}
        assert volatile, "the history has jobs that are not final yet: their file is replaced by the next run"
        elsewhere = move_behind_symlink(out, "jobs", tmp_path / "disk2")
        month = sorted(p.name for p in elsewhere.iterdir())[0]
        theirs = [elsewhere / month / "part-000001-0badf00d-00001.parquet", elsewhere / "foreign.parquet",
                  elsewhere / month / ".part-000002-0badf00d-00001.parquet.staged"]
        for path in theirs:
            pq.write_table(pq.read_table(next(elsewhere.rglob("part-*.parquet"))), path)
        with ApiClient(creds, workers=4) as api:
            assert export(api, out, ExportOptions(page_size=50)).ok
    assert all(path.exists() for path in theirs)
    after = Dataset(out).verified()
    assert not volatile & {e.path for e in after.all_entries()}
    assert not any((out / rel).exists() for rel in volatile), "files this dataset replaced are still collected"


def test_staged_files_of_a_killed_writer_are_collected_by_the_next_one(tmp_path):
    write_dataset(tables("sampling_current"), tmp_path)
    with pytest.raises(RuntimeError), Dataset(tmp_path).writer() as writer:
        writer.write("jobs", tables("estimation_current")["jobs"])
        raise RuntimeError("killed before its commit")
    staged = [p for p in files(tmp_path) if p.endswith(".staged")]
    assert staged
    write_dataset(tables("sampling_running_minimal"), tmp_path)
    assert not [p for p in files(tmp_path) if p.endswith(".staged")]
    assert files(tmp_path) == {e.path for e in Dataset(tmp_path).latest().all_entries()}


def test_garbage_collection_on_s3_deletes_only_objects_this_dataset_wrote(s3):
    bucket = s3.bucket()
    dataset = Dataset(f"s3://{bucket}/p", **s3.options)
    with dataset.writer() as writer:
        writer.write("jobs", tables("sampling_running_minimal")["jobs"], final=False)
        first = {e.path for e in writer.commit().all_entries()}
    foreign = "p/jobs/submitted_month=2025-03/part-000001-0badf00d-00001.parquet"
    s3.client().put_object(Bucket=bucket, Key=foreign, Body=b"not ours")
    with dataset.writer() as writer:  # replaces the volatile file of the first commit
        writer.write("jobs", tables("sampling_current")["jobs"])
        writer.commit()
    keys = set(s3.keys(bucket, "p/jobs/"))
    assert foreign in keys
    assert not {f"p/{rel}" for rel in first} & keys
