"""Every table's schema, declared once: the flatteners, the store, the SQL views, the docs and the tests follow it.

Columns are append-only: never reorder or retype one; add new columns at the end (before the partition column, which
every partitioned table keeps last and no data file stores) and bump SCHEMA_VERSION. Readers take a column missing
from an older file as nulls (store.Dataset.read_table, the DuckDB views, polars), so files of every version mix.
Timestamps are UTC microseconds (what Spark, Trino, DuckDB and polars all read as the same instant).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import pyarrow as pa

#: 2: jobs.extra, estimations.operator_coeff_imag. 3: the qubit_calibrations and coupling_calibrations tables.
#: 4: jobs.circuit_id.
SCHEMA_VERSION = 4

#: Partition column of the per-job tables: the job's submission month, "YYYY-MM" ("unknown" when absent).
PARTITION_COLUMN = "submitted_month"
UNKNOWN_MONTH = "unknown"


def partition_month(submitted: datetime | None) -> str:
    """The partition of a job submitted at `submitted` (UTC): "YYYY-MM", or UNKNOWN_MONTH without a time."""
    return f"{submitted.year:04d}-{submitted.month:02d}" if submitted is not None else UNKNOWN_MONTH

TIMESTAMP = pa.timestamp("us", tz="UTC")
OPERATOR_TERM = pa.struct([("pauli", pa.string()), ("coeff", pa.float64())])


@dataclass(frozen=True)
class Column:
    """One column: its name, Arrow type and a one-line description for docs and `info`."""

    name: str
    type: pa.DataType
    description: str
    nullable: bool = True


@dataclass(frozen=True)
class Table:
    """One table of the dataset: columns, the grain of a row, and whether it is partitioned by month."""

    name: str
    grain: str
    columns: tuple[Column, ...]
    partitioned: bool = True

    @property
    def schema(self) -> pa.Schema:
        """The Arrow schema of the table as flattened (the partition column included)."""
        return pa.schema(
            [pa.field(c.name, c.type, nullable=c.nullable) for c in self.columns],
            metadata={b"oqtopus_data.schema_version": str(SCHEMA_VERSION).encode()},
        )

    @property
    def file_schema(self) -> pa.Schema:
        """The schema inside a Parquet file: a partitioned table keeps its partition column in the path."""
        if not self.partitioned:
            return self.schema
        return self.schema.remove(self.schema.get_field_index(PARTITION_COLUMN))

    @property
    def column_names(self) -> list[str]:
        """Column names in declared order."""
        return [c.name for c in self.columns]


def _month() -> Column:
    return Column(PARTITION_COLUMN, pa.string(), "submission month of the job, YYYY-MM (partition key)",
                  nullable=False)


JOBS = Table(
    "jobs",
    "one row per job",
    (
        Column("job_id", pa.string(), "job identifier", nullable=False),
        Column("name", pa.string(), "job name given at submission"),
        Column("description", pa.string(), "job description, when given"),
        Column("job_type", pa.string(), "sampling, estimation, multi_manual or sse"),
        Column("status", pa.string(), "job status when exported (succeeded, failed, cancelled, running, ...)"),
        Column("device_id", pa.string(), "device the job was submitted to"),
        Column("shots", pa.int64(), "number of shots requested"),
        Column("submitted_at", TIMESTAMP, "when the API accepted the job (UTC)"),
        Column("ready_at", TIMESTAMP, "when the job was ready to run (UTC)"),
        Column("running_at", TIMESTAMP, "when execution started (UTC)"),
        Column("ended_at", TIMESTAMP, "when the job reached a terminal state (UTC)"),
        Column("execution_time", pa.float64(), "execution time reported by the API, seconds"),
        Column("message", pa.string(), "error or status message from job_info"),
        Column("transpiler_info", pa.string(), "transpiler settings, JSON text"),
        Column("simulator_info", pa.string(), "simulator settings, JSON text"),
        Column("mitigation_info", pa.string(), "error-mitigation settings, JSON text"),
        Column("program", pa.list_(pa.string()), "input programs (OpenQASM 3), one per sub-program"),
        Column("sse_program", pa.string(), "SSE user program, for sse jobs"),
        Column("combined_program", pa.string(), "combined circuit of a multiprogramming job (text or JSON text)"),
        Column("transpiled_program", pa.string(), "transpiled program (OpenQASM 3)"),
        Column("virtual_physical_mapping", pa.string(), "virtual to physical qubit mapping, JSON text"),
        Column("transpile_stats", pa.string(), "transpiler statistics, JSON text"),
        Column("n_outcomes", pa.int64(), "number of distinct bitstrings in counts (null without counts)"),
        Column("total_count", pa.int64(), "sum of counts (null without counts)"),
        Column("normalised", pa.list_(pa.string()),
               "notes on what was read differently from the payload as sent: legacy forms, date-times without a "
               "zone (read as UTC), input of unknown shape (kept in extra)"),
        Column("exported_at", TIMESTAMP, "when oqtopus-data wrote this row (UTC)"),
        Column("extra", pa.string(), "what the payload holds that no column declares, JSON text by section (job, "
               "job_info, input, result, transpile_result); presigned URLs replaced by a marker; null when nothing"),
        Column("circuit_id", pa.string(), "the circuit the job ran: md5 (hex) of its programs with comments removed "
               "and whitespace normalised, joined by newlines (oqtopus_data.results.circuits); the same for the same "
               "circuit on every device; null without programs (sse) and in files written before schema version 4"),
        _month(),
    ),
)

_COUNT_COLUMNS = (
    Column("bitstring", pa.string(), "measured bitstring, exactly as the API gave it", nullable=False),
    Column("outcome", pa.uint64(), "bitstring as an unsigned integer (null when wider than 64 bits)"),
    Column("n_bits", pa.int32(), "number of bits in the bitstring (blanks, _ and 0b removed)", nullable=False),
    Column("count", pa.int64(), "number of shots with this outcome", nullable=False),
)

COUNTS = Table(
    "counts",
    "one row per job and bitstring",
    (Column("job_id", pa.string(), "job identifier", nullable=False), *_COUNT_COLUMNS, _month()),
)

DIVIDED_COUNTS = Table(
    "divided_counts",
    "one row per job, sub-result and bitstring (multi_manual jobs)",
    (
        Column("job_id", pa.string(), "job identifier", nullable=False),
        Column("sub_result", pa.int32(), "index of the sub-program the counts belong to", nullable=False),
        *_COUNT_COLUMNS,
        _month(),
    ),
)

ESTIMATIONS = Table(
    "estimations",
    "one row per estimation result",
    (
        Column("job_id", pa.string(), "job identifier", nullable=False),
        Column("exp_value", pa.float64(), "estimated expectation value (real part)"),
        Column("stds", pa.float64(), "standard deviation of the estimate"),
        Column("exp_value_imag", pa.float64(), "imaginary part, when a legacy payload gave [re, im]"),
        Column("operator", pa.list_(OPERATOR_TERM), "observable terms from the job input (pauli, coeff)"),
        Column("operator_coeff_imag", pa.list_(pa.float64()),
               "imaginary part of each operator coeff, parallel to operator, when a legacy payload gave [re, im]"),
        _month(),
    ),
)

ERRORS = Table(
    "errors",
    "one row per job that could not be exported in the latest run",
    (
        Column("job_id", pa.string(), "job identifier (null when the payload had none)"),
        Column("stage", pa.string(), "where it failed: list, fetch, archive, parse, flatten, store, sse_log, devices, "
               "calibration",
               nullable=False),
        Column("message", pa.string(), "what is wrong, in one line", nullable=False),
        Column("recorded_at", TIMESTAMP, "when the failure was recorded (UTC)", nullable=False),
    ),
    partitioned=False,
)

DEVICES = Table(
    "devices",
    "one row per device and snapshot (each export run takes one snapshot)",
    (
        Column("snapshot_at", TIMESTAMP, "when the snapshot was taken (UTC)", nullable=False),
        Column("device_id", pa.string(), "device identifier", nullable=False),
        Column("device_type", pa.string(), "QPU or simulator"),
        Column("status", pa.string(), "available or unavailable"),
        Column("available_at", TIMESTAMP, "when the device becomes available (UTC)"),
        Column("n_pending_jobs", pa.int64(), "jobs waiting on the device"),
        Column("n_qubits", pa.int64(), "number of qubits"),
        Column("basis_gates", pa.list_(pa.string()), "basis gates"),
        Column("supported_instructions", pa.list_(pa.string()), "supported instructions"),
        Column("calibrated_at", TIMESTAMP, "time of the calibration in device_info (UTC)"),
        Column("description", pa.string(), "device description"),
        Column("device_info", pa.string(), "calibration data, JSON text"),
    ),
    partitioned=False,
)

SSE_LOGS = Table(
    "sse_logs",
    "one row per downloaded SSE log archive",
    (
        Column("job_id", pa.string(), "job identifier", nullable=False),
        Column("file_name", pa.string(), "file name the server sent (not trusted as a path)"),
        Column("bytes", pa.int64(), "size of the archive in bytes", nullable=False),
        Column("path", pa.string(), "where the archive was saved, relative to the export directory",
               nullable=False),
    ),
    partitioned=False,
)


#: The key of a calibration, first in both calibration tables.
_CALIBRATION_KEY = (
    Column("device_id", pa.string(), "device identifier", nullable=False),
    Column("calibrated_at", TIMESTAMP, "when the device was calibrated (UTC): the device's calibrated_at, else the "
           "one in device_info", nullable=False),
)


def _calibration_tail(what: str) -> tuple[Column, ...]:
    return (
        Column("first_seen_at", TIMESTAMP, "when the snapshot that first stored this calibration was taken (UTC)",
               nullable=False),
        Column("extra", pa.string(), f"what device_info says of this {what} that no column declares, JSON text; "
               "null when nothing"),
    )


QUBIT_CALIBRATIONS = Table(
    "qubit_calibrations",
    "one row per device, calibration and qubit; a calibration is stored once, however many snapshots saw it",
    (
        *_CALIBRATION_KEY,
        Column("qubit_id", pa.int64(), "the qubit's id in device_info: what the transpiler maps virtual qubits to "
               "(jobs.virtual_physical_mapping) and couplings name", nullable=False),
        Column("physical_id", pa.int64(), "the qubit's number on the chip (physical_id), when given"),
        Column("t1", pa.float64(), "T1 relaxation time, as sent (microseconds in OQTOPUS device_info)"),
        Column("t2", pa.float64(), "T2 dephasing time, as sent (microseconds in OQTOPUS device_info)"),
        Column("fidelity", pa.float64(), "single-qubit gate fidelity (older servers: 1 - the sx gate error)"),
        Column("prob_meas1_prep0", pa.float64(), "probability of reading 1 after preparing 0"),
        Column("prob_meas0_prep1", pa.float64(), "probability of reading 0 after preparing 1"),
        Column("readout_assignment_error", pa.float64(), "readout assignment error (older servers: ro_error)"),
        Column("gate_duration_x", pa.float64(), "duration of the x gate, as sent (ns in OQTOPUS device_info)"),
        Column("gate_duration_sx", pa.float64(), "duration of the sx gate, as sent"),
        Column("gate_duration_rz", pa.float64(), "duration of the rz gate, as sent"),
        Column("position_x", pa.float64(), "x of the qubit in the device's layout"),
        Column("position_y", pa.float64(), "y of the qubit in the device's layout"),
        *_calibration_tail("qubit"),
    ),
    partitioned=False,
)

COUPLING_CALIBRATIONS = Table(
    "coupling_calibrations",
    "one row per device, calibration and coupling (a pair of qubits a two-qubit gate acts on)",
    (
        *_CALIBRATION_KEY,
        Column("control", pa.int64(), "control qubit (a qubit_id)", nullable=False),
        Column("target", pa.int64(), "target qubit (a qubit_id)", nullable=False),
        Column("fidelity", pa.float64(), "two-qubit gate fidelity (older servers: 1 - the gate error)"),
        Column("gate", pa.string(), "the two-qubit gate gate_duration names (cx, ecr, rzx90, ...)"),
        Column("gate_duration", pa.float64(), "its duration, as sent (ns in OQTOPUS device_info)"),
        *_calibration_tail("coupling"),
    ),
    partitioned=False,
)

#: Every table, in the order the docs list them.
TABLES: dict[str, Table] = {
    t.name: t for t in (JOBS, COUNTS, DIVIDED_COUNTS, ESTIMATIONS, ERRORS, DEVICES, SSE_LOGS, QUBIT_CALIBRATIONS,
                        COUPLING_CALIBRATIONS)
}
SCHEMAS: dict[str, pa.Schema] = {name: t.schema for name, t in TABLES.items()}
#: The tables the flatteners produce from results.
RESULT_TABLES = ("jobs", "counts", "divided_counts", "estimations", "errors")


@dataclass(frozen=True)
class ViewDoc:
    """The columns of an analysis view (declared in sqltext), for the docs: name, grain, (column, meaning)."""

    name: str
    grain: str
    columns: tuple[tuple[str, str], ...]


#: The analysis views whose columns the docs list with their units (every view is described in sql/views.sql).
VIEW_DOCS: tuple[ViewDoc, ...] = (
    ViewDoc("job_qubits", "one row per job and virtual qubit it used (the entries of virtual_physical_mapping's "
            "qubit_mapping); calibration values of the calibration in force when the job ran (job_calibration's "
            "rule: its device's newest calibration at or before running_at, else submitted_at); nulls where none "
            "is known", (
                ("job_id", "job identifier"),
                ("device_id", "device the job ran on"),
                ("virtual_qubit", "the qubit as the program numbers it (int64)"),
                ("physical_qubit", "the qubit_id it was mapped to (int64; qubit_calibrations.qubit_id)"),
                ("calibrated_at", "the calibration in force (UTC timestamp)"),
                ("t1", "T1 of the physical qubit, as device_info sent it: microseconds on OQTOPUS"),
                ("t2", "T2 of the physical qubit, as device_info sent it: microseconds on OQTOPUS"),
                ("readout_assignment_error", "readout assignment error, a probability 0..1 (else the mean of "
                 "prob_meas1_prep0 and prob_meas0_prep1)"),
                ("fidelity", "single-qubit gate fidelity, 0..1"),
                (PARTITION_COLUMN, "submission month of the job, YYYY-MM"),
            )),
)


def empty_table(name: str) -> pa.Table:
    """An empty table with the declared schema, so every output has every column even with no rows."""
    return TABLES[name].schema.empty_table()


def conform(name: str, table: pa.Table) -> pa.Table:
    """Cast a table to its declared schema (column order, types, metadata) or raise with the table named."""
    target = TABLES[name].schema
    try:
        return table.select(target.names).cast(target)
    except (KeyError, pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise ValueError(f"table {name!r} does not match its declared schema: {exc}") from exc


def markdown_reference() -> str:
    """The tables and columns as Markdown, for docs/schema.md and `oqtopus-data info --schema`."""
    lines = [f"# Dataset schema (version {SCHEMA_VERSION})", ""]
    for t in TABLES.values():
        part = f"; partitioned by `{PARTITION_COLUMN}`" if t.partitioned else ""
        lines += [f"## `{t.name}`: {t.grain}{part}", "", "| column | type | meaning |", "|---|---|---|"]
        lines += [f"| `{c.name}` | `{c.type}` | {c.description} |" for c in t.columns]
        lines.append("")
    for v in VIEW_DOCS:
        lines += [f"## view `{v.name}`: {v.grain}", "", "| column | meaning |", "|---|---|"]
        lines += [f"| `{name}` | {meaning} |" for name, meaning in v.columns]
        lines.append("")
    return "\n".join(lines)

