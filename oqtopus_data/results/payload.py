"""The payload rules, one home: how a job's JSON is read, by the result objects and the flatteners alike.

- Bitstring keys are read as the official SDK reads them (blanks, `_` and one `0b` prefix ignored), one at a time
  or vectorised over an Arrow column.
- Older encodings are read, never dropped, each with a note (a result's `normalised`): counts sent as JSON text,
  `[re, im]` pairs for exp_value, stds and operator coefficients, a lone program string. The server's schema
  declares exp_value and a coefficient as a list of 1 or 2 numbers: `[x]` is read as x (imaginary part 0), noted.
- The input's program and operator are read when their shape is known; otherwise they are left out with a note and
  kept as sent in the extra keys (an operator with one term that is not a `{pauli, coeff}` mapping is left out whole:
  a partial observable would be a wrong one).
- Keys no column declares are kept in the extra keys, presigned URLs replaced by a marker.

What a column can hold (integer ranges, finite floats, UTF-8) is `storable`'s rule: this module reads forms and
never checks a value's size or encoding.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

#: What replaces a presigned (signed, expiring, secret) URL in the extra keys.
URL_MARKER = "<presigned URL, not stored>"

_ZERO, _ONE = ord("0"), ord("1")
_PLAIN = frozenset({str, int, float, bool, list})  # what JSON gives besides objects: no model to dump
_PARSE_CHUNK = 1 << 18  # rows per vectorised parsing step: bounds the temporary arrays

# The keys the dataset has a column (or a resolution step) for, per part of the payload; None = read whole.
JOB_KEYS = frozenset({
    "job_id", "name", "description", "job_type", "status", "device_id", "shots", "job_info", "transpiler_info",
    "simulator_info", "mitigation_info", "execution_time", "submitted_at", "ready_at", "running_at", "ended_at"})
JOB_INFO_KEYS = frozenset({
    "input", "combined_program", "result", "transpile_result", "sse_log", "message",
    "program", "operator", "sse_program"})  # the last three: the oldest form's input, inline in job_info
_INPUT_SPEC: dict[str, Any] = {"program": None, "operator": None, "sse_program": None}
_RESULT_SPEC: dict[str, Any] = {"sampling": {"counts": None, "divided_counts": None},
                                "estimation": {"exp_value": None, "stds": None}}
_TRANSPILE_SPEC: dict[str, Any] = {"transpiled_program": None, "stats": None, "virtual_physical_mapping": None}


# ---------------------------------------------------------------------------------------------------- bitstrings


def clean_bitstring(text: Any) -> str | None:
    """A counts key as bare 0s and 1s (outer whitespace, inner spaces, `_` and one `0b` removed); None if invalid."""
    if not isinstance(text, str):
        return None
    digits = text.strip().replace("_", "").replace(" ", "").removeprefix("0b")
    return None if not digits or digits.strip("01") else digits


def bitstring_to_int(bitstring: str) -> int:
    """Read a counts key as a binary number: "0101", "0b0101", "01 01" and "01_01" all give 5.

    Anything else raises `ValueError("Invalid bitstring: ...")`, as in oqtopus-client.
    """
    digits = clean_bitstring(bitstring)
    if digits is None:
        raise ValueError(f"Invalid bitstring: {short_repr(bitstring)}")
    return int(digits, 2)


def counts_to_int_keys(counts: Any, what: str = "counts") -> dict[int, Any]:
    """Re-key one counts mapping by integer; empty or missing counts give `{}`."""
    if not counts:
        return {}
    if not isinstance(counts, Mapping):
        raise ValueError(f"{what} is not a mapping: {type(counts).__name__}")
    return {bitstring_to_int(key): value for key, value in counts.items()}


def clean_bitstrings(bitstrings: pa.StringArray) -> tuple[pa.StringArray, dict[int, str]]:
    """`clean_bitstring` over a column: the cleaned column and the invalid rows (row -> the key as sent).

    The common case (every key bare 0s and 1s) is one pass over the data buffer; only other keys go through Python.
    """
    if len(bitstrings) == 0 or _all_binary(bitstrings):
        return bitstrings, {}
    pure = pc.match_substring_regex(bitstrings, r"^[01]+$")
    cleaned = bitstrings.to_pylist()
    invalid: dict[int, str] = {}
    for row in np.flatnonzero(~pure.to_numpy(zero_copy_only=False)):
        fixed = clean_bitstring(cleaned[row])
        if fixed is None:
            invalid[int(row)] = cleaned[row]
            fixed = "0"  # placeholder: the caller drops the row with its job
        cleaned[row] = fixed
    return pa.array(cleaned, pa.string()), invalid


def _all_binary(strings: pa.StringArray) -> bool:
    """Whether every string is non-empty and only 0s and 1s: one pass over the data buffer, no regex."""
    if strings.null_count:
        return False
    offsets = np.frombuffer(strings.buffers()[1], dtype=np.int32, count=len(strings) + 1, offset=strings.offset * 4)
    if (np.diff(offsets) == 0).any():
        return False
    data = np.frombuffer(strings.buffers()[2], dtype=np.uint8, count=int(offsets[-1] - offsets[0]),
                         offset=int(offsets[0]))
    return bool(((data == _ZERO) | (data == _ONE)).all())


def outcomes(cleaned: pa.StringArray) -> pa.Array:
    """Clean bitstrings as uint64 (null past 64 bits), parsed with numpy over the Arrow data buffer."""
    parts = [_outcomes_chunk(cleaned.slice(i, _PARSE_CHUNK)) for i in range(0, len(cleaned), _PARSE_CHUNK)]
    return pa.concat_arrays(parts) if parts else pa.array([], pa.uint64())


def _outcomes_chunk(chunk: pa.StringArray) -> pa.Array:
    n = len(chunk)
    offsets = np.frombuffer(chunk.buffers()[1], dtype=np.int32, count=n + 1, offset=chunk.offset * 4)
    data = np.frombuffer(chunk.buffers()[2], dtype=np.uint8)
    lengths = np.diff(offsets)
    values = np.zeros(n, dtype=np.uint64)
    # Rows of one width form a (rows, width) matrix of 0/1 bytes; packbits turns each row, left-padded to 64
    # bits, into 8 big-endian bytes. Widths are few (a job's bitstrings share one), so this loop is short.
    widths = np.unique(lengths).tolist()
    for width in widths:
        if not 0 < width <= 64:
            continue  # past 64 bits: null (masked below)
        if len(widths) == 1:  # one width (the usual case): the rows lie back to back, a matrix without gathering
            rows = slice(None)
            matrix = data[offsets[0]:offsets[0] + n * width].reshape(n, width)
        else:
            rows = np.flatnonzero(lengths == width)
            matrix = data[offsets[rows, None] + np.arange(width)]
        bits = np.zeros((matrix.shape[0], 64), dtype=np.uint8)
        np.subtract(matrix, _ZERO, out=bits[:, 64 - width:])
        values[rows] = np.packbits(bits, axis=1).view(">u8").ravel()
    return pa.array(values, pa.uint64(), mask=lengths > 64)


# ------------------------------------------------------------------------------------------------- older forms


def plain(value: Any) -> Any:
    """A pydantic model (the SDK's) as a plain dict; mappings copied; anything else unchanged."""
    if value is None or type(value) in _PLAIN:
        return value
    if type(value) is dict or isinstance(value, Mapping):  # the ABC check alone is slow
        return dict(value)
    for dump in ("to_dict", "model_dump"):
        if callable(getattr(value, dump, None)):
            return getattr(value, dump)()
    return value


def parse_json_counts(value: Any, what: str, notes: list[str]) -> Any:
    """`value`, or the object a JSON string in it encodes; a note for each string met."""
    if not isinstance(value, str):
        return value
    try:
        parsed = json.loads(value)
    except (ValueError, RecursionError):
        notes.append(f"{what}: a string that is not JSON, left as is")
        return value
    if not isinstance(parsed, Mapping):
        notes.append(f"{what}: a JSON string that is not an object, left as is")
        return value
    notes.append(f"{what}: parsed from a JSON string")
    return dict(parsed)


def _real(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def as_float(value: Any) -> Any:
    """A real number as a float; one beyond float range stays as it is (the column check names it)."""
    try:
        return float(value)
    except OverflowError:
        return value


def complex_pair(value: Any) -> tuple[Any, Any] | None:
    """`(re, im)` when `value` is a list of two numbers (`[re, im]`), `(x, None)` for a list of one (`[x]`, a real
    number as the server's schema allows it); None for anything else."""
    if not isinstance(value, list | tuple) or not 1 <= len(value) <= 2 or not all(map(_real, value)):
        return None
    return (as_float(value[0]), as_float(value[1])) if len(value) == 2 else (as_float(value[0]), None)


def pair_note(what: str, pair: tuple[Any, Any], kept: str) -> str:
    """The `normalised` note of a number sent as a list: `[x]` read as x, or `[re, im]` with where im went."""
    if pair[1] is None:
        return f"{what}: [x] {_pair_text(pair[:1])}, read as {_number_text(pair[0])} (imaginary part 0)"
    return f"{what}: [re, im] {_pair_text(pair)}, kept re, {kept}"


def _number_text(x: Any) -> str:
    return repr(x) if isinstance(x, float) else "<a number beyond float range>"


def _pair_text(pair: tuple[Any, ...]) -> str:
    return "[" + ", ".join(map(_number_text, pair)) + "]"


def normalise_result(result: Any, notes: list[str]) -> tuple[Any, Any]:
    """The result payload with older encodings read, and exp_value's imaginary part if any."""
    if not isinstance(result, Mapping):
        return result, None
    result = dict(result)
    sampling = plain(result.get("sampling"))
    if isinstance(sampling, Mapping):
        for key in ("counts", "divided_counts"):
            if key in sampling:
                sampling[key] = parse_json_counts(sampling[key], key, notes)
        divided = sampling.get("divided_counts")
        if isinstance(divided, Mapping):
            sampling["divided_counts"] = {
                index: parse_json_counts(sub, f"divided_counts[{index}]", notes)
                for index, sub in divided.items()
            }
        result["sampling"] = sampling
    imag = None
    estimation = plain(result.get("estimation"))
    if isinstance(estimation, Mapping):
        for key in ("exp_value", "stds"):
            pair = complex_pair(estimation.get(key))
            if pair is None:
                continue
            estimation[key] = pair[0]
            if key == "exp_value":
                imag = pair[1]
            notes.append(pair_note(key, pair, "im in exp_value_imag" if key == "exp_value" else "dropped im"))
        result["estimation"] = estimation
    return result, imag


def read_input(info: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The job's input (program, operator, sse_program), from `input` or, in the oldest payloads, job_info itself."""
    if info is None:
        return None
    source = info.get("input")
    if type(source) is dict or isinstance(source, Mapping):
        return dict(source)
    legacy = {key: info[key] for key in _INPUT_SPEC if key in info}
    return legacy or None


def read_program(source: Any, notes: list[str], extra: dict[str, Any]) -> list[str] | None:
    """The input's program list; a lone string (older payloads) becomes a list of one; any other shape is left out,
    noted and kept in `extra`."""
    if source is None:
        return None
    if isinstance(source, str):
        notes.append("program: a single string, read as a list of one program")
        return [source]
    if isinstance(source, list | tuple) and all(isinstance(p, str) for p in source):
        return list(source)
    notes.append(f"program: {_shape(source)} rather than a list of strings, left out (kept in extra)")
    extra["program"] = source
    return None


def read_operator(source: Any, notes: list[str], extra: dict[str, Any]) -> tuple[list[dict[str, Any]] | None,
                                                                                 list[Any] | None]:
    """The operator as `[{"pauli": str, "coeff": float | None}]` and the coefficients' imaginary parts.

    A `[re, im]` coefficient keeps re in the term and im in the second list (None where a coefficient was real).
    Any term of another shape leaves the whole operator out, with a note, kept as sent in `extra`.
    """
    if source is None:
        return None, None
    if not isinstance(source, list | tuple):
        return _unread_operator(source, f"{_shape(source)} rather than a list of terms", notes, extra)
    terms, imags, pair_notes, complex_terms = [], [], [], False
    for i, item in enumerate(source):
        item = plain(item)
        if not isinstance(item, Mapping):
            return _unread_operator(source, f"term {i} is {_shape(item)}, not a mapping", notes, extra)
        pauli, coeff, imag = item.get("pauli"), item.get("coeff"), None
        if not isinstance(pauli, str):
            return _unread_operator(source, f"term {i} has no pauli string", notes, extra)
        pair = complex_pair(coeff)
        if pair is not None:
            pair_notes.append(pair_note(f"operator[{i}].coeff", pair, "im in operator_coeff_imag"))
            coeff, imag = pair
            complex_terms |= imag is not None
        elif _real(coeff):
            coeff = as_float(coeff)
        elif coeff is not None:
            return _unread_operator(source, f"term {i} has a coeff that is {_shape(coeff)}", notes, extra)
        terms.append({"pauli": pauli, "coeff": coeff})
        imags.append(imag)
    notes += pair_notes
    return terms, imags if complex_terms else None


def _unread_operator(source: Any, why: str, notes: list[str], extra: dict[str, Any]) -> tuple[None, None]:
    notes.append(f"operator: {why}; operator left out (kept in extra)")
    extra["operator"] = source
    return None, None


def short_repr(value: Any, limit: int = 80) -> str:
    """A payload value for a message: its repr cut short (a value may be megabytes, nested thousands deep, or an
    integer too long for `str`)."""
    if type(value) is int:
        try:
            text = str(value)
        except ValueError:  # Python's 4300-digit limit on int -> str
            return f"<an integer of about {int(value.bit_length() * 0.30103)} digits>"
        return text if len(text) <= 40 else f"{text[:20]}...<{len(text)} digits>"
    try:
        text = repr(value)
    except (ValueError, RecursionError):
        return f"a {type(value).__name__}"
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _shape(value: Any) -> str:
    return "null" if value is None else f"a {type(value).__name__}"


# --------------------------------------------------------------------------------------------------- the reader


@dataclass
class Payload:
    """A job's job_info as read: older forms undone (each noted) and what no column declares, by section."""

    result: Any = None
    exp_value_imag: Any = None
    input: dict[str, Any] | None = None
    program: list[str] | None = None
    operator: list[dict[str, Any]] | None = None
    operator_coeff_imag: list[Any] | None = None
    sse_program: str | None = None
    notes: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)


def read_payload(info: Mapping[str, Any] | None, transpile_result: Any = None) -> Payload:
    """Read job_info (archives already resolved) and the transpile result, as both readers need them."""
    out = Payload()
    if info is None:
        return out
    out.result, out.exp_value_imag = normalise_result(info.get("result"), out.notes)
    out.input = read_input(info)
    source = out.input or {}
    unread: dict[str, Any] = {}
    out.program = read_program(source.get("program"), out.notes, unread)
    out.operator, out.operator_coeff_imag = read_operator(source.get("operator"), out.notes, unread)
    sse = source.get("sse_program")
    if sse is None or isinstance(sse, str):
        out.sse_program = sse
    else:
        out.notes.append(f"sse_program: {_shape(sse)} rather than text, left out (kept in extra)")
        unread["sse_program"] = sse
    own = {key: info[key] for key in info.keys() - JOB_INFO_KEYS}
    raw_input = info.get("input")
    if raw_input is not None and not isinstance(raw_input, Mapping):
        own["input"] = raw_input  # an input that is not an object: kept whole
    elif raw_input is not None:
        unread = {**(undeclared(raw_input, _INPUT_SPEC) or {}), **unread}
    sections = (("job_info", own), ("input", unread), ("result", undeclared(out.result, _RESULT_SPEC)),
                ("transpile_result", undeclared(plain(transpile_result), _TRANSPILE_SPEC)))
    out.extra = {name: value for name, value in sections if value is not None and value != {}}
    return out


def undeclared(value: Any, spec: Mapping[str, Any]) -> Any:
    """What `spec` has no place for in `value`: its undeclared keys, recursively (None when there are none); a value
    that is not a mapping where one is expected is kept whole."""
    if value is None or not (type(value) is dict or isinstance(value, Mapping)):
        return value
    out = {}
    for key, item in value.items():  # a few keys: a loop beats set arithmetic here
        inner = spec.get(key, spec)
        if inner is spec:
            out[key] = item
        elif inner is not None and item is not None:
            rest = undeclared(plain(item), inner)
            if rest is not None:
                out[key] = rest
    return out or None


def job_extra(job: Mapping[str, Any] | None, sections: Mapping[str, Any]) -> dict[str, Any]:
    """The extra keys of a job: its own undeclared keys (a `job` section) and job_info's sections, URLs scrubbed."""
    own = {k: v for k, v in job.items() if k not in JOB_KEYS} if isinstance(job, Mapping) else {}
    extra = {"job": own, **sections} if own else dict(sections)
    return scrub_urls(extra) if extra else {}


def scrub_urls(value: Any) -> Any:
    """`value` with every presigned URL (http(s) with a query string or `;` parameters) replaced by URL_MARKER."""
    if isinstance(value, str):
        return URL_MARKER if _signed_url(value) else value
    if isinstance(value, Mapping):
        return {key: scrub_urls(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [scrub_urls(item) for item in value]
    return value


def _signed_url(text: str) -> bool:
    # Signatures travel in the query (X-Amz-Signature=...) or, on some stores, in ;parameters: either makes it secret.
    return text[:8].lower().startswith(("https://", "http://")) and ("?" in text or ";" in text)
