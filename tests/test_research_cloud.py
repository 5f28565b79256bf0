"""Issue 23's additions on an export of the local cloud: every view through scan/read, circuit_id, job_qubits and
pandas, each against what the cloud served."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import oqtopus_data as od
from oqtopus_data.client.api import ApiClient
from oqtopus_data.client.config import Credentials
from oqtopus_data.query.views import VIEW_NAMES
from oqtopus_data.results.circuits import circuit_key
from oqtopus_data.run.export import ExportOptions, export
from oqtopus_data.testing import FakeCloud


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, dict[str, Any]]]:
    out = tmp_path_factory.mktemp("cloud") / "out"
    with FakeCloud(n_jobs=150, seed=21) as fake, ApiClient(Credentials(url=fake.url, token=fake.token)) as api:
        fake.add_jobs(40, unfinished=0.0)  # run now, under the devices' current calibration
        assert export(api, out, ExportOptions(page_size=50)).ok
        jobs = {job_id: fake.history.job(job_id) for job_id in fake.history.job_ids()}
    return out, {k: v for k, v in jobs.items() if v["status"] != "registered"}


def test_every_view_reads_through_scan_and_read(cloud: Any) -> None:
    out, _ = cloud
    con = od.connect(out)
    for view in VIEW_NAMES:
        assert od.read(out, view).height == con.execute(f"SELECT count(*) FROM {view}").fetchone()[0], view


def test_circuit_id_is_the_hash_of_the_programs_served(cloud: Any) -> None:
    out, jobs = cloud
    stored = dict(od.read(out, "jobs").select("job_id", "circuit_id").iter_rows())
    for job_id, job in jobs.items():
        program = job["job_info"].get("input", {}).get("program")
        assert stored[job_id] == (circuit_key(program) if program else None), job_id
    repeated = od.connect(out).execute("SELECT count(*) FROM (SELECT circuit_id FROM jobs WHERE circuit_id IS NOT "
                                       "NULL GROUP BY circuit_id HAVING count(DISTINCT device_id) > 1)").fetchone()
    assert repeated[0] > 0  # circuits that ran on several devices


def test_job_qubits_has_each_mapped_qubit_of_each_job(cloud: Any) -> None:
    out, jobs = cloud
    rows = od.connect(out).execute("SELECT job_id, virtual_qubit, physical_qubit, t1 FROM job_qubits").fetchall()
    expected = set()
    for job_id, job in jobs.items():
        mapping = (job["job_info"].get("transpile_result") or {}).get("virtual_physical_mapping")
        if isinstance(mapping, str):
            mapping = json.loads(mapping)
        for virtual, physical in ((mapping or {}).get("qubit_mapping") or {}).items():
            expected.add((job_id, int(virtual), physical))
    assert {(j, v, p) for j, v, p, _ in rows} == expected and len(rows) == len(expected)
    assert sum(1 for *_, t1 in rows if t1 is not None) > 0  # QPU jobs under a known calibration


def test_pandas_keeps_the_outcomes(cloud: Any) -> None:
    pd = pytest.importorskip("pandas")
    out, _ = cloud
    frame = od.connect(out).sql("SELECT outcome, bitstring FROM counts WHERE n_bits <= 64").df()
    assert str(frame["outcome"].dtype) in ("UInt64", "uint64")
    assert all(int(b.replace(" ", "").replace("_", "").removeprefix("0b"), 2) == o
               for b, o in zip(frame["bitstring"], frame["outcome"], strict=True))
    assert isinstance(frame, pd.DataFrame)
