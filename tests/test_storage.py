"""Every storage keeps the same protocol: a local directory and an S3 prefix (moto on 127.0.0.1) behave alike."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from oqtopus_data import write_dataset
from oqtopus_data.cli import export_command, main
from oqtopus_data.dataset.dataset import Dataset
from oqtopus_data.dataset.storage import Storage, open_storage
from oqtopus_data.dataset.storage.local import LocalStorage
from oqtopus_data.dataset.storage.s3 import S3Storage
from oqtopus_data.errors import ConfigError, StoreError

pytest_plugins = ["s3server"]  # the `s3` fixture: moto's server on 127.0.0.1
STAGED = "jobs/submitted_month=2025-01/.part-000001-abcd-00001.parquet.staged"


@pytest.fixture(params=["local", "s3"])
def storage(request, tmp_path) -> Storage:
    if request.param == "local":
        return LocalStorage(tmp_path / "out")
    server = request.getfixturevalue("s3")
    return S3Storage(f"s3://{server.bucket()}/some/prefix", **server.options)


def test_storages_behave_alike(storage):
    assert isinstance(storage, Storage)
    storage.write_bytes("a/b/x.bin", b"one")
    assert storage.read_bytes("a/b/x.bin") == b"one"
    assert storage.exists("a/b/x.bin") and not storage.exists("a/b/y.bin")
    with pytest.raises(FileNotFoundError):
        storage.read_bytes("a/missing")
    assert storage.create_exclusive("m/1.json", b"first") is True
    assert storage.create_exclusive("m/1.json", b"second") is False
    assert storage.read_bytes("m/1.json") == b"first"
    assert storage.children("") == ["a", "m"] and storage.children("a") == ["b"] and storage.children("no") == []
    assert storage.children("a/b") == ["x.bin"]
    storage.rename("a/b/x.bin", "a/c/x.bin")
    assert storage.list("a") == ["a/c/x.bin"] and storage.list("nothing") == []
    table = pa.table({"n": [1, 2, 3]})
    assert storage.write_parquet("t/p.parquet", table) == len(storage.read_bytes("t/p.parquet"))
    storage.delete("a/c/x.bin")
    storage.delete("a/c/x.bin")  # absent: not an error
    assert storage.list("a") == []
    assert storage.uri("jobs/x.parquet").endswith("/jobs/x.parquet") and storage.uri() == storage.uri("")


def test_readers_reach_every_storage_through_its_arrow_filesystem(storage):
    table = pa.table({"n": [1, 2, 3], "s": ["a", "b", None]})
    storage.write_parquet("t/p.parquet", table)
    path = storage.arrow_path("t/p.parquet")
    assert pq.read_table(path, filesystem=storage.arrow_filesystem()) == table
    assert storage.is_local == (not storage.uri().startswith("s3://"))


def test_staged_names_mean_the_same_on_every_storage(storage):
    final = "jobs/submitted_month=2025-01/part-000001-abcd-00001.parquet"
    assert storage.staged_name(final) == STAGED
    assert storage.is_staged(STAGED) and not storage.is_staged(final)
    assert not storage.is_staged("jobs/.staged") and not storage.is_staged("jobs/x.staged")


def test_a_new_or_empty_location_is_prepared_once(storage):
    created = Dataset(storage).prepare()
    assert created == storage.is_local  # a directory is made (and may be removed by a failed run); a prefix is not
    assert Dataset(storage).prepare() is False


def test_what_an_interrupted_first_export_leaves_is_no_obstacle(storage):
    storage.create_root()
    for rel in (STAGED, "_oqtopus/lock", "sse_logs/job-1.zip"):
        storage.write_bytes(rel, b"ours")
    assert Dataset(storage).prepare() is False


@pytest.mark.parametrize("foreign", ["notes.txt", "photos/cat.jpg", "jobs/part-0.parquet", "counts/x/data.csv"])
def test_a_location_holding_other_files_and_no_export_is_refused(storage, foreign):
    storage.create_root()
    storage.write_bytes(STAGED, b"ours")
    storage.write_bytes(foreign, b"theirs")
    shown = foreign if foreign.split("/")[0] in ("jobs", "counts") else foreign.split("/")[0]
    with pytest.raises(StoreError, match=rf"is not empty and holds no oqtopus-data export \(it holds {shown}\)"):
        Dataset(storage).prepare()
    assert storage.read_bytes(foreign) == b"theirs"


def test_an_export_location_is_prepared_whatever_else_it_holds(storage):
    storage.write_bytes("README.txt", b"mine")
    with Dataset(storage).writer() as writer:
        writer.commit()
    assert Dataset(storage).prepare() is False


def test_a_local_location_that_is_a_file_is_refused(tmp_path):
    (tmp_path / "out").write_text("a file")
    with pytest.raises(StoreError, match="exists and is not a directory"):
        Dataset(tmp_path / "out").prepare()


def test_unknown_storage_options_are_refused_for_every_kind_of_location(tmp_path, s3):
    with pytest.raises(ConfigError, match=r"unknown storage option 'tyop' for a local directory; it takes none"):
        open_storage(tmp_path, tyop="1")
    with pytest.raises(ConfigError, match=r"unknown storage option 'tyop' for s3://; valid: endpoint_url, region"):
        open_storage(f"s3://{s3.bucket()}/p", tyop="1")
    assert isinstance(open_storage(f"s3://{s3.bucket()}/p", endpoint=s3.endpoint), S3Storage)  # an alias


def test_an_unknown_storage_option_is_a_usage_error_of_every_command_for_a_local_directory(tmp_path):
    out = tmp_path / "out"
    env = {"OQTOPUS_URL": "http://127.0.0.1:9", "OQTOPUS_API_TOKEN": "t" * 16}
    exported = CliRunner().invoke(export_command, ["--storage-option", "tyop=1", str(out)], env=env)
    assert exported.exit_code == 2, exported.output
    assert "unknown storage option 'tyop' for a local directory" in exported.output
    assert not out.exists()
    write_dataset({}, out)
    for args in (["info", str(out)], ["sql", str(out), "SELECT 1"]):
        result = CliRunner().invoke(main, [*args, "--storage-option", "tyop=1"])
        assert result.exit_code == 2, (args, result.output)
        assert "unknown storage option 'tyop' for a local directory; it takes none" in result.output
