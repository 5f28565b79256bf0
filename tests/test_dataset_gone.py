"""An export whose dataset is removed under it (`rm -rf OUT_DIR`) stops with exit 2 and commits nothing."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cli_support import one_sentence, point_at, run_export
from conftest import result

from oqtopus_data import flatten
from oqtopus_data.dataset.dataset import Dataset, write_dataset
from oqtopus_data.errors import DatasetGoneError
from oqtopus_data.testing import FakeCloud, Faults

pytest_plugins = ["cli_env", "s3server"]
AT = datetime(2025, 6, 1, tzinfo=UTC)


def remover(out: Path, *, after: int = 1) -> Any:
    """A listing hook that removes `out` whole when the run asks for its `after`-th page."""
    calls = [0]

    def hook(_cloud: Any, _query: dict[str, str]) -> None:
        calls[0] += 1
        if calls[0] == after:
            shutil.rmtree(out)

    return hook


@pytest.mark.parametrize("first_run", [True, False], ids=["first-run", "continuing"])
def test_a_directory_removed_during_an_export_stops_it_with_exit_2_and_nothing_recreated(tmp_path, env, first_run):
    out = tmp_path / "out"
    faults = Faults()
    with FakeCloud(n_jobs=80, seed=4, faults=faults) as cloud:
        point_at(env, cloud)
        if not first_run:
            assert run_export("-q", "--since", "2024-01-01", out).exit_code == 0
        faults.on_list = remover(out)
        outcome = run_export("-q", "--since", "2024-01-01", "--page-size", "10", out)
        assert not cloud.hook_errors
    assert outcome.exit_code == 2, outcome.output
    message = one_sentence(outcome)
    assert message == (f"the dataset directory {out} was removed or replaced while this export was writing to it, "
                       "so the export stopped and committed nothing there; run it again to start a new export")
    assert not out.exists(), sorted(str(p) for p in out.rglob("*"))


def test_a_directory_removed_and_made_again_is_not_committed_into(tmp_path):
    out = tmp_path / "out"
    write_dataset(flatten([result("sampling_current")], exported_at=AT), out)
    with Dataset(out).writer() as writer:
        shutil.rmtree(out)
        out.mkdir()
        (out / "_oqtopus").mkdir()
        (out / "_oqtopus" / "lock").write_text("")  # a new export's lock file: not the one this writer holds
        with pytest.raises(DatasetGoneError, match="was removed or replaced"):
            writer.commit()
    assert sorted(p.name for p in out.rglob("*")) == ["_oqtopus", "lock"]


def test_a_dataset_whose_id_changed_is_not_committed_into(tmp_path):
    out = tmp_path / "out"
    write_dataset(flatten([result("sampling_current")], exported_at=AT), out)
    with Dataset(out).writer() as writer:
        (out / "_oqtopus" / "dataset_id").write_text("someone else's")
        with pytest.raises(DatasetGoneError):
            writer.commit()
    assert Dataset(out).manifest_versions() == [1]


def test_an_s3_prefix_emptied_during_an_export_is_not_committed_into(s3):
    bucket = s3.bucket()
    url = f"s3://{bucket}/gone"
    dataset = Dataset(url, **s3.options)
    jobs = flatten([result("sampling_current")], exported_at=AT)["jobs"]
    with dataset.writer() as writer:
        writer.write("jobs", jobs)
        writer.commit()
    with dataset.writer() as writer:
        writer.write("jobs", jobs.slice(0, 0))
        client = s3.client()
        for key in s3.keys(bucket, "gone/"):
            client.delete_object(Bucket=bucket, Key=key)
        with pytest.raises(DatasetGoneError, match=f"{url} was removed or replaced"):
            writer.commit()
    assert not [k for k in s3.keys(bucket, "gone/") if "/manifests/" in k]
