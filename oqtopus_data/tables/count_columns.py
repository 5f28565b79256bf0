"""The counts and divided_counts tables of a batch: each job's counts checked, then built as Arrow columns.

They are the many rows, so they are built column-wise: one list extend per job, and a vectorised pass that turns
all keys into one string column and parses the bitstrings. A job whose counts are wrong raises BadJob (checked per
job) or is handed back by `CountsBuilder.build` (found by the vectorised pass), never a partial row.
"""

from __future__ import annotations

from collections.abc import Mapping
from itertools import chain
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from oqtopus_data.results.payload import clean_bitstrings, outcomes, short_repr
from oqtopus_data.tables import schema as S
from oqtopus_data.tables import storable as st
from oqtopus_data.tables.storable import BadJob

_INT = frozenset({int})
_SEPARATOR = "\x00"  # joins a job's count keys: not a character a bitstring holds

Pairs = tuple[Mapping[str, int], int, str]  # one counts mapping (checked), its total, its keys joined by NULs


def count_pairs(value: Any, what: str) -> Pairs:
    """One counts mapping checked (string keys, counts that are non-negative 64-bit integers, a total that fits too:
    it is `total_count`), with its total and its keys joined by NULs. Its keys and values are read in place (no list
    copies: count-heavy jobs have thousands)."""
    if not isinstance(value, Mapping):
        if isinstance(value, str):  # the result objects parse JSON text; this one was not a JSON object
            raise BadJob(f"{what} is a string that is not a JSON object")
        raise BadJob(f"{what} is not a mapping of bitstring to count: {type(value).__name__}")
    vals = value.values()
    # join fails on a key that is not a string (str subclasses pass, as isinstance let them); what it makes is how
    # the counts builder turns all keys into one Arrow column at C speed.
    try:
        joined = _SEPARATOR.join(value)
    except TypeError:
        raise BadJob(f"{what} has a key that is not a string") from None
    # set(map(type, ...)) runs in C: half the cost of a generator over every count (bool is not int here)
    if not set(map(type, vals)) <= _INT:
        bad = next(v for v in vals if type(v) is not int)
        raise BadJob(f"{what} has a count that is not an integer: {short_repr(bad)}")
    if value and min(vals) < 0:
        raise BadJob(f"{what} has a negative count: {short_repr(min(vals))}")
    total = sum(vals)
    if total > st.INT64_MAX:  # counts are >= 0, so a total that fits means every count fits
        st.int64(max(vals), f"a count in {what}")
        if what == "counts":
            raise BadJob(f"the sum of {what} does not fit a 64-bit integer (total_count)")
    return value, total, joined


def divided_of(value: Any) -> list[tuple[int, Pairs, str]]:
    """A job's divided_counts checked: (sub-result index, its counts checked, its label) for each sub-result."""
    if not isinstance(value, Mapping):
        if isinstance(value, str):
            raise BadJob("divided_counts is a string that is not a JSON object")
        raise BadJob("divided_counts is not a mapping of sub-result to counts")
    out = []
    for key, sub in value.items():
        label = f"divided_counts[{key if isinstance(key, str) and len(key) <= 40 else short_repr(key, 40)}]"
        try:
            index = int(key)
        except (TypeError, ValueError):
            raise BadJob(f"divided_counts has a sub-result key that is not an integer: {short_repr(key)}") from None
        out.append((st.int32(index, f"{label}: sub-result"), count_pairs(sub, label), label))
    return out


class CountsBuilder:
    """Accumulates count pairs of many jobs as flat lists and turns them into Arrow columns at once."""

    def __init__(self, *, divided: bool = False) -> None:
        self.divided = divided
        self.table = S.DIVIDED_COUNTS if divided else S.COUNTS
        self.counts: list[Mapping[str, int]] = []  # each add()'s mapping: its keys, for the rare general conversion
        self.joined: list[str] = []  # each add()'s keys joined by NULs (non-empty ones only)
        self.values: list[int] = []
        self.job_ids: list[str] = []
        self.months: list[str] = []
        self.subs: list[int] = []
        self.lengths: list[int] = []
        self.labels: list[str] = []

    def add(self, job_id: str, month: str, pairs: Pairs, sub: int = 0, label: str = "counts") -> None:
        """Add one job's checked counts (of sub-result `sub`, named `label` in errors)."""
        counts, _, joined = pairs
        if counts:
            self.joined.append(joined)
        self.counts.append(counts)
        self.values += counts.values()
        self.job_ids.append(job_id)
        self.months.append(month)
        self.subs.append(sub)
        self.lengths.append(len(counts))
        self.labels.append(label)

    def build(self) -> tuple[pa.Table, dict[str, str]]:
        """The table, and the jobs whose bitstrings are invalid (job_id -> message), left out of it."""
        try:
            bitstrings = _strings(_SEPARATOR.join(self.joined), len(self.values))
            if bitstrings is None:  # not plain ASCII (or a key holds the separator): the general conversion
                bitstrings = pa.array(list(chain.from_iterable(self.counts)), pa.string())
        except (UnicodeEncodeError, pa.ArrowInvalid):  # a lone surrogate in a key: rare, so looked for only now
            unencodable = self._unencodable()
            table, bad = self._without(set(unencodable)).build()
            return table, {**unencodable, **bad}
        lengths = np.asarray(self.lengths, dtype=np.int64)
        row_job = np.repeat(np.arange(len(lengths)), lengths)
        cleaned, invalid = clean_bitstrings(bitstrings)
        bad: dict[str, str] = {}
        for row, key in invalid.items():
            entry = int(row_job[row])
            bad.setdefault(self.job_ids[entry], f"invalid bitstring {key[:80]!r} in {self.labels[entry]}")
        n_bits = pc.utf8_length(cleaned).cast(pa.int32())
        columns: dict[str, Any] = {
            "job_id": pa.array(self.job_ids, pa.string()).take(row_job),
            "bitstring": bitstrings,
            "outcome": outcomes(cleaned),
            "n_bits": n_bits,
            "count": pa.array(self.values, pa.int64()),
            S.PARTITION_COLUMN: pa.array(self.months, pa.string()).take(row_job),
        }
        if self.divided:
            columns["sub_result"] = pa.array(self.subs, pa.int32()).take(row_job)
        table = pa.table({name: columns[name] for name in self.table.column_names}, schema=self.table.schema)
        if invalid:
            keep = np.ones(len(table), dtype=bool)
            keep[list(invalid)] = False
            table = table.filter(pa.array(keep))
        return table, bad

    def _unencodable(self) -> dict[str, str]:
        """The jobs with a key that is not valid UTF-8, and what is wrong."""
        bad: dict[str, str] = {}
        for entry, counts in enumerate(self.counts):
            for key in counts:
                try:
                    st.utf8(key, f"a bitstring in {self.labels[entry]}")
                except st.Unstorable as exc:
                    bad.setdefault(self.job_ids[entry], str(exc))
                    break
        return bad

    def _without(self, job_ids: set[str]) -> CountsBuilder:
        kept = CountsBuilder(divided=self.divided)
        for entry, counts in enumerate(self.counts):
            if self.job_ids[entry] not in job_ids:
                kept.add(self.job_ids[entry], self.months[entry], (counts, 0, _SEPARATOR.join(counts)),
                         self.subs[entry], self.labels[entry])
        return kept


def _strings(joined: str, n: int) -> pa.StringArray | None:
    """`n` ASCII strings joined by NULs as one Arrow string column, built over the bytes with numpy (a third of the
    cost of converting a million Python strings one by one); None when the text is not ASCII or does not hold
    exactly `n` strings (a key with a NUL in it), for the caller to convert them the general way."""
    if not joined.isascii():
        return None
    raw = np.frombuffer(joined.encode("ascii"), dtype=np.uint8)
    ends = np.flatnonzero(raw == 0)
    if len(ends) != max(n - 1, 0) or (n == 0 and len(raw)):
        return None
    offsets = np.empty(n + 1, dtype=np.int32)
    offsets[0] = 0
    offsets[1:n] = ends - np.arange(n - 1)  # each separator before it shifts a string's start by one
    offsets[n] = len(raw) - max(n - 1, 0)
    data = raw[raw != 0] if n > 1 else raw
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(data))
