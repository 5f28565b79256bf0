"""Usage figures, the ones a group leader reports to a funder: jobs, shots, execution seconds, failed and cancelled
("wasted") jobs and seconds, median and p90 queue seconds, and with a price table the estimated cost, grouped by
submission day, week, month, quarter or year, device, job type or account (any of them together) over a range of
submission dates, for one export or several read as one (`connect([...])`).

The SQL is the usage views' (viewtext.usage_select): the views, `oqtopus-data usage` and the report count alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import duckdb
import pyarrow as pa

from oqtopus_data.query.prices import Prices
from oqtopus_data.query.sqltext import render
from oqtopus_data.query.views import Location, connect
from oqtopus_data.query.viewtext import USAGE_PERIODS, usage_select, usage_source
from oqtopus_data.times import to_utc

#: The groupings: a --by name -> the key column it adds (its name in the output).
BY: dict[str, str] = {"day": "day", "week": "week", "month": "month", "quarter": "quarter", "year": "year",
                      "device": "device_id", "type": "job_type", "account": "account_id"}
_COLUMNS = {**{p: p for p in USAGE_PERIODS}, "account_id": "account_id"}


def usage_keys(by: str | Sequence[str]) -> tuple[str, ...]:
    """The key columns of a grouping: one name of BY, a comma list of them (`month,device`) or a sequence."""
    names = [n.strip() for n in (by.split(",") if isinstance(by, str) else by)]
    unknown = [n for n in names if n not in BY]
    if unknown or not names:
        raise ValueError(f"usage by {','.join(unknown) or repr(by)}: choose from {', '.join(BY)} (a comma list "
                         "groups by several)")
    if len(set(names)) < len(names):
        raise ValueError(f"usage by {','.join(names)}: each name once")
    return tuple(BY[n] for n in names)


def usage_figures(source: Location | Sequence[Location] | duckdb.DuckDBPyConnection, *,
                  by: str | Sequence[str] = "month", since: datetime | None = None, until: datetime | None = None,
                  prices: Prices | None = None, **storage_options: str) -> pa.Table:
    """The usage of the jobs submitted from `since` to `until` (inclusive; None: no bound) grouped `by` (usage_keys:
    e.g. "month", "quarter,device", "account,device"), sorted by the keys; a `cost`, `currency` and
    `unpriced_jobs` column only with `prices`.

    `source` is an export's location, several (read as one, each job under its account), or a connection made by
    `oqtopus_data.connect` (whose `prices`, if it was given some, count: pass none here then)."""
    keys = usage_keys(by)
    if isinstance(source, duckdb.DuckDBPyConnection):
        if prices is not None:
            raise ValueError("give the prices to connect(), which made this connection")
        con = source
        priced = bool(con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'prices'").fetchone()[0])
    else:
        if "account_id" in keys and not isinstance(source, list | tuple):
            source = [source]  # a list, even of one, tags each job with its export's account
        con, priced = connect(source, prices=prices, **storage_options), prices is not None
    terms, params = [], []
    for bound, op in ((since, ">="), (until, "<=")):
        if bound is not None:
            terms.append(f't."submitted_at" {op} ?')
            params.append(to_utc(bound))
    tagged = "account_id" in {d[0] for d in con.execute("SELECT * FROM jobs LIMIT 0").description}
    sql = render(usage_select(keys, priced=priced, where=" AND ".join(terms), source=usage_source(tagged),
                              columns=_COLUMNS))
    order = ", ".join(f"{i + 1} NULLS LAST" for i in range(len(keys)))
    return con.sql(f"{sql}\nORDER BY {order}", params=params).to_arrow_table()
