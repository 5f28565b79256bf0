"""The analysis views are declared once (oqtopus_data.query.sqltext.VIEWS) and reach every engine from there."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

from oqtopus_data import connect, flatten, write_dataset
from oqtopus_data.query import sqltext
from oqtopus_data.query.ddl import ddl_statements
from oqtopus_data.query.sqltext import View, view_statements, views_file

AT = datetime(2025, 6, 1, tzinfo=UTC)
ROOT = Path(__file__).resolve().parent.parent
#: A view of the kind issue 14 adds: it reads an earlier view, a macro, a string literal with a quote.
QUEUED = View("queued_jobs", "Jobs that waited in the queue, with the UTC day they were submitted.", """
SELECT "job_id", "device_id", "queue_seconds", {utc_date("submitted_at")} AS "day",
       "status" <> 'it''s cancelled' AS "flag"
FROM {job_timings}
WHERE "queue_seconds" > 0""")
EXPECTED = """SELECT job_id, device_id, queue_seconds, CAST(submitted_at AT TIME ZONE 'UTC' AS DATE), true
FROM job_timings WHERE queue_seconds > 0 ORDER BY ALL"""


@pytest.fixture
def exported(tmp_path, good_results) -> Path:
    write_dataset(flatten(good_results, exported_at=AT), tmp_path / "out")
    return tmp_path / "out"


@pytest.fixture
def with_queued(monkeypatch: pytest.MonkeyPatch) -> View:
    monkeypatch.setattr(sqltext, "VIEWS", (*sqltext.VIEWS, QUEUED))
    return QUEUED


def test_a_declared_view_is_in_connect_and_in_the_duckdb_ddl(exported: Path, with_queued: View) -> None:
    reference = connect(exported)
    expected = reference.execute(EXPECTED).fetchall()
    assert expected, "the fixture has jobs that queued"
    from_ddl = duckdb.connect()
    from_ddl.execute(ddl_statements(str(exported), "duckdb", schema="lab"))
    for con, name in ((reference, "queued_jobs"), (from_ddl, "lab.queued_jobs")):
        assert con.execute(f"SELECT * FROM {name} ORDER BY ALL").fetchall() == expected, name


def test_a_declared_view_is_in_the_spark_and_trino_ddl_in_their_dialects(with_queued: View) -> None:
    spark, trino = ddl_statements("/d", "spark", schema="oq"), ddl_statements("/d", "trino", schema="oq")
    assert spark.endswith("""
-- Jobs that waited in the queue, with the UTC day they were submitted.
CREATE OR REPLACE VIEW `oq`.`queued_jobs` AS
SELECT `job_id`, `device_id`, `queue_seconds`, date_from_unix_date(CAST(unix_micros(`submitted_at`) DIV 86400000000 \
AS INT)) AS `day`,
       `status` <> 'it\\'s cancelled' AS `flag`
FROM `oq`.`job_timings`
WHERE `queue_seconds` > 0;
""")
    assert trino.endswith("""
-- Jobs that waited in the queue, with the UTC day they were submitted.
CREATE OR REPLACE VIEW "oq"."queued_jobs" AS
SELECT "job_id", "device_id", "queue_seconds", CAST("submitted_at" AS date) AS "day",
       "status" <> 'it''s cancelled' AS "flag"
FROM "oq"."job_timings"
WHERE "queue_seconds" > 0;
""")


def test_every_engine_gets_every_declared_view_once() -> None:
    for engine in sqltext.ENGINES:
        script = ddl_statements("/d", engine)
        for view in sqltext.VIEWS:
            made = re.findall(rf"^CREATE OR REPLACE VIEW (?:\S+\.)?{re.escape(sqltext.quote(engine, view.name))} AS$",
                              script, re.MULTILINE)
            assert len(made) == 1, (engine, view.name)


def test_a_view_reading_what_is_not_declared_before_it_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    early = View("early", "Reads a view declared after it.", 'SELECT "job_id" FROM {queued_jobs}')
    monkeypatch.setattr(sqltext, "VIEWS", (early, QUEUED))
    with pytest.raises(ValueError, match=r"view 'early' reads \{queued_jobs\}, which is neither a table nor a view"):
        view_statements("duckdb")
    monkeypatch.setattr(sqltext, "VIEWS", (View("odd", "An unknown macro.", 'SELECT {mode("x")} FROM {jobs}'),))
    with pytest.raises(ValueError, match=r"view 'odd' uses \{mode\(\.\.\.\)\}, which is not one of MACROS"):
        view_statements("spark")


def test_every_macro_has_every_engine() -> None:
    assert {name: sorted(spellings) for name, spellings in sqltext.MACROS.items()} == {
        name: sorted(sqltext.ENGINES) for name in sqltext.MACROS}


def test_sql_views_sql_is_generated_from_the_declared_views() -> None:
    assert (ROOT / "sql" / "views.sql").read_text() == views_file(), \
        "regenerate: python -m oqtopus_data.query.sqltext > sql/views.sql"


def test_a_priced_usage_view_describes_itself_as_the_view_of_the_same_name_with_the_cost():
    plain = {view.name: view.comment for view in sqltext.VIEWS}
    for view in sqltext.PRICED_VIEWS:
        if view.name in plain:
            assert view.comment == plain[view.name] + " With the estimated cost.", view.name
