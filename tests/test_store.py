"""The dataset store: commits are all-or-nothing, readers see only committed files, one writer at a time."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import textwrap
from datetime import UTC, datetime

import pyarrow.parquet as pq
import pytest
from conftest import result

from oqtopus_data import flatten, read, write_dataset
from oqtopus_data.dataset.dataset import Dataset, compact
from oqtopus_data.dataset.writer import collect_garbage
from oqtopus_data.errors import LockError, StoreError

AT = datetime(2025, 6, 1, tzinfo=UTC)


def tables(*names: str) -> dict:
    return flatten([result(n) for n in names], exported_at=AT)


def test_write_dataset_puts_zstd_parquet_under_each_table_and_appends(tmp_path):
    first = write_dataset(tables("sampling_current"), tmp_path)
    second = write_dataset(tables("estimation_current"), tmp_path)
    assert (first.version, second.version) == (1, 2)
    paths = [e.path for e in second.entries("jobs")]
    assert paths[0] == first.entries("jobs")[0].path  # the first file is kept, not rewritten
    assert all(p.startswith("jobs/submitted_month=2025-03/part-") and p.endswith(".parquet") for p in paths)
    meta = pq.ParquetFile(tmp_path / paths[0]).metadata
    assert meta.row_group(0).column(0).compression == "ZSTD"
    assert sorted(read(tmp_path, "jobs")["job_id"].to_list()) == sorted(
        [result("sampling_current").job_id, result("estimation_current").job_id])


def test_files_no_manifest_names_are_invisible_to_readers_and_not_ours_to_delete(tmp_path):
    write_dataset(tables("sampling_current"), tmp_path)
    stray = tmp_path / "jobs" / "submitted_month=2025-03" / "part-999999-stray.parquet"
    pq.write_table(pq.read_table(next((tmp_path / "jobs").rglob("*.parquet"))), stray)
    assert read(tmp_path, "jobs").height == 1
    collect_garbage(Dataset(tmp_path).storage)
    assert stray.exists()  # no manifest of this dataset named it and no writer of it staged it


def test_a_writer_that_fails_before_commit_leaves_the_previous_commit(tmp_path):
    write_dataset(tables("sampling_current"), tmp_path)
    with pytest.raises(RuntimeError), Dataset(tmp_path).writer() as writer:
        writer.write("jobs", tables("estimation_current")["jobs"])
        raise RuntimeError("killed")
    assert read(tmp_path, "jobs")["job_id"].to_list() == [result("sampling_current").job_id]
    assert Dataset(tmp_path).latest().version == 1


def test_a_full_disk_is_a_clear_error_and_the_dataset_stays_intact(tmp_path, monkeypatch):
    write_dataset(tables("sampling_current"), tmp_path)

    def no_space(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", no_space)
    with pytest.raises(StoreError, match="No space left on device"):
        write_dataset(tables("estimation_current"), tmp_path)
    monkeypatch.undo()
    assert read(tmp_path, "jobs").height == 1
    assert not list(tmp_path.rglob(".tmp-*"))


def test_a_second_writer_is_refused_while_the_first_holds_the_lock(tmp_path):
    write_dataset(tables("sampling_current"), tmp_path)
    with Dataset(tmp_path).writer(), pytest.raises(LockError, match=r"another oqtopus-data export .*\(pid \d+ on "):
        Dataset(tmp_path).writer()


def test_the_lock_of_a_killed_process_does_not_block_the_next_writer(tmp_path):
    write_dataset(tables("sampling_current"), tmp_path)
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time
        from oqtopus_data.dataset.dataset import Dataset
        w = Dataset({str(tmp_path)!r}).writer()
        print("locked", flush=True)
        time.sleep(60)
    """)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"
    with pytest.raises(LockError):
        Dataset(tmp_path).writer()
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    with Dataset(tmp_path).writer() as writer:
        assert writer.base.version == 1


def test_volatile_files_are_replaced_by_the_next_commit(tmp_path):
    data = tables("sampling_running_minimal")
    with Dataset(tmp_path).writer() as writer:
        writer.write("jobs", data["jobs"], final=False)
        writer.commit()
    with Dataset(tmp_path).writer() as writer:
        assert writer.base_volatile("jobs").num_rows == 1
        writer.commit()
    assert read(tmp_path, "jobs").height == 0


def test_compaction_merges_files_without_changing_any_row(tmp_path):
    for name in ("sampling_current", "estimation_current", "multi_manual_current", "sse_sampling"):
        write_dataset(tables(name), tmp_path)
    before = {t: read(tmp_path, t).sort(read(tmp_path, t).columns) for t in ("jobs", "counts", "estimations")}
    files_before = sum(len(v) for v in Dataset(tmp_path).latest().files.values())
    manifest = compact(tmp_path)
    assert sum(len(v) for v in manifest.files.values()) < files_before
    for name, frame in before.items():
        assert read(tmp_path, name).sort(frame.columns).equals(frame), name


def test_a_manifest_from_a_newer_schema_is_refused_with_a_clear_message(tmp_path):
    write_dataset(tables("sampling_current"), tmp_path)
    path = next((tmp_path / "_oqtopus" / "manifests").glob("*.json"))
    body = json.loads(path.read_text())
    body["schema_version"] = 99
    path.write_text(json.dumps(body))
    with pytest.raises(StoreError, match=r"newer oqtopus-data .*schema version 99"):
        read(tmp_path, "jobs")


def test_reading_a_directory_without_an_export_says_so(tmp_path):
    with pytest.raises(StoreError, match="holds no oqtopus-data export"):
        read(tmp_path, "jobs")


def test_docs_schema_md_is_generated_from_the_declared_schema():
    from pathlib import Path

    from oqtopus_data.tables.schema import markdown_reference

    doc = Path(__file__).resolve().parent.parent / "docs" / "schema.md"
    assert doc.read_text() == markdown_reference() + "\n", "regenerate: oqtopus-data schema > docs/schema.md"


def _parquet_files(root) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and p.suffix in (".parquet", ".staged")}


def test_directories_hold_exactly_the_newest_commit_for_engines_that_list_them(tmp_path):
    for name in ("sampling_current", "estimation_current", "sampling_running_minimal"):
        write_dataset(tables(name), tmp_path)
    compact(tmp_path)
    manifest = Dataset(tmp_path).latest()
    assert _parquet_files(tmp_path) == {e.path for es in manifest.files.values() for e in es}


def test_a_commit_killed_before_its_publish_is_read_from_staged_names_then_rolled_forward(tmp_path, monkeypatch):
    from oqtopus_data.dataset.writer import Writer

    write_dataset(tables("sampling_current"), tmp_path)
    monkeypatch.setattr(Writer, "_publish", lambda self, pairs: None)  # the kill lands right after the commit
    monkeypatch.setattr("oqtopus_data.dataset.writer.collect_garbage", lambda storage, **_: 0)
    write_dataset(tables("estimation_current"), tmp_path)
    monkeypatch.undo()
    staged = [p for p in _parquet_files(tmp_path) if p.endswith(".staged")]
    assert staged and all(p.split("/")[-1].startswith(".") for p in staged)  # hidden from Spark and Trino
    assert read(tmp_path, "jobs").height == 2  # our readers fall back to the staged names
    with Dataset(tmp_path).writer():  # the next writer publishes them
        pass
    assert not [p for p in _parquet_files(tmp_path) if p.endswith(".staged")]
    assert read(tmp_path, "jobs").height == 2
