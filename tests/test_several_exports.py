"""Several exports read as one (a lab's accounts): connect/scan/read and `oqtopus-data info|sql|usage|report
DIR...` tag every row with the account its export came from (null where the server has no /users/me), count a job
two exports of the same account hold once, and group usage by comma lists of keys and periods."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from cli_support import run_data

import oqtopus_data as od
from oqtopus_data.client.api import ApiClient
from oqtopus_data.client.config import Credentials
from oqtopus_data.query.usage import usage_figures
from oqtopus_data.run.export import ExportOptions, export
from oqtopus_data.testing import FakeCloud

LAB = {"id": "lab-a", "name": "Alice", "organization": "Lab"}


def exported(cloud: FakeCloud, out: Path, **options: Any) -> Path:
    with ApiClient(Credentials(url=cloud.url, token=cloud.token)) as api:
        assert export(api, out, ExportOptions(page_size=50, **options)).ok
    return out


@pytest.fixture(scope="module")
def group(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Account lab-a exported twice (everything, then its sampling jobs again), and a server without /users/me."""
    root = tmp_path_factory.mktemp("group")
    with FakeCloud(n_jobs=90, seed=11, account=LAB) as cloud:
        whole = exported(cloud, root / "a")
        again = exported(cloud, root / "a-sampling", job_types=("sampling",))
    with FakeCloud(n_jobs=50, seed=12, account=None) as cloud:
        anonymous = exported(cloud, root / "b")
    return {"a": whole, "again": again, "b": anonymous}


def ids(out: Path) -> set[str]:
    return set(od.read(out, "jobs")["job_id"])


def test_rows_are_tagged_with_their_account_and_a_job_held_twice_counts_once(group: dict[str, Path]) -> None:
    a, again, b = group["a"], group["again"], group["b"]
    assert ids(again) and ids(again) < ids(a) and not ids(a) & ids(b)
    con = od.connect([a, again, b])
    by_account = dict(con.execute("SELECT account_id, count(*) FROM jobs GROUP BY ALL").fetchall())
    assert by_account == {"lab-a": len(ids(a)), None: len(ids(b))}
    for table in ("counts", "divided_counts", "estimations"):
        one = od.connect(a).execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        other = od.connect(b).execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        assert con.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == one + other, table
    assert con.execute("SELECT count(*) FROM job_timings").fetchone()[0] == len(ids(a)) + len(ids(b))
    assert con.execute("SELECT * FROM jobs LIMIT 0").description[-1][0] == "account_id"


def test_calibrations_stored_by_two_exports_count_once(group: dict[str, Path], tmp_path: Path) -> None:
    copy = shutil.copytree(group["a"], tmp_path / "copy")
    for table in ("qubit_calibrations", "coupling_calibrations", "devices", "device_calibrations", "jobs"):
        alone = od.connect(group["a"]).execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        both = od.connect([group["a"], copy]).execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        assert both == alone, table


def test_scan_and_read_take_several_exports(group: dict[str, Path]) -> None:
    frame = od.read([group["a"], group["b"]], "jobs")
    assert frame.columns[-1] == "account_id" and frame.height == len(ids(group["a"])) + len(ids(group["b"]))
    assert od.scan([group["a"], group["b"]], "usage_by_device").collect().height > 0


def test_usage_by_account_device_and_quarter(group: dict[str, Path]) -> None:
    exports = [group["a"], group["again"], group["b"]]
    rows = usage_figures(exports, by="account,device").to_pylist()
    assert {r["account_id"] for r in rows} == {"lab-a", None}
    assert sum(r["jobs"] for r in rows) == len(ids(group["a"])) + len(ids(group["b"]))
    quarters = usage_figures(exports, by="quarter").to_pylist()
    months = usage_figures(exports, by="month").to_pylist()
    assert sum(r["jobs"] for r in quarters) == sum(r["jobs"] for r in months)
    assert all(len(r["quarter"]) == 7 and r["quarter"][4:6] == "-Q" for r in quarters if r["quarter"])
    for period, width in (("day", 10), ("week", 8), ("year", 4)):
        keys = [r[period] for r in usage_figures(group["a"], by=period).to_pylist()]
        assert keys and all(len(k) == width for k in keys if k), period
    single = usage_figures(group["a"], by="account").to_pylist()
    assert [(r["account_id"], r["jobs"]) for r in single] == [("lab-a", len(ids(group["a"])))]
    with pytest.raises(ValueError, match="usage by fortnight: choose from day, week"):
        usage_figures(group["a"], by="month,fortnight")


def test_the_commands_take_several_exports(group: dict[str, Path], tmp_path: Path) -> None:
    a, again, b = str(group["a"]), str(group["again"]), str(group["b"])
    done = run_data("usage", a, again, b, "--by", "account,device", "--format", "json")
    assert done.exit_code == 0, done.output
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert sum(r["jobs"] for r in rows) == len(ids(group["a"])) + len(ids(group["b"]))
    done = run_data("sql", a, b, "SELECT count(DISTINCT account_id) AS n, count(*) AS jobs FROM jobs",
                    "--format", "json")
    assert done.exit_code == 0, done.output
    total = len(ids(group["a"])) + len(ids(group["b"]))
    assert [json.loads(line) for line in done.stdout.splitlines()] == [{"n": 1, "jobs": total}]
    done = run_data("info", a, b)
    assert done.exit_code == 0, done.output
    assert f"export {a}:" in done.stdout and f"export {b}:" in done.stdout
    by_account = next(line for line in done.stdout.splitlines() if line.startswith("by account_id: "))
    # the export of a server without /users/me has no account: shown as SQL's null, not Python's None
    assert by_account == f"by account_id: (null) {len(ids(b))}, lab-a {len(ids(a))}" or \
        by_account == f"by account_id: lab-a {len(ids(a))}, (null) {len(ids(b))}", by_account
    assert "None" not in done.stdout
    done = run_data("report", a, b, str(tmp_path / "group.html"))
    assert done.exit_code == 0, done.output
    assert (tmp_path / "group.html").stat().st_size > 10_000
    refused = run_data("usage", a, "--by", "month,fortnight")
    assert refused.exit_code == 2 and "fortnight" in refused.output and "Traceback" not in refused.output


def test_no_export_or_a_missing_one_is_a_clear_error(group: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"connect\(\[\]\): name at least one export"):
        od.connect([])
    done = run_data("usage", str(group["a"]), str(tmp_path / "nowhere"))
    assert done.exit_code == 2 and "nowhere" in done.output and "Traceback" not in done.output
