"""read_archive: one-file zips of JSON, with sizes bounded before and while inflating."""

from __future__ import annotations

import io
import json
import struct
import zipfile

import pytest

from oqtopus_data.client.archives import ArchiveError, read_archive

LIMIT = 1 << 20


def make_zip(entries: dict[str, bytes], *, directories: tuple[str, ...] = ()) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name in directories:
            archive.writestr(zipfile.ZipInfo(name), b"")
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def bomb(inflated: int) -> bytes:
    """A small zip whose one JSON entry inflates to `inflated` bytes, written in 1 MiB pieces."""
    buffer = io.BytesIO()
    chunk = b" " * (1 << 20)
    with (
        zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive,
        archive.open("result.json", "w") as entry,
    ):
        entry.write(b"{}")
        for _ in range(inflated // len(chunk)):
            entry.write(chunk)
    return buffer.getvalue()


def understate_size(data: bytes, size: int) -> bytes:
    """Rewrite the declared uncompressed size in the local header and central directory."""
    patched = bytearray(data)
    local = patched.index(b"PK\x03\x04")
    struct.pack_into("<I", patched, local + 22, size)
    central = patched.index(b"PK\x01\x02")
    struct.pack_into("<I", patched, central + 24, size)
    return bytes(patched)


def test_single_json_entry_is_decoded() -> None:
    result = {"sampling": {"counts": {"00": 5, "11": 3}}}
    data = make_zip({"result.json": json.dumps(result).encode()}, directories=("job/",))
    assert read_archive(data, key="result", limit=LIMIT) == result


def test_combined_program_may_be_a_json_string() -> None:
    data = make_zip({"combined_program.json": b'"OPENQASM 3; qubit[2] q;"'})
    assert read_archive(data, key="combined_program", limit=LIMIT) == "OPENQASM 3; qubit[2] q;"


def test_archive_without_entry_is_refused() -> None:
    with pytest.raises(ArchiveError, match="expected exactly one file, found no entry"):
        read_archive(make_zip({}), key="result", limit=LIMIT)


def test_archive_with_two_entries_is_refused() -> None:
    data = make_zip({"result.json": b"{}", "extra.json": b"{}"})
    with pytest.raises(ArchiveError, match="found 2 entries"):
        read_archive(data, key="result", limit=LIMIT)


def test_bytes_that_are_not_a_zip_are_refused() -> None:
    with pytest.raises(ArchiveError, match="result archive: not a zip archive"):
        read_archive(b"<Error><Code>AccessDenied</Code></Error>", key="result", limit=LIMIT)


def test_invalid_json_is_refused_with_its_position() -> None:
    data = make_zip({"result.json": b'{"sampling": '})
    with pytest.raises(ArchiveError, match=r"invalid JSON \(Expecting value at line 1 column 14\)"):
        read_archive(data, key="result", limit=LIMIT)


def test_non_utf8_content_is_refused() -> None:
    data = make_zip({"result.json": '{"name": "café"}'.encode("latin-1")})
    with pytest.raises(ArchiveError, match="not UTF-8 text"):
        read_archive(data, key="result", limit=LIMIT)


@pytest.mark.parametrize(
    ("key", "payload", "expected"),
    [
        ("result", b"[1, 2]", "the JSON root is an array, expected an object"),
        ("input", b'"x"', "the JSON root is a string, expected an object"),
        ("transpile_result", b"null", "the JSON root is null, expected an object"),
        ("combined_program", b"42", "the JSON root is a number, expected a string or object"),
    ],
)
def test_json_root_of_the_wrong_type_is_refused(key: str, payload: bytes, expected: str) -> None:
    with pytest.raises(ArchiveError) as info:
        read_archive(make_zip({f"{key}.json": payload}), key=key, limit=LIMIT)
    assert (info.value.key, info.value.problem) == (key, expected)
    assert isinstance(info.value, ValueError)


def test_entry_declared_over_the_limit_is_refused_before_inflating() -> None:
    data = make_zip({"result.json": b'{"a": "' + b"x" * 2000 + b'"}'})
    with pytest.raises(ArchiveError, match="declares 2009 bytes, over the limit of 1000"):
        read_archive(data, key="result", limit=1000)


def test_zip_bomb_is_refused_by_its_declared_size() -> None:
    data = bomb(16 << 20)
    assert len(data) < 64 * 1024
    with pytest.raises(ArchiveError, match="over the limit of 1048576"):
        read_archive(data, key="result", limit=LIMIT)


def test_zip_bomb_that_understates_its_size_never_inflates_past_the_limit() -> None:
    data = understate_size(bomb(16 << 20), 100)
    with pytest.raises(ArchiveError, match="corrupt archive"):
        read_archive(data, key="result", limit=LIMIT)


@pytest.mark.parametrize("payload", [
    b'{"sampling": {"counts": {"00": 5, "11": 3}}, "estimation": {"exp_value": [0.42], "stds": 1.5e-320}}',
    b'\xef\xbb\xbf{"bom": true}',  # a byte-order mark
    b'{"nan": NaN, "inf": 1e400, "big": 123456789012345678901234567890, "neg": -9223372036854775809}',
    b'{"lone": "\\udc00", "pair": "\\ud83d\\ude00", "dup": 1, "dup": 2}',
    b'{"deep": ' + b"[" * 50 + b"]" * 50 + b"}",
])
def test_json_is_read_as_the_standard_library_reads_it(payload: bytes) -> None:
    """msgspec decodes the entry; what it refuses (a BOM, NaN, huge numbers, a lone surrogate) is read again by the
    standard library, so the value is the same whichever decoder read it."""
    value = read_archive(make_zip({"result.json": payload}), key="result", limit=LIMIT)
    expected = json.loads(payload.decode("utf-8-sig"))
    assert repr(value) == repr(expected)


def test_invalid_json_keeps_the_standard_library_s_wording() -> None:
    data = make_zip({"result.json": b'{"a": 1,}'})
    wording = r"invalid JSON \(Expecting property name enclosed in double quotes at line 1 column 9\)"
    with pytest.raises(ArchiveError, match=wording):
        read_archive(data, key="result", limit=LIMIT)
