"""How `oqtopus-data sql` and `usage` write a result: an aligned table, CSV, JSON lines or Parquet, to stdout or a
file; CSV text cells that a spreadsheet would run as a formula are neutralised, and a table shown on a terminal has
its control characters escaped."""

from __future__ import annotations

import io
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click
import pyarrow as pa

from oqtopus_data.cli.console import echo_data
from oqtopus_data.cli.failures import EXIT_USAGE, escaped, fail, is_terminal

#: What a spreadsheet reads as the start of a formula (=HYPERLINK(...), @SUM(...), +1+cmd|..., a tab, a CR).
FORMULA_START = "^[=+\\-@\t\r]"

raw_csv_option = click.option(
    "--raw-csv", is_flag=True,
    help="Write CSV text cells as they are. By default a text cell that begins with =, +, -, @, a tab or a "
         "carriage return gets a leading ' so that a spreadsheet shows it instead of running it as a formula; "
         "numbers are never changed.")


def check_outside(output: Path, location: str) -> None:
    """Refuse an output file inside the export at `location` (resolved, symlinks followed): writing there would
    replace a data file or a manifest, and the export's own files are its business (one sentence, exit 2)."""
    from oqtopus_data.dataset.storage import is_local_location, local_path

    if is_local_location(location):
        root = Path(local_path(location)).expanduser().resolve()
        if output.expanduser().resolve().is_relative_to(root):
            fail(f"cannot write {output}: it is inside the export {location}, whose files it would replace; "
                 "write it outside the export", EXIT_USAGE)


def check_output(output: Path, locations: Sequence[str]) -> None:
    """Refuse, before the query runs, an output file that cannot be written or that lies inside one of the exports
    at `locations` (one sentence, exit 2)."""
    for location in locations:
        check_outside(output, location)
    parent = output.absolute().parent
    if not parent.is_dir():
        fail(f"cannot write {output}: the directory {parent} does not exist", EXIT_USAGE)
    if output.is_dir():
        fail(f"cannot write {output}: it is a directory; name a file", EXIT_USAGE)
    if not os.access(parent, os.W_OK):
        fail(f"cannot write {output}: the directory {parent} is not writable", EXIT_USAGE)


def emit(table: pa.Table, fmt: str, output: Path | None, *, raw_csv: bool = False) -> None:
    """Write `table` in `fmt`; column names made unique first (a join's two job_id become job_id, job_id_1).

    CSV text cells that look like a formula get a leading ' unless `raw_csv`; a table for a terminal shows control
    characters escaped, a file gets the data as it is."""
    table = table.rename_columns(unique_names(table.column_names))
    if fmt == "parquet":
        assert output is not None  # the command asks for --output with parquet
        import pyarrow.parquet as pq

        _write(output, lambda path: pq.write_table(table, path, compression="zstd"))
        return
    if fmt == "csv":
        import pyarrow.csv as pacsv

        buffer = io.BytesIO()
        pacsv.write_csv(flat(table) if raw_csv else neutralised(flat(table)), buffer)
        text = buffer.getvalue().decode()
    elif fmt == "json":
        text = "".join(json.dumps(row, default=str) + "\n" for row in table.to_pylist())
    else:
        text = aligned(table, terminal=output is None and is_terminal())
    if output is None:
        echo_data(text, nl=False)
    else:
        _write(output, lambda path: Path(path).write_text(text, encoding="utf-8"))


def _write(output: Path, write: Any) -> None:
    """Write through a temporary file renamed over `output`: a failed write leaves no half file."""
    tmp = output.with_name(f".{output.name}.tmp")
    try:
        write(str(tmp))
        os.replace(tmp, output)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        fail(f"cannot write {output}: {exc.strerror or exc}", EXIT_USAGE)


def unique_names(names: list[str]) -> list[str]:
    """Names made unique as DuckDB makes them: a repeated name gets _1, _2, ... (skipping names already taken)."""
    taken = set(names)
    seen: set[str] = set()
    out = []
    for name in names:
        if name in seen:
            n = 1
            while f"{name}_{n}" in taken:
                n += 1
            name = f"{name}_{n}"
            taken.add(name)
        seen.add(name)
        out.append(name)
    return out


def flat(table: pa.Table) -> pa.Table:
    """`table` with list, struct and map columns as JSON text (CSV holds only flat values)."""
    for i, field in enumerate(table.schema):
        if pa.types.is_nested(field.type):
            texts = [None if v is None else json.dumps(v, default=str, ensure_ascii=False)
                     for v in table.column(i).to_pylist()]
            table = table.set_column(i, field.name, pa.array(texts, pa.string()))
    return table


def neutralised(table: pa.Table) -> pa.Table:
    """`table` with a leading ' on each text cell a spreadsheet would run as a formula (OWASP's CSV injection
    rule); numbers and other cells unchanged."""
    import pyarrow.compute as pc

    for i, field in enumerate(table.schema):
        if pa.types.is_string(field.type) or pa.types.is_large_string(field.type):
            column = table.column(i)
            formula = pc.fill_null(pc.match_substring_regex(column, FORMULA_START), False)
            table = table.set_column(i, field, pc.if_else(formula, pc.binary_join_element_wise("'", column, ""),
                                                          column))
    return table


def aligned(table: pa.Table, *, terminal: bool = False) -> str:
    """The rows as a text table with a header, aligned columns and a row count; for a `terminal`, control
    characters in names and cells are shown escaped (so they neither act nor break the alignment)."""
    table = flat(table)
    shown = escaped if terminal else str
    names = [shown(n) for n in table.column_names]
    columns = [["" if v is None else shown(str(v)) for v in table.column(i).to_pylist()] for i in range(len(names))]
    rows = list(zip(*columns, strict=True)) if columns else []
    widths = [max([len(n), *(len(v) for v in column)]) for n, column in zip(names, columns, strict=True)]
    out = ["  ".join(n.ljust(w) for n, w in zip(names, widths, strict=True)).rstrip(),
           "  ".join("-" * w for w in widths)]
    out += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    count = table.num_rows
    out.append(f"({count} row{'s' if count != 1 else ''})")
    return "\n".join(out) + "\n"
