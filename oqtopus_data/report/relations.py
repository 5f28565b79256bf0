"""What a connection holds: whether a table or view exists and its columns, so that sections built on views of
other features (calibration, usage) appear exactly when the export's connection has them."""

from __future__ import annotations

import duckdb


def columns(con: duckdb.DuckDBPyConnection, name: str) -> list[str]:
    """The column names of the table or view `name` on this connection ([] when there is none)."""
    rows = con.execute("SELECT column_name FROM information_schema.columns WHERE table_name = $name "
                       "ORDER BY ordinal_position", {"name": name}).fetchall()
    return [r[0] for r in rows]


def exists(con: duckdb.DuckDBPyConnection, name: str, needed: tuple[str, ...] = ()) -> bool:
    """Whether `name` exists on this connection with at least the columns `needed`."""
    have = columns(con, name)
    return bool(have) and all(c in have for c in needed)
