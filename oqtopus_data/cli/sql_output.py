"""How `oqtopus-data sql` writes a result: an aligned table, CSV, JSON lines or Parquet, to stdout or a file."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any

import click
import pyarrow as pa

from .failures import EXIT_USAGE, fail


def check_output(output: Path) -> None:
    """Refuse, before the query runs, an output file that cannot be written (one sentence, exit 2)."""
    parent = output.absolute().parent
    if not parent.is_dir():
        fail(f"cannot write {output}: the directory {parent} does not exist", EXIT_USAGE)
    if output.is_dir():
        fail(f"cannot write {output}: it is a directory; name a file", EXIT_USAGE)
    if not os.access(parent, os.W_OK):
        fail(f"cannot write {output}: the directory {parent} is not writable", EXIT_USAGE)


def emit(table: pa.Table, fmt: str, output: Path | None) -> None:
    """Write `table` in `fmt`; column names made unique first (a join's two job_id become job_id, job_id_1)."""
    table = table.rename_columns(unique_names(table.column_names))
    if fmt == "parquet":
        assert output is not None  # the command asks for --output with parquet
        import pyarrow.parquet as pq

        _write(output, lambda path: pq.write_table(table, path, compression="zstd"))
        return
    if fmt == "csv":
        import pyarrow.csv as pacsv

        buffer = io.BytesIO()
        pacsv.write_csv(flat(table), buffer)
        text = buffer.getvalue().decode()
    elif fmt == "json":
        text = "".join(json.dumps(row, default=str) + "\n" for row in table.to_pylist())
    else:
        text = aligned(table)
    if output is None:
        click.echo(text, nl=False)
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


def aligned(table: pa.Table) -> str:
    """The rows as a text table with a header, aligned columns and a row count."""
    table = flat(table)
    names = table.column_names
    columns = [["" if v is None else str(v) for v in table.column(i).to_pylist()] for i in range(len(names))]
    rows = list(zip(*columns, strict=True)) if columns else []
    widths = [max([len(n), *(len(v) for v in column)]) for n, column in zip(names, columns, strict=True)]
    out = ["  ".join(n.ljust(w) for n, w in zip(names, widths, strict=True)).rstrip(),
           "  ".join("-" * w for w in widths)]
    out += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    count = table.num_rows
    out.append(f"({count} row{'s' if count != 1 else ''})")
    return "\n".join(out) + "\n"
