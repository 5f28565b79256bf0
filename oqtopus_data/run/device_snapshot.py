"""A device snapshot in a commit: the `devices` table and the calibrations not stored yet (calibrations.py).

Every export run takes one. `oqtopus-export --devices-only` takes one and nothing else (`export_devices`): a few
requests, no listing, the sync state left as it is, so a cron entry every 15 minutes builds a calibration history.
`record_snapshots` commits snapshots taken elsewhere (saved GET /devices answers, the demo's history) at once.
"""

from __future__ import annotations

import contextlib
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from oqtopus_data.dataset.datafiles import where
from oqtopus_data.dataset.dataset import Dataset
from oqtopus_data.dataset.manifest import REBUILD, Manifest
from oqtopus_data.dataset.state import Source, SyncState
from oqtopus_data.dataset.writer import Writer
from oqtopus_data.errors import ConfigError, OqtopusDataError, StoreError
from oqtopus_data.run.checkpoint import conclude
from oqtopus_data.run.info import ExportReport
from oqtopus_data.tables.calibrations import Key, calibration_rows
from oqtopus_data.tables.devices import check_device_names, devices_snapshot
from oqtopus_data.tables.flatten import error_rows

if TYPE_CHECKING:
    from oqtopus_data.client.api import ApiClient

CALIBRATION_TABLES = ("qubit_calibrations", "coupling_calibrations")
#: The stages of run-level errors a snapshot makes: each snapshot replaces the ones of the last.
SNAPSHOT_STAGES = ("devices", "calibration")
#: The snapshot's tables, in the order they are written.
SNAPSHOT_TABLES = ("devices", *CALIBRATION_TABLES)


@dataclass
class SnapshotWritten:
    """What the snapshots added: rows per table, the new calibrations, and the records left out (errors rows)."""

    rows: Counter[str] = field(default_factory=Counter)
    new: list[Key] = field(default_factory=list)
    errors: list[tuple[None, str, str]] = field(default_factory=list)

    def tell(self, report: ExportReport, notice: Callable[[str], None]) -> None:
        """Add what was written to `report`, and say each record left out."""
        report.rows.update(self.rows)
        report.calibrations += self.new
        for _job_id, stage, message in self.errors:
            notice(f"{stage}: {message}")


def check_devices(names: Sequence[str], devices: list[dict[str, Any]] | None, dataset: Dataset,
                  notice: Callable[[str], None]) -> None:
    """Refuse a --device no one has heard of (a typo would select nothing and lock the directory to it)."""
    if not names:
        return
    if devices is None:
        notice("GET /devices failed: the --device names could not be checked")
        return
    known = [d.get("device_id") for d in devices if isinstance(d, dict)]
    with contextlib.suppress(OqtopusDataError):  # devices seen before (retired ones, no longer listed) count
        known += dataset.read_table("devices")["device_id"].to_pylist()
    try:
        check_device_names(names, known)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def write_snapshots(writer: Writer, snapshots: Iterable[tuple[datetime, Any]]) -> SnapshotWritten:
    """Write (snapshot time, GET /devices records) snapshots into the writer's commit: every device of each, and
    each calibration whose (device_id, calibrated_at) the commit does not hold yet, first seen at its snapshot."""
    known = stored_calibrations(writer)
    parts: dict[str, list[pa.Table]] = {name: [] for name in SNAPSHOT_TABLES}
    out = SnapshotWritten()
    for at, records in snapshots:
        devices = devices_snapshot(records, at)
        calibrations = calibration_rows(records, at, known)
        for name, table in zip(SNAPSHOT_TABLES, (devices.table, calibrations.qubits, calibrations.couplings),
                               strict=True):
            parts[name].append(table)
        out.new += calibrations.new
        out.errors += devices.errors + calibrations.errors
    for name, tables in parts.items():
        table = pa.concat_tables(tables) if tables else None
        if table is not None and table.num_rows:
            writer.write(name, table, final=True)
            out.rows[name] += table.num_rows
    return out


def stored_calibrations(writer: Writer) -> set[Key]:
    """The (device_id, calibrated_at) of every calibration in the writer's commit, from those two columns of the
    calibration files (a few rows per qubit and calibration: small)."""
    keys: set[Key] = set()
    storage = writer.storage
    for table in CALIBRATION_TABLES:
        for entry in writer.files.get(table, []):
            path = where(storage, entry, writer.base)
            try:
                data = pq.read_table(storage.arrow_path(path), filesystem=storage.arrow_filesystem(),
                                     columns=["device_id", "calibrated_at"])
            except (OSError, ValueError) as exc:  # a lost file is refused earlier, by the writer
                raise StoreError(f"{storage.uri(path)} is not a readable {table} file ({exc}); restore it from "
                                 f"where the dataset came from, {REBUILD}") from None
            keys.update(zip(data["device_id"].to_pylist(), data["calibrated_at"].to_pylist(), strict=True))
    return keys


def export_devices(api: ApiClient, dataset: Dataset, *, compact_after_files: int = 64,
                   notice: Callable[[str], None] | None = None) -> ExportReport:
    """`--devices-only`: one device snapshot committed into `dataset` (new or holding an export), nothing else.

    The sync state is kept as it is: the next export continues where the last one stopped. An export of another
    server or account is refused, as an export run refuses it. GET /devices failing fails the run (ApiError)."""
    started = time.monotonic()
    notice = notice or (lambda _message: None)
    report = ExportReport(str(dataset.storage.uri("")))
    account = api.preflight() or {}
    source = Source.from_account(public_url(api), account)
    devices = api.get_devices()
    now = datetime.now(UTC)
    with dataset.writer(operation="devices") as writer:
        previous = SyncState.from_json(writer.base.state) if writer.base is not None else None
        conflict = previous.source.conflict(source) if previous is not None and previous.source else None
        if conflict:
            raise StoreError(f"this directory holds another export ({conflict}): use another directory")
        manifest, written = _commit(writer, [(now, devices)], now)
    report.version = manifest.version

    def say(message: str) -> None:
        report.notes.append(message)
        notice(message)

    written.tell(report, say)
    conclude(report, api, dataset, manifest, compact_after_files=compact_after_files)
    report.seconds = time.monotonic() - started
    return report


def record_snapshots(location: Any, snapshots: Iterable[tuple[datetime, Any]],
                     **storage_options: str) -> tuple[Manifest, SnapshotWritten]:
    """Commit device snapshots taken elsewhere ((snapshot time, GET /devices records), e.g. saved answers) into the
    dataset at `location` at once, its sync state kept; returns the commit and what it added."""
    dataset = Dataset(location, **storage_options)
    dataset.prepare()
    with dataset.writer(operation="devices") as writer:
        return _commit(writer, snapshots, datetime.now(UTC))


def _commit(writer: Writer, snapshots: Iterable[tuple[datetime, Any]],
            now: datetime) -> tuple[Manifest, SnapshotWritten]:
    """Write the snapshots, carry the base commit's volatile rows (its snapshot errors replaced by these), commit."""
    written = write_snapshots(writer, snapshots)
    base = writer.base
    gone = {e.path for e in writer.missing}
    for table, entries in (base.files.items() if base is not None else ()):
        if table != "errors":
            writer.files.setdefault(table, []).extend(e for e in entries if not e.final and e.path not in gone)
    errors = writer.base_volatile("errors")
    if base is not None:  # the job errors stand until the next export run; the run-level ones are this snapshot's
        run_level = pc.and_(errors["job_id"].is_null(), pc.is_in(errors["stage"], value_set=pa.array(SNAPSHOT_STAGES)))
        errors = errors.filter(pc.invert(run_level))
    errors = pa.concat_tables([errors, error_rows(written.errors, now)])
    writer.write("errors", errors, final=False)
    info = {"devices": written.rows["devices"], "calibrations": len(written.new),
            "notes": [message for _, _, message in written.errors][-50:]}
    return writer.commit(info=info), written


def public_url(api: ApiClient) -> str:
    """The API's base URL without credentials or query string (it is stored in the dataset)."""
    from oqtopus_data.client.http import redact_url

    return redact_url(str(getattr(api, "base_url", "")))
