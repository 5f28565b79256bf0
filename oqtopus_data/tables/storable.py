"""Whether a value fits its column, checked before any Arrow array is built, one value at a time.

JSON allows what Arrow and Parquet cannot hold: integers of any size, numbers beyond float range (`1e400` parses
to inf), lone surrogates (`"\\udc00"` is valid JSON and not valid UTF-8). Each check returns the value as the column
stores it or raises `Unstorable` naming the field and the problem, so the caller can turn one job (or one device)
into an `errors` row instead of failing the whole batch. Text that must be stored whatever it holds (an error
message, an unknown job id) goes through `escaped`.

The limits are declared once, as msgspec types (`Int64`, `Int32`, `Count`, `Finite`): the typed decoder
(`tables.typed`) checks a whole job against them in C, and the functions here read their bounds from the same
declarations to name the field and the problem when a value is refused.
"""

from __future__ import annotations

import json
import math
import sys
import threading
from collections.abc import Mapping
from json.encoder import c_make_encoder, encode_basestring  # type: ignore[attr-defined]
from typing import Annotated, Any

import msgspec
from msgspec import Meta

from oqtopus_data.results.payload import short_repr

#: A 64-bit integer column (shots, a count's total); a count (never negative); a 32-bit one (a sub-result index);
#: a double that is not infinite (JSON's `1e400` arrives as inf; NaN is kept by `float64` but left to it here).
Int64 = Annotated[int, Meta(ge=-(2**63), le=2**63 - 1)]
Count = Annotated[int, Meta(ge=0, le=2**63 - 1)]
Int32 = Annotated[int, Meta(ge=-(2**31), le=2**31 - 1)]
Finite = Annotated[float, Meta(ge=-sys.float_info.max, le=sys.float_info.max)]


def _bounds(declared: Any) -> tuple[Any, Any]:
    meta = declared.__metadata__[0]
    return meta.ge, meta.le


INT64_MIN, INT64_MAX = _bounds(Int64)
INT32_MIN, INT32_MAX = _bounds(Int32)


class BadJob(ValueError):
    """A job whose payload is wrong (not one of its forms the result objects read): one `errors` row, no other."""


class Unstorable(ValueError):
    """A value that does not fit its column; the message names the field and says why."""


def utf8(value: str, field: str) -> str:
    """`value` if it encodes as UTF-8; Unstorable naming the first lone surrogate otherwise."""
    if value.isascii():  # the common case, at C speed
        return value
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise Unstorable(f"{field} is not valid UTF-8: a lone surrogate {value[exc.start]!r} at character "
                         f"{exc.start}") from None
    return value


def text(value: Any, field: str) -> str | None:
    """A text column: strings as they are, numbers and booleans as their text, anything else as JSON text."""
    if value is None:
        return None
    if isinstance(value, str):
        return utf8(value, field)
    if isinstance(value, int | float | bool):
        try:
            return str(value)
        except ValueError:  # Python's 4300-digit limit on int -> str
            raise Unstorable(f"{field} is an integer too long to write as text") from None
    return json_text(value, field)


def strings(value: Any, field: str) -> list[str] | None:
    """A list-of-text column: a list whose items are all strings, each valid UTF-8."""
    if value is None:
        return None
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise Unstorable(f"{field} is not a list of strings")
    for i, item in enumerate(value):
        utf8(item, f"{field}[{i}]")
    return list(value)


def int64(value: Any, field: str) -> int | None:
    """A 64-bit integer column: a Python int (not a bool) in range."""
    if value is None:
        return None
    if type(value) is not int:  # a bool is an int subclass, and no count
        raise Unstorable(f"{field} is not an integer: {short_repr(value)}")
    if not INT64_MIN <= value <= INT64_MAX:
        raise Unstorable(f"{field} {short_repr(value)} does not fit a 64-bit integer")
    return value


def int32(value: int, field: str) -> int:
    """A 32-bit integer column (already an int)."""
    if not INT32_MIN <= value <= INT32_MAX:
        raise Unstorable(f"{field} {short_repr(value)} does not fit a 32-bit integer")
    return value


def float64(value: Any, field: str) -> float | None:
    """A double column: a real number within float range (inf is refused: it is how JSON's `1e400` arrives;
    NaN is kept, it is a float value)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Unstorable(f"{field} is not a number: {short_repr(value)}")
    try:
        number = float(value)
    except OverflowError:
        raise Unstorable(f"{field} is an integer beyond float range ({short_repr(value)})") from None
    if math.isinf(number):
        raise Unstorable(f"{field} is infinite (a number beyond float range)")
    return number


def _model(value: Any) -> Any:
    """JSON for SDK models inside a payload (pydantic / OpenAPI models have to_dict or model_dump)."""
    for dump in ("to_dict", "model_dump"):
        if callable(getattr(value, dump, None)):
            return getattr(value, dump)()
    raise TypeError(f"a {type(value).__name__} is not JSON")


# Sorted keys: the same object always gives the same text. One encoder: json.dumps would build one per call.
_ENCODER = json.JSONEncoder(sort_keys=True, ensure_ascii=False, default=_model)


class _FastEncoder(threading.local):
    """What `_ENCODER.encode` does for containers, without building its C encoder anew on every call (half the cost
    of a small object's JSON text): one C encoder per thread, made again after a failure (its record of the
    containers being encoded, which detects cycles, is then not empty)."""

    def __init__(self) -> None:
        self.encode = self.make()

    @staticmethod
    def make() -> Any:
        if c_make_encoder is None:  # a Python without the C accelerator: the plain encoder
            return None
        e = _ENCODER
        return c_make_encoder({}, e.default, encode_basestring, e.indent, e.key_separator, e.item_separator,
                              e.sort_keys, e.skipkeys, e.allow_nan)


_FAST = _FastEncoder()


# The texts of recent JSON values, keyed by their msgpack encoding (unique per value: types, float bits and key
# order all show in it; whatever msgpack refuses, a lone surrogate or a 65-bit integer, is not remembered). Settings
# and mappings repeat from job to job, so most of a history's JSON text is encoded once.
_TEXTS: dict[bytes, str] = {}
_TEXTS_MAX = 1024
_TEXT_BYTES_MAX = 2048  # at most 1024 values of 2 KiB or less: a few MiB with their texts
_KEY = msgspec.msgpack.Encoder().encode


def json_text(value: Any, field: str) -> str | None:
    """A JSON-text column: the value (or an SDK model) as sorted-key JSON that is valid UTF-8."""
    if value is None:
        return None
    if type(value) is dict or type(value) is list:
        try:
            key = _KEY(value)
        except (TypeError, ValueError, OverflowError, RecursionError):
            return _json_text(value, field)
        text = _TEXTS.get(key)
        if text is None:
            text = _json_text(value, field)
            if len(key) <= _TEXT_BYTES_MAX:  # a large value is not kept: the memory stays bounded
                if len(_TEXTS) >= _TEXTS_MAX:
                    _TEXTS.clear()
                _TEXTS[key] = text
        return text
    return _json_text(value, field)


def _json_text(value: Any, field: str) -> str:
    if type(value) is not dict:  # the common case first: the ABC check is slow
        if isinstance(value, Mapping):
            value = dict(value)
        elif not isinstance(value, list | tuple | str | int | float | bool):
            value = _model(value)
    try:
        encoded = _encode(value)
    except RecursionError:
        raise Unstorable(f"{field} is nested too deeply to be written as JSON") from None
    except (TypeError, ValueError) as exc:
        raise Unstorable(f"{field} cannot be written as JSON: {exc}") from None
    return utf8(encoded, field)


def _encode(value: Any) -> str:
    fast = _FAST.encode
    if fast is None or isinstance(value, str | int | float | bool):  # scalars: the encoder's own short path
        return _ENCODER.encode(value)
    try:
        return "".join(fast(value, 0))
    except BaseException:
        _FAST.encode = _FAST.make()
        raise


def escaped(value: str) -> tuple[str, bool]:
    """`value` as storable text (lone surrogates as `\\udXXX` escapes) and whether anything was escaped."""
    if value.isascii():
        return value, False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return value.encode("utf-8", "backslashreplace").decode("utf-8"), True
    return value, False
