"""What a circuit is, one home: a job's OpenQASM programs, normalised and hashed (`circuit_id`).

Each program has its block and line comments removed, every run of whitespace made one space and no space around
punctuation; the list is hashed as md5 (hex) of the normalised programs joined by newlines. The flattener stores it
as `jobs.circuit_id`, so `GROUP BY circuit_id, device_id` compares one circuit across devices; the report's drift
groups runs by it (computing it in SQL, `circuit_id_sql`, for files written before the column existed).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

# The normalisation, as regular expressions (Python's re and DuckDB's RE2 read them alike): DuckDB runs them for
# files written before jobs.circuit_id, and normalise_program gives the same text faster (the flattener runs it on
# every job; the last two substitutions cost about 0.3 ms on a typical program, str methods a tenth of that).
_STEPS = ((r"(?s)/\*.*?\*/", " "), (r"//[^\n]*", ""), (r"[\t\n\v\f\r ]+", " "),
          (r" ?([;,(){}\[\]=+*/<>:-]) ?", r"\1"))
_BLOCK_COMMENT, _LINE_COMMENT = (re.compile(pattern) for pattern, _ in _STEPS[:2])
_WHITESPACE = str.maketrans("\t\n\v\f\r", "     ")
_PUNCTUATION = ";,(){}[]=+*/<>:-"


def normalise_program(text: str) -> str:
    """An OpenQASM program with comments removed and whitespace normalised (the text a circuit is hashed by):
    what the _STEPS substitutions give, then outer spaces stripped."""
    if "/*" in text:
        text = _BLOCK_COMMENT.sub(" ", text)
    if "//" in text:
        text = _LINE_COMMENT.sub("", text)
    # Runs of whitespace as one space (the outer ones go anyway, at the end).
    text = " ".join(filter(None, text.translate(_WHITESPACE).split(" ")))
    # No space around punctuation: with single spaces only, the last substitution removes exactly the spaces next
    # to a punctuation character, whichever it meets first.
    for mark in _PUNCTUATION:
        if mark in text:
            text = text.replace(" " + mark, mark).replace(mark + " ", mark)
    return text.strip(" ")


def circuit_key(programs: Sequence[str]) -> str:
    """The circuit of a job's programs: md5 (hex) of the normalised programs joined by newlines."""
    return hashlib.md5("\n".join(normalise_program(p) for p in programs).encode(), usedforsecurity=False).hexdigest()


def circuit_id(programs: Sequence[str] | None) -> str | None:
    """`jobs.circuit_id`: the circuit of the job's programs, None for a job without any (SSE, no input)."""
    return circuit_key(programs) if programs else None


def circuit_key_sql(column: str = "program") -> str:
    """DuckDB SQL computing `circuit_key` of a list-of-programs column (tests check both agree)."""
    text = "p"
    for pattern, replacement in _STEPS:
        text = f"regexp_replace({text}, '{pattern}', '{replacement}', 'g')"
    return f"md5(array_to_string(list_transform({column}, lambda p: trim({text})), chr(10)))"
