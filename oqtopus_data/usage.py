"""Usage figures, the ones a group leader reports to a funder: jobs, shots, execution seconds, failed and cancelled
("wasted") jobs and seconds, median and p90 queue seconds, and with a price table the estimated cost, grouped by
submission month, device or job type over a range of submission dates.

The SQL is the usage views' (viewtext.usage_select): the views, `oqtopus-data usage` and the report count alike.
"""

from __future__ import annotations

from datetime import datetime

import duckdb
import pyarrow as pa

from .prices import Prices
from .sqltext import render
from .times import to_utc
from .views import Location, connect
from .viewtext import usage_select

#: The groupings: --by value -> the key columns.
BY: dict[str, tuple[str, ...]] = {"month": ("month",), "device": ("device_id",), "type": ("job_type",)}


def usage_figures(source: Location | duckdb.DuckDBPyConnection, *, by: str = "month", since: datetime | None = None,
                  until: datetime | None = None, prices: Prices | None = None,
                  **storage_options: str) -> pa.Table:
    """The usage of the jobs submitted from `since` to `until` (inclusive; None: no bound) grouped `by` month,
    device or type, sorted by the key; a `cost`, `currency` and `unpriced_jobs` column only with `prices`.

    `source` is an export's location, or a connection made by `oqtopus_data.connect` (whose `prices`, if it was
    given some, count: pass none here then)."""
    if by not in BY:
        raise ValueError(f"usage by {by!r}: choose one of {', '.join(BY)}")
    if isinstance(source, duckdb.DuckDBPyConnection):
        if prices is not None:
            raise ValueError("give the prices to connect(), which made this connection")
        con = source
        priced = bool(con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'prices'").fetchone()[0])
    else:
        con, priced = connect(source, prices=prices, **storage_options), prices is not None
    terms, params = [], []
    for bound, op in ((since, ">="), (until, "<=")):
        if bound is not None:
            terms.append(f't."submitted_at" {op} ?')
            params.append(to_utc(bound))
    sql = render(usage_select(BY[by], priced=priced, where=" AND ".join(terms)))
    keys = ", ".join(f"{i + 1} NULLS LAST" for i in range(len(BY[by])))
    return con.sql(f"{sql}\nORDER BY {keys}", params=params).to_arrow_table()
