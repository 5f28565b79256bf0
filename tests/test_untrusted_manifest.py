"""A manifest is not trusted: one that names a path outside its table's directory is never used to read or move."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from conftest import result

from oqtopus_data import flatten, read, write_dataset
from oqtopus_data.dataset.dataset import Dataset, compact
from oqtopus_data.errors import StoreError
from oqtopus_data.query.views import DatasetWarning

AT = datetime(2025, 6, 1, tzinfo=UTC)
MONTH_DIR = "jobs/submitted_month=2025-03"


@pytest.fixture
def planted(tmp_path):
    """`out` holds commit 1 (one job); `other/` beside it is another export whose jobs file a manifest may name."""
    out, other = tmp_path / "out", tmp_path / "other"
    write_dataset(flatten([result("sampling_current")], exported_at=AT), out)
    write_dataset(flatten([result("estimation_current")], exported_at=AT), other)
    (foreign,) = Dataset(other).latest().entries("jobs")
    return out, other / foreign.path


def plant(out, version: int, *, path: str | None = None, publish: dict[str, str] | None = None) -> None:
    """Write manifest `version`: commit 1 plus one more jobs file at `path` and/or more `publish` pairs."""
    manifests = out / "_oqtopus" / "manifests"
    body = json.loads((manifests / f"{1:020d}.json").read_text())
    body["version"] = version
    if path is not None:
        body["tables"]["jobs"].append({"path": path, "rows": 1, "bytes": 100, "final": True, "partition": "2025-03"})
    body["publish"].update(publish or {})
    (manifests / f"{version:020d}.json").write_text(json.dumps(body))


def bad_paths(out, outside) -> dict[str, str]:
    own_counts = Dataset(out).latest().entries("counts")[0].path
    return {
        "dot-dot": f"{MONTH_DIR}/../../../{outside.relative_to(out.parent)}",
        "absolute": str(outside),
        "backslash": f"{MONTH_DIR}\\..\\..\\..\\{outside.name}",
        "foreign table": own_counts,
        "other partition": f"jobs/submitted_month=2025-04/{outside.name}",
        "hidden": f"{MONTH_DIR}/.{outside.name}.staged",
    }


@pytest.mark.parametrize("kind", ["dot-dot", "absolute", "backslash", "foreign table", "other partition", "hidden"])
def test_readers_skip_a_manifest_naming_a_path_outside_its_table_and_name_it(planted, kind):
    out, outside = planted
    bad = bad_paths(out, outside)[kind]
    plant(out, 2, path=bad)
    with pytest.warns(DatasetWarning, match="is not a readable oqtopus-data manifest"):
        assert read(out, "jobs")["job_id"].to_list() == [result("sampling_current").job_id]
    manifest = Dataset(out).latest()
    assert manifest.version == 1
    assert f"jobs file {bad!r}" in manifest.notes[0]


def test_a_planted_manifest_alone_is_refused_naming_the_path(planted):
    out, outside = planted
    bad = bad_paths(out, outside)["dot-dot"]
    plant(out, 2, path=bad)
    (out / "_oqtopus" / "manifests" / f"{1:020d}.json").unlink()
    with pytest.raises(StoreError, match=rf"holds no readable manifest \(.*jobs file {bad!r} has an empty, '\.' or "
                                         r"'\.\.' segment\)"):
        read(out, "jobs")


def test_compaction_and_writers_never_read_move_or_delete_a_file_outside_the_dataset(planted, tmp_path):
    out, outside = planted
    victim = tmp_path / "victim.parquet"
    victim.write_bytes(outside.read_bytes())
    own = Dataset(out).latest().entries("jobs")[0].path
    plant(out, 2, path=bad_paths(out, outside)["dot-dot"])  # would be merged by compaction with the own file
    plant(out, 3, publish={own: "../victim.parquet"})  # would be "rolled forward" over the own file
    before = {p: p.read_bytes() for p in (victim, outside, out / own)}
    compact(out)
    assert {p: p.read_bytes() for p in before} == before
    with Dataset(out).writer() as writer:
        writer.commit()
    assert {p: p.read_bytes() for p in before} == before
    manifest = Dataset(out).latest()
    assert manifest.version == 4 and manifest.notes == []  # built on commit 1, the newest readable one
    assert read(out, "jobs")["job_id"].to_list() == [result("sampling_current").job_id]


def test_local_storage_refuses_paths_that_leave_its_root(tmp_path):
    from oqtopus_data.dataset.storage.local import LocalStorage

    (tmp_path / "victim").write_bytes(b"keep")
    storage = LocalStorage(tmp_path / "out")
    for call in (lambda: storage.delete("../victim"), lambda: storage.rename("../victim", "jobs/x.parquet"),
                 lambda: storage.read_bytes(str(tmp_path / "victim")), lambda: storage.write_bytes("a/../../x", b"")):
        with pytest.raises(StoreError, match="may lead outside the dataset"):
            call()
    assert (tmp_path / "victim").read_bytes() == b"keep"
