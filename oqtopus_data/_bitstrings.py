"""Reading result payloads: bitstring keys as the official SDK reads them, and older encodings.

Older servers sent counts as JSON text and complex numbers as `[re, im]`; these are read rather than
dropped, and every change is written to a list of notes (a result's `normalised`). Shared by
`results` and the flatteners, so both agree on which keys are valid.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any


def bitstring_to_int(bitstring: str) -> int:
    """Read a counts key as a binary number: "0101", "0b0101", "01 01" and "01_01" all give 5.

    Outer whitespace, inner spaces, `_` and one `0b` prefix are ignored; anything else raises
    `ValueError("Invalid bitstring: ...")`, as in oqtopus-client.
    """
    if not isinstance(bitstring, str):
        raise ValueError(f"Invalid bitstring: {bitstring!r}")
    digits = bitstring.strip().replace("_", "").replace(" ", "").removeprefix("0b")
    if not digits or digits.strip("01"):
        raise ValueError(f"Invalid bitstring: {bitstring!r}")
    return int(digits, 2)


def counts_to_int_keys(counts: Any, what: str = "counts") -> dict[int, Any]:
    """Re-key one counts mapping by integer; empty or missing counts give `{}`."""
    if not counts:
        return {}
    if not isinstance(counts, Mapping):
        raise ValueError(f"{what} is not a mapping: {type(counts).__name__}")
    return {bitstring_to_int(key): value for key, value in counts.items()}


def plain(value: Any) -> Any:
    """A pydantic model (the SDK's) as a plain dict; mappings copied; anything else unchanged."""
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
    except ValueError:
        notes.append(f"{what}: a string that is not JSON, left as is")
        return value
    if not isinstance(parsed, Mapping):
        notes.append(f"{what}: a JSON string that is not an object, left as is")
        return value
    notes.append(f"{what}: parsed from a JSON string")
    return dict(parsed)


def complex_pair(value: Any) -> tuple[float, float] | None:
    """`(re, im)` when `value` is a two-number list (an older complex encoding), else None."""
    if isinstance(value, list | tuple) and len(value) == 2 and all(
        isinstance(x, int | float) and not isinstance(x, bool) for x in value
    ):
        return float(value[0]), float(value[1])
    return None


def normalise_result(result: Any, notes: list[str]) -> tuple[Any, float | None]:
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
                notes.append(f"exp_value: [re, im] {list(pair)}, kept re, im in exp_value_imag")
            else:
                notes.append(f"stds: [re, im] {list(pair)}, kept re, dropped im")
        result["estimation"] = estimation
    return result, imag


def read_program(source: Any, notes: list[str]) -> list[str] | None:
    """The input's program list; a lone string (older payloads) becomes a list of one."""
    if isinstance(source, str):
        notes.append("program: a single string, read as a list of one program")
        return [source]
    return list(source) if isinstance(source, list | tuple) else None


def read_operator(source: Any, notes: list[str]) -> list[dict[str, Any]] | None:
    """The operator as `[{"pauli": str, "coeff": float | None}]`; `[re, im]` coeffs keep re."""
    if not isinstance(source, list | tuple):
        return None
    terms = []
    for i, item in enumerate(source):
        item = plain(item)
        if not isinstance(item, Mapping):
            notes.append(f"operator[{i}]: not a mapping, left out")
            continue
        coeff = item.get("coeff")
        pair = complex_pair(coeff)
        if pair is not None:
            notes.append(f"operator[{i}].coeff: [re, im] {list(pair)}, kept re, dropped im")
            coeff = pair[0]
        elif isinstance(coeff, int | float) and not isinstance(coeff, bool):
            coeff = float(coeff)
        terms.append({"pauli": item.get("pauli"), "coeff": coeff})
    return terms
