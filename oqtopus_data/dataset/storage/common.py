"""What every storage shares, whatever holds the bytes: paths that stay inside the dataset, where the writer lock
and the staged files go, how Parquet is written, and how storage options are checked."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from oqtopus_data.errors import ConfigError, DatasetGoneError, StoreError

PARQUET_OPTIONS = {"compression": "zstd", "compression_level": 3, "use_dictionary": True, "write_statistics": True}


def write_parquet_into(sink: Any, data: pa.Table | Iterable[pa.Table]) -> None:
    """Write `data` as Parquet into `sink`: a table, or tables of one schema written one after another (each its
    own row groups), so that a merge holds one part in memory at a time (compaction)."""
    if isinstance(data, pa.Table):
        pq.write_table(data, sink, **PARQUET_OPTIONS)
        return
    writer = None
    try:
        for part in data:
            if writer is None:
                writer = pq.ParquetWriter(sink, part.schema, **PARQUET_OPTIONS)
            writer.write_table(part)
    finally:
        if writer is not None:
            writer.close()
    if writer is None:
        raise ValueError("no table to write")
META_DIR = "_oqtopus"  # the dataset's own files: manifests and the writer lock
LOCK = f"{META_DIR}/lock"
_STAGED = ".staged"


def gone(where: str) -> DatasetGoneError:
    """The error of a run whose dataset was removed or replaced under it: one sentence, nothing committed."""
    return DatasetGoneError(f"{where} was removed or replaced while this export was writing to it, so the export "
                            "stopped and committed nothing there; run it again to start a new export")


def path_problem(rel: object) -> str | None:
    """Why `rel` is not a path inside a dataset (relative, `/`-separated, no `.`/`..` segment), or None if it is."""
    if not isinstance(rel, str) or not rel:
        return "is empty or not text"
    if "\\" in rel:
        return "contains a backslash"
    if "\0" in rel:
        return "contains a NUL character"
    if rel.startswith("/"):
        return "is an absolute path"
    if any(part in ("", ".", "..") for part in rel.split("/")):
        return "has an empty, '.' or '..' segment"
    return None


def inside(rel: str) -> str:
    """`rel` if it stays inside the dataset; a StoreError otherwise (a storage never touches anything outside)."""
    problem = path_problem(rel)
    if problem is not None:
        raise StoreError(f"refusing the path {rel!r}: it {problem}, so it may lead outside the dataset")
    return rel


def staged_name(rel: str) -> str:
    """The hidden name a file is written under until a commit publishes it (Spark, Hive and Trino skip dot files)."""
    directory, _, name = rel.rpartition("/")
    return f"{directory}/.{name}{_STAGED}" if directory else f".{name}{_STAGED}"


def is_staged(rel: str) -> bool:
    """Whether `rel` is the staged name of some file (see `staged_name`)."""
    name = rel.rpartition("/")[2]
    return name.startswith(".") and name.endswith(_STAGED) and len(name) > 1 + len(_STAGED)


def check_options(options: dict[str, object], known: tuple[str, ...], where: str,
                  aliases: dict[str, str] | None = None) -> dict[str, str]:
    """`options` under their canonical names, as text; a ConfigError naming an unknown one and the valid ones."""
    out = {}
    for key, value in options.items():
        name = (aliases or {}).get(key, key)
        if name not in known:
            valid = f"valid: {', '.join(known)}" if known else "it takes none"
            raise ConfigError(f"unknown storage option {key!r} for {where}; {valid}")
        out[name] = str(value)
    return out
