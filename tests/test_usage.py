"""Usage accounting: the usage views against sums computed directly from `jobs`, the price table and its checks,
the estimated cost against a hand computation, and `oqtopus-data usage`."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from calibration_export import build
from cli_support import run_data

from oqtopus_data import connect, read
from oqtopus_data.client.api import ApiClient
from oqtopus_data.client.config import Credentials
from oqtopus_data.query.prices import PriceError, load_prices
from oqtopus_data.query.usage import usage_figures
from oqtopus_data.run.export import ExportOptions, export
from oqtopus_data.testing import FakeCloud

MEASURES = ["jobs", "shots", "execution_seconds", "wasted_jobs", "wasted_seconds", "median_queue_seconds",
            "p90_queue_seconds"]
PRICES = ("device_id,per_shot,per_second,currency,valid_from\n"
          "QPU,0.0078125,0.5,JPY,\n"
          "QPU,0.015625,1,JPY,2025-01-01T12:00:00Z\n")
# The hand export's QPU jobs at those prices: shots x per-shot if it ran, plus seconds x per-second.
COSTS = {"a-before": 1000 / 128 + 4 * 0.5, "b-between": 2000 / 128 + 8 * 0.5, "h-bad-mapping": 1000 / 128 + 2 * 0.5,
         "c-at-the-instant": 1000 / 64 + 1.0, "d-after-some-uncalibrated": 1000 / 64 + 16.0,
         "e-never-ran": 0.0, "g-no-mapping": 1000 / 64 + 0.25}


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("usage") / "out"
    with FakeCloud(n_jobs=400, seed=7) as cloud, ApiClient(Credentials(url=cloud.url, token=cloud.token)) as api:
        assert export(api, out, ExportOptions(page_size=100)).ok
    return out


@pytest.fixture(scope="module")
def hand(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build(tmp_path_factory.mktemp("hand") / "out")


@pytest.fixture
def prices_csv(tmp_path: Path) -> Path:
    path = tmp_path / "prices.csv"
    path.write_text(PRICES)
    return path


def by_hand(out: Path, keys: list[str]) -> dict[tuple, list]:
    """The usage measures per group, summed in Python from the jobs table."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for job in read(out, "jobs").to_dicts():
        groups[tuple(job["submitted_month"] if k == "month" else job[k] for k in keys)].append(job)
    out_rows = {}
    for key, jobs in groups.items():
        seconds = [j["execution_time"] for j in jobs if j["execution_time"] is not None]
        wasted = [j for j in jobs if j["status"] in ("failed", "cancelled")]
        queue = [(j["running_at"] - j["submitted_at"]).total_seconds() for j in jobs
                 if j["running_at"] is not None and j["submitted_at"] is not None]
        out_rows[key] = [len(jobs), sum(j["shots"] for j in jobs), round(sum(seconds), 3), len(wasted),
                         round(sum(j["execution_time"] or 0 for j in wasted), 3),
                         round(float(np.quantile(queue, 0.5)), 3) if queue else None,
                         round(float(np.quantile(queue, 0.9)), 3) if queue else None]
    return out_rows


@pytest.mark.parametrize(("view", "keys"), [("usage_monthly", ["month", "device_id", "job_type"]),
                                            ("usage_by_device", ["device_id"])])
def test_usage_views_equal_sums_computed_from_the_jobs(exported: Path, view: str, keys: list[str]) -> None:
    found = connect(exported).execute(f"SELECT {', '.join(keys + MEASURES)} FROM {view}").fetchall()
    got = {tuple(r[:len(keys)]): list(r[len(keys):]) for r in found}
    expected = by_hand(exported, keys)
    assert sorted(got, key=str) == sorted(expected, key=str) and len(got) > (20 if len(keys) > 1 else 3)
    for key, measures in expected.items():
        assert got[key] == pytest.approx(measures, abs=1.5e-3), key  # sums rounded to the millisecond


def test_without_prices_no_cost_column_is_shown(hand: Path) -> None:
    con = connect(hand)
    for view in ("usage_monthly", "usage_by_device"):
        columns = [d[0] for d in con.execute(f"SELECT * FROM {view}").description]
        assert not {"cost", "currency", "unpriced_jobs"} & set(columns), view
    assert con.execute("SELECT count(*) FROM duckdb_views() WHERE view_name = 'job_costs'").fetchone() == (0,)


def test_each_job_costs_its_devices_price_valid_when_it_was_submitted(hand: Path, prices_csv: Path) -> None:
    con = connect(hand, prices=prices_csv)
    assert dict(con.execute("SELECT job_id, cost FROM job_costs").fetchall()) == COSTS
    relation = con.sql("SELECT * FROM usage_by_device ORDER BY device_id")
    rows = [dict(zip(relation.columns, r, strict=True)) for r in relation.fetchall()]
    assert [(r["device_id"], r["cost"], r["currency"], r["unpriced_jobs"]) for r in rows] == [
        ("QPU", sum(COSTS.values()), "JPY", 0), ("SIM", None, "JPY", 1)]
    assert relation.columns[-3:] == ["cost", "currency", "unpriced_jobs"]


def test_a_price_table_can_be_given_as_rows_or_an_arrow_table(hand: Path) -> None:
    rows = [{"device_id": "QPU", "per_shot": 0, "per_second": 2, "currency": "EUR", "valid_from": None}]
    for prices in (rows, load_prices(rows)):
        found = connect(hand, prices=prices).execute("SELECT sum(cost) FROM job_costs").fetchone()[0]
        assert found == 2 * (4 + 8 + 1 + 16 + 0.25 + 2)


@pytest.mark.parametrize(("text", "problem"), [
    ("device_id,per_shot,currency,valid_from\nQPU,1,JPY,\n",
     "{path}: the header must name the columns device_id, per_shot, per_second, currency, valid_from (missing "
     "per_second)"),
    ("device_id,per_shot,per_second,currency,valid_from,note\nQPU,1,1,JPY,,x\n",
     "{path}: the header must name the columns device_id, per_shot, per_second, currency, valid_from (unknown note)"),
    ("device_id,per_shot,per_second,currency,valid_from\nQPU,abc,1,JPY,\n", "{path}, line 2: per_shot 'abc' is not a "
                                                                            "number"),
    ("device_id,per_shot,per_second,currency,valid_from\nQPU,1,-2,JPY,\n", "{path}, line 2: per_second '-2' is not a "
                                                                           "price (a number of 0 or more)"),
    ("device_id,per_shot,per_second,currency,valid_from\nQPU,,1,JPY,\n", "{path}, line 2: per_shot is empty (write 0 "
                                                                         "for no per-shot price)"),
    ("device_id,per_shot,per_second,currency,valid_from\nQPU,1,1,JPY,soon\n",
     "{path}, line 2: valid_from is not an ISO-8601 date-time: 'soon' (give a date, 2025-04-01, or a date-time)"),
    ("device_id,per_shot,per_second,currency,valid_from\nQPU,1,1,JPY\n",
     "{path}, line 2: it does not have the header's 5 fields"),
    ("device_id,per_shot,per_second,currency,valid_from\nQPU,1,1,JPY,\nSIM,1,1,USD,\n",
     "{path} mixes currencies (JPY, USD): costs in different currencies cannot be added; give every price in one "
     "currency"),
    ("device_id,per_shot,per_second,currency,valid_from\nQPU,1,1,JPY,2025-01-01\nQPU,2,2,JPY,2025-01-01T00:00Z\n",
     "{path}: device QPU has two prices valid from 2025-01-01 00:00:00+00:00"),
    ("device_id,per_shot,per_second,currency,valid_from\n", "{path} has no prices: give one row per device "
                                                            "(device_id, per_shot, per_second, currency, valid_from)"),
])
def test_a_bad_price_file_is_refused_naming_the_line_and_the_problem(tmp_path: Path, text: str,
                                                                     problem: str) -> None:
    path = tmp_path / "prices.csv"
    path.write_text(text)
    with pytest.raises(PriceError) as caught:
        load_prices(path)
    assert str(caught.value) == problem.format(path=path)


def test_usage_figures_select_by_submission_date_and_group_by_type(hand: Path) -> None:
    from datetime import UTC, datetime

    table = usage_figures(hand, by="type", since=datetime(2025, 1, 1, tzinfo=UTC),
                          until=datetime(2025, 1, 1, 23, 59, 59, tzinfo=UTC))
    # Submitted on 1 January: b, c (failed, 1 s), e (cancelled, never ran), h; queues 1 h, 4 h, 1 h.
    assert table.to_pylist() == [{"job_type": "sampling", "jobs": 4, "shots": 4500, "execution_seconds": 11.0,
                                  "wasted_jobs": 2, "wasted_seconds": 1.0, "median_queue_seconds": 3600.0,
                                  "p90_queue_seconds": 3600 + 0.8 * 10800}]


def test_the_usage_command_prints_the_figures_as_csv(hand: Path) -> None:
    done = run_data("usage", hand, "--by", "type", "--since", "2025-01-01", "--until", "2025-01-01",
                    "--format", "csv")
    assert done.exit_code == 0, done.output
    assert done.stdout == ('"job_type","jobs","shots","execution_seconds","wasted_jobs","wasted_seconds",'
                           '"median_queue_seconds","p90_queue_seconds"\n"sampling",4,4500,11,2,1,3600,12240\n')


def test_the_usage_command_adds_the_cost_with_prices(hand: Path, prices_csv: Path) -> None:
    done = run_data("usage", hand, "--by", "device", "--prices", prices_csv, "--format", "json")
    assert done.exit_code == 0, done.output
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert [(r["device_id"], r["jobs"], r["cost"], r["currency"], r["unpriced_jobs"]) for r in rows] == [
        ("QPU", 7, sum(COSTS.values()), "JPY", 0), ("SIM", 1, None, "JPY", 1)]


def test_the_usage_command_shows_a_table_by_month_by_default(hand: Path) -> None:
    done = run_data("usage", hand)
    assert done.exit_code == 0, done.output
    lines = done.stdout.splitlines()
    assert lines[0].split() == ["month", *MEASURES] and lines[-1] == "(2 rows)"
    assert lines[2].split()[:3] == ["2024-12", "1", "1000"] and lines[3].split()[:3] == ["2025-01", "7", "7500"]


def test_a_bad_price_file_is_one_sentence_and_exit_2(hand: Path, tmp_path: Path) -> None:
    done = run_data("usage", hand, "--prices", tmp_path / "missing.csv")
    assert done.exit_code == 2 and done.stdout == ""
    assert done.stderr == (f"oqtopus-data: cannot read the price file {tmp_path / 'missing.csv'}: No such file or "
                           "directory\n")
