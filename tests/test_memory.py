"""Memory stays bounded whatever the server sends: the shared byte budget, and a property test where a hostile
server sends maximal bodies (archives at the limit, zip and gzip bombs, bodies without a length) to several
workers while tracemalloc watches the peak."""

from __future__ import annotations

import io
import json
import threading
import time
import tracemalloc
import zipfile
from collections.abc import Iterator
from typing import Any

import pytest
from hostile import Hostile, gzip_json_array, job, nested, raw, unsized, zipped
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from oqtopus_data.client.api import ApiClient
from oqtopus_data.client.config import Credentials
from oqtopus_data.client.limits import ByteBudget
from oqtopus_data.errors import ApiError
from oqtopus_data.fetch.jobs import fetch_jobs

LIMIT = 1 << 20  # per archive and per API body
BUDGET = 2 << 20
WORKERS = 4
# The budget, plus one job beyond it (body, inflated entry and its text: 3 MiB), plus 1 MiB for what is not
# budgeted (chunks being read and inflated, the parser, the pool). Without the budget, four workers on maximal
# archives hold up to 12 MiB.
PEAK_BOUND = BUDGET + 3 * LIMIT + (1 << 20)


# ---- the byte budget ---------------------------------------------------------------------------------------------
def test_a_reservation_past_the_budget_waits_for_a_release() -> None:
    budget = ByteBudget(100)
    order: list[str] = []
    with budget.hold() as first:
        first.grow(80)
        waiter = threading.Thread(target=lambda: (budget.hold().__enter__().grow(50), order.append("second")))
        waiter.start()
        time.sleep(0.1)
        order.append("released")
    waiter.join(5)
    assert order == ["released", "second"]
    assert budget.peak == 80


def test_a_reservation_larger_than_the_budget_proceeds_alone() -> None:
    budget = ByteBudget(100)
    with budget.hold() as hold:
        hold.grow(500)
        assert budget.used == 500
    assert budget.used == 0


def test_holders_that_all_need_more_never_wait_for_each_other_for_ever() -> None:
    budget = ByteBudget(100)
    both_hold = threading.Barrier(2)
    done: list[int] = []

    def work(n: int) -> None:
        with budget.hold() as hold:
            hold.grow(50)
            both_hold.wait(5)
            hold.grow(50)  # 150 > 100: one of the two goes past the limit, the other waits for it
            done.append(n)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)
    assert sorted(done) == [0, 1]
    assert budget.used == 0 and budget.peak == 150


# ---- maximal bodies ----------------------------------------------------------------------------------------------
def padded_result(size: int) -> bytes:
    """A valid result.json of `size` bytes, mostly blanks: the largest body whose decoded value is small."""
    head = json.dumps({"sampling": {"counts": {"0": 1}}}).encode()
    return head + b" " * (size - len(head))


def bomb_zip(inflated: int, *, understate: bool) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive, \
            archive.open("result.json", "w", force_zip64=False) as entry:
        entry.write(b"{}")
        for _ in range(inflated // (1 << 20)):
            entry.write(b" " * (1 << 20))
    data = bytearray(buffer.getvalue())
    if understate:  # declare 100 bytes in both headers: the inflater must stop, not trust the data
        local, central = data.index(b"PK\x03\x04"), data.index(b"PK\x01\x02")
        data[local + 22 : local + 26] = (100).to_bytes(4, "little")
        data[central + 24 : central + 28] = (100).to_bytes(4, "little")
    return bytes(data)


BODIES: dict[str, Any] = {
    "stored_at_limit": raw(zipped({"result.json": padded_result(LIMIT - 200)}, compress=False)),
    "deflated_at_limit": raw(zipped({"result.json": padded_result(LIMIT)})),
    "zip_bomb": raw(bomb_zip(64 << 20, understate=False)),
    "understated_zip_bomb": raw(bomb_zip(64 << 20, understate=True)),
    "declared_too_large": raw(b"\0" * (4 * LIMIT)),
    "unsized_too_large": unsized(b"\0" * (4 * LIMIT)),
    "gzip_encoded_bomb": raw(gzip_json_array(64 << 20), 200, "application/zip", **{"Content-Encoding": "gzip"}),
    "gzip_in_gzip": raw(b"\x1f\x8b" + b"\0" * 64, 200, "application/zip", **{"Content-Encoding": "gzip, gzip"}),
    "nested_json": raw(zipped({"result.json": nested(200_000)})),
}
GOOD = {"stored_at_limit", "deflated_at_limit"}


@pytest.fixture(scope="module")
def server() -> Iterator[Hostile]:
    with pytest.MonkeyPatch.context() as patch, Hostile() as hostile:
        patch.setenv("NO_PROXY", "127.0.0.1")
        yield hostile


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kinds=st.lists(st.sampled_from(sorted(BODIES)), min_size=WORKERS, max_size=3 * WORKERS))
def test_peak_memory_stays_bounded_whatever_the_server_sends(server: Hostile, kinds: list[str]) -> None:
    listed = []
    for n, kind in enumerate(kinds):
        path = f"/storage/j{n}/result.zip"
        server.on(path, BODIES[kind])
        listed.append(job(f"j{n}", {"result": server.storage_url(path)}))
    api = ApiClient(Credentials(server.url, "tok-SECRET-123", None, 5.0, "test"), sleep=lambda s: None,
                    max_tries=1, archive_limit=LIMIT, json_limit=LIMIT, memory_budget=BUDGET, workers=WORKERS)
    outcomes = []
    tracemalloc.start()
    try:
        for fetched in fetch_jobs(api, listed, workers=WORKERS):
            outcomes.append((fetched.job_id, fetched.error is None))
            del fetched
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        api.close()
    assert outcomes == [(f"j{n}", kind in GOOD) for n, kind in enumerate(kinds)]
    assert peak <= PEAK_BOUND, f"peak {peak / 2**20:.1f} MiB"
    assert api.budget.peak <= BUDGET + 3 * LIMIT
    assert api.budget.used == 0


def test_an_api_body_in_gzip_inside_gzip_is_refused_unread() -> None:
    with pytest.MonkeyPatch.context() as patch, Hostile() as server:
        patch.setenv("NO_PROXY", "127.0.0.1")
        server.on("/jobs/j", BODIES["gzip_in_gzip"])
        api = ApiClient(Credentials(server.url, "tok-SECRET-123", None, 5.0, "test"), sleep=lambda s: None)
        with pytest.raises(ApiError) as info:
            api.get_job("j")
        assert str(info.value) == (
            f"GET {server.url}/jobs/j: the body is encoded as 'gzip, gzip', which was not asked for")
        assert server.hits["/jobs/j"] == 1
