"""The DuckDB database file of views (`oqtopus-export --duckdb FILE`, `oqtopus-data duckdb`).

Its views name the data files of one commit, so that any DuckDB client reads exactly that commit. A later commit may
replace some of those files (rows of jobs that were not final, compaction), and a view naming a replaced file then
fails, besides missing the newer jobs. So the file says which export and commit it shows (table `oqtopus_views`),
every export run given the file rewrites it whole (also a run cut short, which commits what it fetched), and
`oqtopus-data duckdb OUT_DIR FILE --check` names a stale file.
"""

from __future__ import annotations

import os
from pathlib import Path

import click

from oqtopus_data.dataset.dataset import Dataset
from oqtopus_data.dataset.storage import is_local_location
from oqtopus_data.query.views import connect

INFO_TABLE = "oqtopus_views"


def check_target(location: str, target: Path) -> None:
    """Refuse, before anything runs, a views file that could not be written (usage error)."""
    if not is_local_location(location):
        raise click.UsageError("a DuckDB file of views needs a local export directory: views over an object store "
                               "read through the process that opens them (oqtopus_data.connect)")
    if target.is_dir():
        raise click.BadParameter(f"{target} is a directory; name a file such as views.duckdb", param_hint="FILE")
    if not target.absolute().parent.is_dir():
        raise click.BadParameter(f"the directory {target.absolute().parent} does not exist", param_hint="FILE")


def write_views_file(location: str, target: Path) -> int:
    """(Re)write `target` with the views over the newest commit of the export at `location`; returns the commit.

    Written under a temporary name and renamed over `target`, so a reader never sees half a file."""
    manifest = Dataset(location).require_latest()
    tmp = target.with_name(f".{target.name}.tmp")
    for leftover in (tmp, tmp.with_name(tmp.name + ".wal")):
        leftover.unlink(missing_ok=True)
    con = connect(location, database=str(tmp))
    try:
        con.execute(f"CREATE TABLE {INFO_TABLE} AS SELECT ? AS location, ? AS commit_version, now() AS written_at",
                    [str(Path(location).absolute()), manifest.version])
    finally:
        con.close()
    os.replace(tmp, target)
    return manifest.version


def stale_reason(location: str, target: Path) -> str | None:
    """Why the views file `target` does not show the newest commit of `location`, or None when it does."""
    import duckdb

    try:
        con = duckdb.connect(str(target), read_only=True)
    except duckdb.Error as exc:
        return f"{target} is not a readable DuckDB file ({str(exc).strip()})"
    try:
        row = con.execute(f"SELECT location, commit_version FROM {INFO_TABLE}").fetchone()
    except duckdb.Error:
        row = None
    finally:
        con.close()
    if row is None:
        return f"{target} was not written by oqtopus-data (it has no {INFO_TABLE} table)"
    shown_location, shown = row
    newest = Dataset(location).require_latest().version
    if shown_location != str(Path(location).absolute()):
        return f"{target} shows the export at {shown_location}, not {location}"
    if shown != newest:
        return (f"{target} shows commit {shown} of {location}, which is at commit {newest} now: its views miss the "
                "newer jobs and may name files that are gone")
    return None
