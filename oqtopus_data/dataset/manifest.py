"""Commit manifests: the live files of one commit and its export state, read back only when they can be trusted.

A manifest is checked whole before anything uses it: every path it names must stay inside its table's directory of
the dataset (relative, `/`-separated, no `.` or `..` segment, no backslash or NUL) and every staged name must be the
hidden twin of a file it names. A manifest that fails (truncated, not JSON, planted with `../` paths) is unreadable:
readers and writers skip it for the newest readable one and say so, so it can never make a reader open, or a writer
rename or delete, a file outside the dataset.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from oqtopus_data import __version__
from oqtopus_data.dataset.storage import Storage, path_problem, staged_name
from oqtopus_data.dataset.storage.common import META_DIR
from oqtopus_data.errors import StoreError
from oqtopus_data.tables import schema as S

MANIFEST_DIR = f"{META_DIR}/manifests"
FORMAT = "oqtopus-data"
LOG_DIR = "sse_logs"  # the SSE log archives (`--sse-logs`), named by job, indexed by the sse_logs table
# Directory of each table; the SSE log archives themselves live in LOG_DIR, so their index table does not.
TABLE_DIRS = {name: name for name in S.TABLES} | {"sse_logs": "sse_log_index"}


REBUILD = "or rebuild it with `oqtopus-export --full-refresh`"
#: How a dataset that lost data files is mended: the next export fetches the jobs they held again.
REPAIR = "fetch their jobs again with `oqtopus-export --repair`"


class ManifestError(StoreError):
    """A manifest that cannot be used (truncated, malformed, or naming a path outside the dataset)."""


@dataclass(frozen=True)
class FileEntry:
    """One data file of a commit."""

    table: str
    path: str
    rows: int
    bytes: int
    final: bool = True
    partition: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "rows": self.rows, "bytes": self.bytes, "final": self.final,
                "partition": self.partition}


@dataclass
class Manifest:
    """One commit: the live files of every table and the export state that goes with them.

    `notes` (never written) say why a newer manifest was skipped to read this one; `located` (never written) maps a
    file's path to where it can be read now, once `Dataset.verified` has checked that every file is there.
    """

    version: int
    files: dict[str, list[FileEntry]]
    state: dict[str, Any] = field(default_factory=dict)
    schema_version: int = S.SCHEMA_VERSION
    created_at: str = ""
    operation: str = ""
    info: dict[str, Any] = field(default_factory=dict)
    publish: dict[str, str] = field(default_factory=dict)  # final path -> staged path, until renamed
    notes: list[str] = field(default_factory=list, compare=False)
    located: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    def entries(self, table: str) -> list[FileEntry]:
        """The files of `table` (empty when it has none)."""
        return self.files.get(table, [])

    def all_entries(self) -> list[FileEntry]:
        """Every file of the commit, table by table."""
        return [e for es in self.files.values() for e in es]

    def rows(self, table: str) -> int:
        """Rows of `table` in this commit."""
        return sum(e.rows for e in self.entries(table))

    def to_bytes(self) -> bytes:
        body = {
            "format": FORMAT,
            "schema_version": self.schema_version,
            "version": self.version,
            "created_at": self.created_at,
            "operation": self.operation,
            "writer": f"oqtopus-data {__version__}",
            "tables": {t: [e.to_json() for e in es] for t, es in sorted(self.files.items())},
            "state": self.state,
            "info": self.info,
            "publish": self.publish,
        }
        return json.dumps(body, indent=1, sort_keys=True).encode()

    @classmethod
    def from_bytes(cls, data: bytes, where: str, *, version: int | None = None) -> Manifest:
        """Parse and check a manifest; `version` is the one its file name says. ManifestError when unusable."""
        try:
            body = json.loads(data)
            if not isinstance(body, dict) or body.get("format") != FORMAT:
                raise ValueError("not an oqtopus-data manifest")
            schema_version = _count(body["schema_version"], "schema_version")
            if schema_version > S.SCHEMA_VERSION:
                raise _NewerSchema(schema_version)
            files = {t: [_entry(t, e) for e in _list(es, f"tables.{t}")]
                     for t, es in _dict(body["tables"], "tables").items()}
            manifest = cls(_count(body["version"], "version"), files, _dict(body.get("state") or {}, "state"),
                           schema_version, str(body.get("created_at", "")), str(body.get("operation", "")),
                           _dict(body.get("info") or {}, "info"), _publish(body.get("publish") or {}, files))
            if version is not None and manifest.version != version:
                raise ValueError(f"it says version {manifest.version}, its file name {version}")
        except _NewerSchema as exc:
            raise StoreError(
                f"{where} was written by a newer oqtopus-data (schema version {exc.args[0]}, this one "
                f"reads up to {S.SCHEMA_VERSION}); upgrade oqtopus-data to read or extend it") from None
        except (ValueError, KeyError, TypeError, RecursionError) as exc:  # RecursionError: JSON nested too deep
            reason = f"missing field {exc}" if isinstance(exc, KeyError) else str(exc)
            raise ManifestError(f"{where} is not a readable oqtopus-data manifest: {reason}") from None
        # Each step goes here as `if v == N: ...; v = N + 1`. 1 -> 2 (jobs.extra, estimations.operator_coeff_imag)
        # needs nothing: the readers take a column a file lacks as nulls. 2 -> 3 (the qubit_calibrations and
        # coupling_calibrations tables) needs nothing either: a table a commit names no file of reads as empty.
        return manifest


class _NewerSchema(Exception):
    """A manifest of a newer schema: refused outright, never skipped for an older one."""


class MissingFilesError(StoreError):
    """Files a commit names are gone (deleted by hand, a half-copied dataset); `missing` says which."""

    def __init__(self, where: str, version: int | None, missing: list[FileEntry], fix: str) -> None:
        shown = ", ".join(e.path for e in missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        commit = "the commit" if version is None else f"commit {version}"
        super().__init__(f"{where}: {len(missing)} data file(s) of {commit} are missing ({shown}); {fix}")
        self.version = version
        self.missing = missing

    @property
    def months(self) -> list[str]:
        """The `submitted_month` partitions of per-job tables that lost a file: what a repair fetches again."""
        return partitions_of(self.missing)


def partitions_of(entries: list[FileEntry]) -> list[str]:
    """The `submitted_month` partitions of the per-job files among `entries`, sorted."""
    return sorted({e.partition for e in entries if S.TABLES[e.table].partitioned and e.partition})


def list_versions(storage: Storage) -> list[int]:
    """The versions of the manifests in `storage`, oldest first (readable or not)."""
    versions = []
    for rel in storage.list(MANIFEST_DIR):
        name = rel.rsplit("/", 1)[-1]
        if name.endswith(".json") and name[:-5].isdigit():
            versions.append(int(name[:-5]))
    return sorted(versions)


def none_readable(storage: Storage, notes: list[str]) -> ManifestError:
    """The error for a dataset whose every manifest was skipped (`notes` say why)."""
    return ManifestError(f"{storage.uri('')} holds no readable manifest ({notes[0]}): restore {MANIFEST_DIR}/ from "
                         f"where the dataset came from, {REBUILD}")


def present(storage: Storage) -> set[str]:
    """Every file under the table directories: one listing each, never one request per file."""
    return {rel for directory in sorted(set(TABLE_DIRS.values())) for rel in storage.list(directory)}


def read_newest(storage: Storage, versions: list[int]) -> tuple[Manifest | None, list[str]]:
    """The newest of `versions` that reads and passes every check, and why each newer one was skipped.

    Skipping is what lets a truncated or planted newest manifest block nothing: older manifests are kept for this.
    A manifest of a newer schema is never skipped (StoreError): an older commit would silently hide its data.
    """
    notes: list[str] = []
    for version in reversed(versions):
        name = manifest_name(version)
        where = storage.uri(name)
        try:
            manifest = Manifest.from_bytes(storage.read_bytes(name), where, version=version)
        except FileNotFoundError:
            continue  # pruned by a writer since it was listed
        except ManifestError as exc:
            notes.append(str(exc))
            continue
        except OSError as exc:
            raise StoreError(f"cannot read {where}: {exc.strerror or exc}") from exc
        if notes:
            notes.append(f"read commit {version} of {manifest.created_at or 'unknown time'} instead, the newest "
                         "readable one; the next export continues from it")
            manifest.notes = list(notes)
        return manifest, notes
    return None, notes


def locate(manifest: Manifest, present: set[str]) -> list[FileEntry]:
    """Fill `manifest.located` from the files `present` (a listing); return the entries found under neither name."""
    missing = []
    for entry in manifest.all_entries():
        staged = manifest.publish.get(entry.path)
        if entry.path in present:
            manifest.located[entry.path] = entry.path
        elif staged is not None and staged in present:  # committed, not yet published
            manifest.located[entry.path] = staged
        else:
            missing.append(entry)
    return missing


def manifest_name(version: int) -> str:
    """The path of commit `version`'s manifest."""
    return f"{MANIFEST_DIR}/{version:020d}.json"


def table_directory(table: str, partition: str | None) -> str:
    """The directory a file of `table` (and of `partition`, for a partitioned table) lives in."""
    partitioned = S.TABLES[table].partitioned and bool(partition)
    return TABLE_DIRS[table] + (f"/{S.PARTITION_COLUMN}={partition}" if partitioned else "")


def _entry(table: str, raw: Any) -> FileEntry:
    if table not in TABLE_DIRS:
        raise ValueError(f"unknown table {table!r}")
    raw = _dict(raw, f"a file of {table}")
    path, partition = raw["path"], raw.get("partition")
    if partition is not None and not isinstance(partition, str):
        raise ValueError(f"{table} file {path!r} has a partition that is not text")
    _check_path(table, path, partition)
    if not isinstance(raw["final"], bool):
        raise ValueError(f"{table} file {path!r}: 'final' is not true or false")
    return FileEntry(table, path, _count(raw["rows"], "rows"), _count(raw["bytes"], "bytes"), raw["final"],
                     partition)


def _check_path(table: str, path: Any, partition: str | None) -> None:
    """A data file path must be a Parquet file right inside its table's (partition) directory."""
    problem = path_problem(path)
    if problem is not None:
        raise ValueError(f"{table} file {path!r} {problem}")
    directory, _, name = path.rpartition("/")
    expected = table_directory(table, partition)
    if directory != expected or name.startswith(".") or not name.endswith(".parquet"):
        raise ValueError(f"{table} file {path!r} is not a .parquet file of {expected}/")


def _publish(raw: Any, files: dict[str, list[FileEntry]]) -> dict[str, str]:
    named = {e.path for es in files.values() for e in es}
    out = {}
    for final, staged in _dict(raw, "publish").items():
        if final not in named:
            raise ValueError(f"publish names {final!r}, which is no file of the commit")
        if staged != staged_name(final):
            raise ValueError(f"publish would move {staged!r} to {final!r}: not its staged name")
        out[final] = staged
    return out


def _dict(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError(f"{what} is not an object")
    return value


def _list(value: Any, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise ValueError(f"{what} is not a list")
    return value


def _count(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{what} {value!r} is not a count")
    return value
