"""Exports to S3 (moto's server on 127.0.0.1) keep every guarantee of a local directory, through the real command."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import time
from collections import Counter
from datetime import UTC, datetime

import polars as pl
import pytest
from cli_support import EXPORT_COMMAND
from conftest import result
from groundtruth import assert_matches_ground_truth

from oqtopus_data import connect, flatten, read, scan, write_dataset
from oqtopus_data.dataset.dataset import Dataset
from oqtopus_data.dataset.manifest import MissingFilesError
from oqtopus_data.dataset.storage.s3 import S3Storage
from oqtopus_data.errors import ConfigError, LockError, StoreError
from oqtopus_data.query.views import DatasetWarning
from oqtopus_data.report import write_report
from oqtopus_data.tables.schema import TABLES as SCHEMAS
from oqtopus_data.testing import FakeCloud, Faults

AT = datetime(2025, 6, 1, tzinfo=UTC)
TABLES = ("jobs", "counts", "divided_counts", "estimations", "errors")
VIEWS = (*TABLES, "devices", "sse_logs", "job_timings", "device_daily", "count_probabilities")
VOLATILE_COLUMNS = {"exported_at", "recorded_at"}  # when a row was written: differs between runs by nature
pytest_plugins = ["s3server"]  # the `s3` fixture: moto's server on 127.0.0.1


def export_command(out: str, endpoint: str, *extra: str) -> list[str]:
    """The export command into `out`; an s3:// one with the endpoint as its storage option."""
    where = ["--storage-option", f"endpoint_url={endpoint}"] if out.startswith("s3://") else []
    return [*EXPORT_COMMAND, "-q", "--since", "2024-01-01", "--checkpoint-every",
            "40", "--workers", "4", "--page-size", "60", *where, *extra, out]


def snapshot(out: str, **storage_options: str) -> dict[str, list[tuple]]:
    con = connect(out, **storage_options)
    result = {}
    for table in TABLES:
        cols = [c[0] for c in con.execute(f"DESCRIBE {table}").fetchall() if c[0] not in VOLATILE_COLUMNS]
        result[table] = con.execute(f"SELECT {', '.join(cols)} FROM {table} ORDER BY ALL").fetchall()
    return result


def data_keys(s3, bucket: str, prefix: str) -> set[str]:
    """Relative paths of the data files under the table directories (not manifests, not the lock)."""
    return {k[len(prefix) + 1:] for k in s3.keys(bucket, prefix + "/") if not k.startswith(f"{prefix}/_oqtopus/")}


def named_files(url: str, **storage_options: str) -> set[str]:
    manifest = Dataset(url, **storage_options).require_latest()
    return {e.path for es in manifest.files.values() for e in es}


def test_a_retried_commit_that_had_gone_through_counts_as_created(s3):
    storage = S3Storage(f"s3://{s3.bucket()}/p", **s3.options)
    assert storage.uri("m/1.json") == f"s3://{storage.bucket}/p/m/1.json"
    assert storage.create_exclusive("m/1.json", b"same bytes") is True
    assert storage.create_exclusive("m/1.json", b"same bytes") is True  # what botocore's retry would see


def test_a_commit_cut_before_its_publish_reads_whole_and_is_rolled_forward(s3, good_results):
    bucket = s3.bucket()
    url = f"s3://{bucket}/cut"
    tables = flatten(good_results, exported_at=AT)
    storage = S3Storage(url, **s3.options)

    def killed(src: str, dst: str) -> None:
        raise KeyboardInterrupt  # the process dies right after its manifest was created

    storage.rename = killed
    with pytest.raises(KeyboardInterrupt), Dataset(storage).writer() as writer:
        for name, table in tables.items():
            writer.write(name, table)
        writer.commit()
    assert any(k.endswith(".staged") for k in s3.keys(bucket))
    assert read(url, "counts", **s3.options).height == tables["counts"].num_rows  # from the staged names
    with Dataset(url, **s3.options).writer() as writer:  # the next writer publishes them, then commits
        writer.commit()
    assert not any(k.endswith(".staged") for k in s3.keys(bucket))
    assert data_keys(s3, bucket, "cut") == named_files(url, **s3.options)
    assert connect(url, **s3.options).execute("SELECT count(*) FROM counts").fetchone() == (tables["counts"].num_rows,)


def test_export_to_s3_matches_the_ground_truth_and_continues(s3):
    bucket = s3.bucket()
    url = f"s3://{bucket}/exports/mine"
    with FakeCloud(n_jobs=80, seed=5) as cloud:
        env = s3.env(OQTOPUS_URL=cloud.url, OQTOPUS_API_TOKEN=cloud.token)
        first = subprocess.run(export_command(url, s3.endpoint), env=env, capture_output=True, text=True)
        assert first.returncode == 0, first.stderr
        assert_matches_ground_truth(url, cloud, storage_options=s3.options)
        assert data_keys(s3, bucket, "exports/mine") == named_files(url, **s3.options)

        pending = [j for j in cloud.history.job_ids() if cloud.history.status(j) in ("submitted", "ready", "running")]
        assert pending
        for job_id in pending:
            cloud.finish(job_id)
        cloud.add_jobs(12)
        args = export_command(url, s3.endpoint)
        args.remove("-q")
        second = subprocess.run(args, env=env, capture_output=True, text=True)
        assert second.returncode == 0, second.stderr
        assert second.stdout.startswith(f"incremental export to {url}: ")
        truth = assert_matches_ground_truth(url, cloud, storage_options=s3.options)
        assert {truth[j].status for j in pending} == {"succeeded"}
        assert data_keys(s3, bucket, "exports/mine") == named_files(url, **s3.options)
        assert f"exports/mine/{'_oqtopus/lock'}" not in s3.keys(bucket), "the lease is released after a run"


def test_remote_readers_give_what_local_readers_give(s3, tmp_path, good_results, monkeypatch):
    tables = flatten(good_results, exported_at=AT)
    local = tmp_path / "local"
    write_dataset(tables, local)
    url = f"s3://{s3.bucket()}/round-trip"
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3.endpoint)  # boto3's standard place for the endpoint
    write_dataset(tables, url)
    here, there = connect(local), connect(url)
    for view in VIEWS:
        query = f"SELECT * FROM {view} ORDER BY ALL"
        assert there.execute(query).fetchall() == here.execute(query).fetchall(), view
    for table in SCHEMAS:
        remote, mine = read(url, table), read(local, table)
        assert remote.columns == mine.columns
        assert sorted(map(repr, remote.rows())) == sorted(map(repr, mine.rows())), table
    month = read(local, "counts")["submitted_month"][0]
    pick = pl.col("submitted_month") == month
    assert scan(url, "counts").filter(pick).collect().height == scan(local, "counts").filter(pick).collect().height
    with pytest.raises(StoreError, match="cannot be kept in the DuckDB file"):
        connect(url, database=str(tmp_path / "views.duckdb"))


def test_the_report_of_an_s3_export_is_the_report_of_the_same_export_on_disk(s3, tmp_path, good_results):
    tables = flatten(good_results, exported_at=AT)
    local, url = tmp_path / "local", f"s3://{s3.bucket()}/reported"
    write_dataset(tables, local)
    with Dataset(url, **s3.options).writer() as writer:
        for name, table in tables.items():
            writer.write(name, table)
        writer.commit()
    here = write_report(local, tmp_path / "here.html")
    there = write_report(url, tmp_path / "there.html", storage_options=s3.options)
    assert (there.charts, there.jobs) == (here.charts, here.jobs) and there.jobs > 0
    html = there.path.read_text(encoding="utf-8")
    assert f"Export {url};" in html and "<title>OQTOPUS job history: reported</title>" in html
    with pytest.raises(ConfigError, match="unknown storage option 'colour' for s3://"):
        write_report(url, tmp_path / "r.html", storage_options={**s3.options, "colour": "blue"})


def test_a_second_writer_is_refused_and_a_killed_writers_lease_is_taken_over(s3):
    bucket = s3.bucket()
    url = f"s3://{bucket}/busy"
    with FakeCloud(n_jobs=60, seed=6, faults=Faults(latency=1.0)) as cloud:  # slow: the first run stays busy
        env = s3.env(OQTOPUS_URL=cloud.url, OQTOPUS_API_TOKEN=cloud.token)
        proc = subprocess.Popen(export_command(url, s3.endpoint), env=env, stderr=subprocess.PIPE)
        try:
            while "busy/_oqtopus/lock" not in s3.keys(bucket, "busy/_oqtopus/"):
                assert proc.poll() is None, "the export should still be running"
                time.sleep(0.05)
            with pytest.raises(LockError, match=rf"writing to {url} \(pid {proc.pid} on .* lease runs until"):
                Dataset(url, **s3.options).writer()
            second = subprocess.run(export_command(url, s3.endpoint), env=env, capture_output=True, text=True)
            assert second.returncode == 2
            assert f"another oqtopus-data export is writing to {url} (pid {proc.pid}" in second.stderr
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        # Killed, its lease cannot be released; on the same machine a dead holder does not make us wait.
        cloud.faults.latency = 0.0
        rerun = subprocess.run(export_command(url, s3.endpoint), env=env, capture_output=True, text=True)
        assert rerun.returncode == 0, rerun.stderr
        assert_matches_ground_truth(url, cloud, storage_options=s3.options)


def put_lease(s3, bucket: str, prefix: str, **body) -> None:
    s3.client().put_object(Bucket=bucket, Key=f"{prefix}/_oqtopus/lock", Body=json.dumps(body).encode())


def test_an_expired_lease_of_another_machine_is_taken_over_and_a_live_one_is_not(s3):
    bucket = s3.bucket()
    storage = S3Storage(f"s3://{bucket}/p", **s3.options)
    put_lease(s3, bucket, "p", owner="x", pid=1, host="elsewhere", since="2025-01-01T00:00:00Z", lease_seconds=3600)
    with pytest.raises(LockError, match=r"\(pid 1 on elsewhere since 2025-01-01T00:00:00Z; its lease runs until"):
        storage.lock().__enter__()
    put_lease(s3, bucket, "p", owner="x", pid=1, host="elsewhere", since="2025-01-01T00:00:00Z", lease_seconds=0)
    with storage.lock():
        held = json.loads(s3.client().get_object(Bucket=bucket, Key="p/_oqtopus/lock")["Body"].read())
        assert held["pid"] == os.getpid()
    assert s3.keys(bucket) == []


def test_a_writer_whose_lease_was_taken_cannot_commit(s3):
    bucket = s3.bucket()
    storage = S3Storage(f"s3://{bucket}/p", **s3.options)
    with Dataset(storage).writer() as writer:
        put_lease(s3, bucket, "p", owner="thief", pid=1, host="elsewhere", lease_seconds=3600)
        storage._lease.renew()  # what the renewing thread does every quarter lease
        with pytest.raises(LockError, match="lost its lock"):
            writer.commit()
    assert Dataset(storage).latest() is None
    assert json.loads(s3.client().get_object(Bucket=bucket, Key="p/_oqtopus/lock")["Body"].read())["owner"] == "thief"


class IgnoresConditions:
    """An S3 client whose endpoint drops If-None-Match / If-Match, as some S3-compatible stores do."""

    def __init__(self, client):
        self._client = client

    def put_object(self, **kwargs):
        kwargs.pop("IfNoneMatch", None)
        kwargs.pop("IfMatch", None)
        return self._client.put_object(**kwargs)

    def __getattr__(self, name):
        return getattr(self._client, name)


def test_a_store_that_ignores_conditional_writes_is_refused(s3):
    bucket = s3.bucket()
    storage = S3Storage(f"s3://{bucket}/p", **s3.options)
    storage._client = IgnoresConditions(storage._client)
    with pytest.raises(StoreError, match=r"ignores conditional writes \(IfNoneMatch\)"), storage.lock():
        pass
    assert s3.keys(bucket) == []


def test_credentials_come_from_the_standard_places(s3, tmp_path):
    bucket = s3.bucket()
    (tmp_path / "credentials").write_text("[exporter]\naws_access_key_id = testing\naws_secret_access_key = testing\n")
    with FakeCloud(n_jobs=20, seed=7) as cloud:
        env = s3.env(OQTOPUS_URL=cloud.url, OQTOPUS_API_TOKEN=cloud.token)
        bare = {k: v for k, v in env.items() if k not in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
        none = subprocess.run(export_command(f"s3://{bucket}/x", s3.endpoint), env=bare, capture_output=True,
                              text=True)
        assert none.returncode == 2 and "no usable AWS credentials" in none.stderr
        profile = subprocess.run(
            export_command(f"s3://{bucket}/x", s3.endpoint, "--storage-option", "profile=exporter"),
            env={**bare, "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "credentials")}, capture_output=True, text=True)
        assert profile.returncode == 0, profile.stderr
        wrong = subprocess.run(export_command("s3://no-such-bucket/x", s3.endpoint, "--storage-option", "colour=blue"),
                               env=env, capture_output=True, text=True)
        assert wrong.returncode == 2 and "unknown storage option 'colour'" in wrong.stderr
        missing = subprocess.run(export_command("s3://no-such-bucket/x", s3.endpoint), env=env, capture_output=True,
                                 text=True)
        assert missing.returncode == 2 and "bucket 'no-such-bucket' does not exist" in missing.stderr


def test_killed_exports_then_a_rerun_give_the_exact_dataset(s3, tmp_path):
    rng = random.Random(7)
    bucket = s3.bucket()
    url = f"s3://{bucket}/killed"
    # Cloud latency makes a run last a few seconds on any machine, so that most kills land mid-run.
    with FakeCloud(n_jobs=120, seed=8, faults=Faults(latency=0.03)) as cloud:
        env = s3.env(OQTOPUS_URL=cloud.url, OQTOPUS_API_TOKEN=cloud.token)
        kills = 0
        for cycle in range(5):
            if cycle == 3:  # the history moves on between runs: new jobs, pending jobs finish
                cloud.add_jobs(10)
                for job_id in cloud.history.job_ids():
                    if cloud.history.status(job_id) in ("submitted", "ready", "running") and rng.random() < 0.5:
                        cloud.finish(job_id)
            extra = ("--full-refresh",) if cycle in (1, 2) else ("--compact",) if cycle == 4 else ()
            proc = subprocess.Popen(export_command(url, s3.endpoint, *extra), env=env,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(rng.uniform(0.5, 3.5))
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                kills += 1
            proc.wait()
            if Dataset(url, **s3.options).latest() is not None:
                # Whatever moment it died at, the committed dataset reads whole and holds no job twice.
                con = connect(url, **s3.options)
                assert con.execute("SELECT count(*) = count(DISTINCT job_id) FROM jobs").fetchone() == (True,)
                for table in TABLES:
                    con.execute(f"SELECT count(*) FROM {table}").fetchone()
        assert kills >= 3, "the kills should mostly land mid-run"

        cloud.faults.latency = 0.0
        final = subprocess.run(export_command(url, s3.endpoint), env=env, capture_output=True, text=True)
        assert final.returncode == 0, final.stderr
        clean = tmp_path / "clean"
        assert subprocess.run(export_command(str(clean), s3.endpoint), env=env).returncode == 0
        assert_matches_ground_truth(url, cloud, storage_options=s3.options)
        assert snapshot(url, **s3.options) == snapshot(str(clean))
        assert data_keys(s3, bucket, "killed") == named_files(url, **s3.options), "files of killed runs are removed"


def test_manifests_on_s3_are_checked_and_nothing_outside_the_prefix_is_read_or_moved(s3):
    bucket = s3.bucket()
    url = f"s3://{bucket}/ds"
    storage = S3Storage(url, **s3.options)
    client = s3.client()
    with Dataset(storage).writer() as writer:
        writer.write("jobs", flatten([result("sampling_current")], exported_at=AT)["jobs"])
        first = writer.commit()
    (own,) = first.entries("jobs")
    body = client.get_object(Bucket=bucket, Key=f"ds/{own.path}")["Body"].read()
    client.put_object(Bucket=bucket, Key="victim.parquet", Body=body)  # beside the prefix, not in it
    manifest = json.loads(client.get_object(Bucket=bucket, Key=f"ds/_oqtopus/manifests/{1:020d}.json")["Body"].read())
    planted = {**manifest, "version": 2, "publish": {own.path: "../../../victim.parquet"}}
    planted["tables"]["jobs"].append({**manifest["tables"]["jobs"][0], "path": "jobs/../victim.parquet"})
    client.put_object(Bucket=bucket, Key=f"ds/_oqtopus/manifests/{2:020d}.json", Body=json.dumps(planted).encode())

    with pytest.warns(DatasetWarning, match=r"jobs file 'jobs/\.\./victim\.parquet' has an empty, '\.' or '\.\.'"):
        assert read(url, "jobs", **s3.options)["job_id"].to_list() == [result("sampling_current").job_id]
    with Dataset(storage).writer() as writer:
        assert writer.base.version == 1
        writer.commit()
    assert "victim.parquet" in s3.keys(bucket)
    for call in (lambda: storage.delete("../victim.parquet"), lambda: storage.rename("../victim.parquet", "jobs/x")):
        with pytest.raises(StoreError, match="may lead outside the dataset"):
            call()
    assert client.get_object(Bucket=bucket, Key="victim.parquet")["Body"].read() == body


def test_a_data_file_missing_from_s3_is_named_by_readers_and_writers(s3):
    url = f"s3://{s3.bucket()}/lost"
    storage = S3Storage(url, **s3.options)
    with Dataset(storage).writer() as writer:
        for name, table in flatten([result("sampling_current")], exported_at=AT).items():
            writer.write(name, table)
        manifest = writer.commit()
    (lost,) = manifest.entries("counts")
    storage.delete(lost.path)
    for call in (lambda: read(url, "jobs", **s3.options), lambda: connect(url, **s3.options),
                 lambda: Dataset(storage).writer()):
        with pytest.raises(MissingFilesError, match=rf"of commit 1 are missing \({lost.path}\)"):
            call()
    storage._client = counting = CountsCalls(storage._client)
    with pytest.raises(MissingFilesError):
        Dataset(storage).writer()
    assert counting.calls["head_object"] == 0  # listings, not one request per file


class CountsCalls:
    """An S3 client that counts the calls of each method."""

    def __init__(self, client):
        self._client = client
        self.calls = Counter()

    def __getattr__(self, name):
        self.calls[name] += 1
        return getattr(self._client, name)
