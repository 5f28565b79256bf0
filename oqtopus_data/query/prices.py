"""A price table that turns usage into an estimated cost: one row per device and price, read from CSV or given as a
table, checked whole before any figure is computed from it.

Columns: device_id, per_shot, per_second (non-negative numbers), currency (one for the whole table: costs of
different currencies are never added), valid_from (a date or date-time, UTC when it names no zone; empty: since
always). A price holds from its valid_from until the device's next one (`valid_until`, filled in here).
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

from oqtopus_data.errors import ConfigError
from oqtopus_data.tables.schema import TIMESTAMP
from oqtopus_data.times import TimeError, parse_datetime

COLUMNS = ("device_id", "per_shot", "per_second", "currency", "valid_from")
#: The checked table: COLUMNS plus valid_until (the device's next valid_from; null for its newest price).
SCHEMA = pa.schema([("device_id", pa.string()), ("per_shot", pa.float64()), ("per_second", pa.float64()),
                    ("currency", pa.string()), ("valid_from", TIMESTAMP), ("valid_until", TIMESTAMP)])

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
Prices = str | os.PathLike[str] | pa.Table | Iterable[Mapping[str, Any]]


class PriceError(ConfigError):
    """A price table that cannot be used; the message names the file, the row and the problem."""


def load_prices(prices: Prices) -> pa.Table:
    """The checked price table (SCHEMA) from a CSV file's path, a pyarrow table or rows (mappings)."""
    if isinstance(prices, str | os.PathLike):
        name = os.fspath(prices)
        rows = _read_csv(name)
    else:
        name = "the price table"
        given = prices.to_pylist() if isinstance(prices, pa.Table) else list(prices)
        rows = [(f"{name}, row {i}", row) for i, row in enumerate(given, 1)]
    if not rows:
        raise PriceError(f"{name} has no prices: give one row per device ({', '.join(COLUMNS)})")
    checked = [_row(row, where) for where, row in rows]
    currencies = sorted({r["currency"] for r in checked})
    if len(currencies) > 1:
        raise PriceError(f"{name} mixes currencies ({', '.join(currencies)}): costs in different currencies cannot "
                         "be added; give every price in one currency")
    checked.sort(key=lambda r: (r["device_id"], *_order(r["valid_from"])))
    for this, after in zip(checked, [*checked[1:], None], strict=True):
        same = after is not None and after["device_id"] == this["device_id"]
        if same and after["valid_from"] == this["valid_from"]:
            raise PriceError(f"{name}: device {this['device_id']} has two prices valid from "
                             f"{this['valid_from'] or 'always'}")
        this["valid_until"] = after["valid_from"] if same else None
    return pa.Table.from_pylist(checked, schema=SCHEMA)


def _read_csv(name: str) -> list[tuple[str, dict[str, Any]]]:
    """The rows of a CSV file with where each is ("file, line N")."""
    try:
        with open(name, newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            header = [h.strip() for h in reader.fieldnames or []]
            missing = [c for c in COLUMNS if c not in header]
            unknown = [h for h in header if h not in COLUMNS]
            if missing or unknown:
                what = "; ".join(part for part in (f"missing {', '.join(missing)}" if missing else "",
                                                   f"unknown {', '.join(unknown)}" if unknown else "") if part)
                raise PriceError(f"{name}: the header must name the columns {', '.join(COLUMNS)} ({what})")
            rows = []
            for row in reader:
                if None in row or any(v is None for v in row.values()):
                    raise PriceError(f"{name}, line {reader.line_num}: it does not have the header's "
                                     f"{len(header)} fields")
                rows.append((f"{name}, line {reader.line_num}", {k.strip(): v for k, v in row.items()}))
            return rows
    except OSError as exc:
        raise PriceError(f"cannot read the price file {name}: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, csv.Error) as exc:
        raise PriceError(f"{name} is not a CSV file of prices: {exc}") from None


def _row(row: Any, where: str) -> dict[str, Any]:
    if not isinstance(row, Mapping):
        raise PriceError(f"{where}: not a row of {', '.join(COLUMNS)}")
    device_id, currency = _text(row.get("device_id"), "device_id", where), _text(row.get("currency"), "currency", where)
    return {"device_id": device_id, "per_shot": _price(row.get("per_shot"), "per_shot", where),
            "per_second": _price(row.get("per_second"), "per_second", where), "currency": currency,
            "valid_from": _since(row.get("valid_from"), where)}


def _text(value: Any, column: str, where: str) -> str:
    text = "" if value is None else str(value).strip()
    if not text:
        raise PriceError(f"{where}: {column} is empty")
    return text


def _price(value: Any, column: str, where: str) -> float:
    text = "" if value is None else str(value).strip()
    if not text:
        raise PriceError(f"{where}: {column} is empty (write 0 for no {column.replace('_', '-')} price)")
    try:
        price = float(text)
    except ValueError:
        raise PriceError(f"{where}: {column} {text!r} is not a number") from None
    if not math.isfinite(price) or price < 0:
        raise PriceError(f"{where}: {column} {text!r} is not a price (a number of 0 or more)")
    return price


def _since(value: Any, where: str) -> datetime | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        return parse_datetime(value.strip() if isinstance(value, str) else value, "valid_from")
    except TimeError as exc:
        raise PriceError(f"{where}: {exc} (give a date, 2025-04-01, or a date-time)") from None


def _order(valid_from: datetime | None) -> tuple[int, datetime]:
    """Sorts a price valid since always before the dated ones."""
    return (0, _EPOCH) if valid_from is None else (1, valid_from)
