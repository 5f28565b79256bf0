"""The GET /jobs walk against a model of the server's own code: no job lost, none listed twice, or a named window."""

from __future__ import annotations

import random
import time
from collections import Counter
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from listing_model import EPOCH, ModelJobs

from oqtopus_data.errors import AuthError
from oqtopus_data.fetch.listing import Limits, Lister, ListingError
from oqtopus_data.fetch.windows import Window, root_window

NOW = EPOCH + timedelta(days=40)


def history(n: int, *, seed: int = 0, bursts: tuple[int, ...] = (), gap_share: float = 0.15,
            max_gap: float = 86400.0, days: float = 30.0) -> ModelJobs:
    """`n` jobs over `days` days, whole-second creation times, some registered long before they were submitted,
    plus bursts of jobs created in one second."""
    rng = random.Random(seed)
    model = ModelJobs()
    for i in range(n):
        created = rng.uniform(0, days * 86400)
        gap = rng.uniform(1, max_gap) if rng.random() < gap_share else rng.uniform(0.001, 0.5)
        model.add(f"job-{i:05d}", int(created), created + gap)
    for b, size in enumerate(bursts):
        second = rng.randrange(int(days * 86400))
        for k in range(size):
            model.add(f"burst-{b}-{k:04d}", second, second + 0.001 * k)
    return model


def walk(model: ModelJobs, root: Window | None = None, **options) -> tuple[Counter, Lister]:
    lister = Lister(model, root or root_window(None, None), now=NOW, **options)
    return Counter(item.job["job_id"] for item in lister), lister


def test_every_job_listed_once_with_bursts_and_creation_gaps():
    model = history(2000, bursts=(300, 300, 150))
    listed, lister = walk(model, workers=4)
    assert set(listed) == model.ids()
    assert max(listed.values()) == 1
    assert not lister.failures
    assert lister.resume_point() == NOW


def test_a_page_size_the_server_refuses_steps_down_once_for_the_whole_run():
    model = history(700)
    notes: list[str] = []
    listed, _lister = walk(model, page_size=500, workers=4, notice=notes.append)
    assert set(listed) == model.ids()
    refused = [c for c in model.calls if c["size"] == 500]
    assert len(refused) == 1  # one probe, then every request uses the size that works
    assert {c["size"] for c in model.calls} == {500, 100}
    assert notes == ["GET /jobs refused page size 500 (HTTP 500); trying 100"]


def test_a_server_repeating_its_last_page_ends_each_window():
    model = history(450)
    model.repeat_last = True
    listed, lister = walk(model)
    assert set(listed) == model.ids() and max(listed.values()) == 1
    assert not lister.failures


def test_jobs_created_in_a_boundary_second_are_listed_once():
    model = ModelJobs()
    for k in range(250):  # all in the second that ends one window and starts the next
        model.add(f"edge-{k:03d}", 86400, 86400.5)
    for k in range(500):
        model.add(f"spread-{k:03d}", 3600 * k, 3600 * k + 1)
    listed, _ = walk(model, root=Window(EPOCH, EPOCH + timedelta(days=30)), workers=3)
    assert set(listed) == model.ids() and max(listed.values()) == 1


@pytest.mark.parametrize("shift_hours", [9, -9, 14])
def test_a_server_comparing_bounds_in_another_time_zone_loses_nothing(shift_hours):
    model = history(800, seed=3)
    model.shift = shift_hours * 3600
    listed, lister = walk(model, workers=4)
    assert set(listed) == model.ids() and max(listed.values()) == 1
    assert not lister.failures


def test_a_job_deleted_behind_the_walk_does_not_hide_the_next_one():
    model = ModelJobs()
    for k in range(250):  # one second, three pages: a window that cannot be split
        model.add(f"job-{k:03d}", 0, 0.5)
    deleted = []

    def delete_once(m: ModelJobs, params: dict) -> None:
        if params.get("page") == 2 and not deleted:
            deleted.append("job-005")
            m.delete("job-005")  # page 1 was read: job-100 moves onto page 1 and page 2 starts at job-101

    model.hook = delete_once
    listed, lister = walk(model, root=Window(EPOCH, EPOCH + timedelta(seconds=1)))
    assert not lister.failures
    assert set(listed) == model.ids() | {"job-005"} and max(listed.values()) == 1
    assert "job-100" in listed


def test_jobs_created_during_the_walk_never_fail_it():
    model = history(600, seed=6)
    counter = iter(range(10**6))

    def submit_more(m: ModelJobs, params: dict) -> None:
        k = next(counter)
        m.add(f"new-{k:05d}", 40 * 86400 - 5, 40 * 86400.0)  # created "now"

    model.hook = submit_more
    existing = model.ids()
    listed, lister = walk(model, workers=3)
    assert not lister.failures
    assert existing <= set(listed) and max(listed.values()) == 1


def test_jobs_the_server_cannot_render_are_noticed_and_the_rest_listed():
    model = history(350, seed=7, days=0.01)  # one dense window
    hidden = set(sorted(model.ids())[10:13])
    model.unrenderable = hidden
    listed, lister = walk(model, workers=1, limits=Limits(split_parts=2, target_pages=10))
    assert set(listed) == model.ids() - hidden
    assert not lister.failures
    assert any("left out 3 job(s)" in note for note in lister.notes), lister.notes


def test_a_silent_page_cap_is_detected_and_nothing_skipped():
    model = history(420, seed=8, days=0.002)  # 420 jobs in three minutes: one window, several pages
    model.cap = 30
    listed, lister = walk(model, workers=1)
    assert set(listed) == model.ids() and max(listed.values()) == 1
    assert lister.size.current == 30


def test_a_server_ignoring_start_time_fails_the_window_by_name():
    model = history(300, seed=9)
    model.ignore_start = True
    root = Window(EPOCH + timedelta(days=20), None)
    _, lister = walk(model, root=root)
    assert lister.failures
    message = str(lister.failures[0])
    assert "ignored start_time" in message and "2024-01-21T00:00:00Z" in message
    assert lister.resume_point() is not None and lister.resume_point() <= root.start


def test_a_listing_that_never_ends_stops_with_the_window_named():
    model = ModelJobs()
    counter = iter(range(10**7))

    def endless(m: ModelJobs, params: dict) -> None:
        for _ in range(int(params.get("size", 100))):
            m.add(f"ghost-{next(counter):07d}", 1, 1.5)

    model.hook = endless
    _, lister = walk(model, root=Window(EPOCH, EPOCH + timedelta(seconds=1)),
                     limits=Limits(max_pages=50, max_walks=3))
    assert lister.failures and "did not end after 50 pages" in str(lister.failures[0])
    assert "2024-01-01T00:00:00Z .. 2024-01-01T00:00:01Z" in str(lister.failures[0])


def test_pages_that_keep_changing_fail_the_window_after_a_few_walks():
    model = ModelJobs()
    for k in range(400):  # one second, four pages: the window cannot be split
        model.add(f"job-{k:03d}", 0, 0.5)
    doomed = sorted(model.ids())

    def churn(m: ModelJobs, params: dict) -> None:
        if params.get("page") == 2 and doomed:
            m.delete(doomed.pop(0))  # a job of page 1 disappears during every walk

    model.hook = churn
    _, lister = walk(model, root=Window(EPOCH, EPOCH + timedelta(seconds=1)), limits=Limits(max_walks=3))
    assert lister.failures and "kept disappearing" in str(lister.failures[0])


def test_an_auth_error_stops_the_whole_listing():
    class Refusing(ModelJobs):
        def list_page(self, params, *, tries=None):
            raise AuthError("The OQTOPUS API refused the credentials (HTTP 401 on GET /jobs)")

    with pytest.raises(AuthError):
        walk(Refusing())


def test_memory_of_listed_ids_stays_bounded_by_the_windows_in_flight():
    model = history(8000, seed=11, days=30)
    lister = Lister(model, root_window(None, None), now=NOW, workers=2)
    peak = 0
    for _ in lister:
        peak = max(peak, len(lister._seen))
    assert peak < 2500  # ids of finished windows are forgotten once no unfinished window touches them


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.integers(0, 400),
    bursts=st.lists(st.integers(1, 250), max_size=3),
    seed=st.integers(0, 2**16),
    days=st.sampled_from([0.001, 0.5, 3, 30]),
    max_size=st.sampled_from([3, 17, 100]),
    shift=st.sampled_from([0, 9 * 3600, -9 * 3600]),
    deletions=st.integers(0, 20),
    insertions=st.integers(0, 20),
    repeat_last=st.booleans(),
    workers=st.integers(1, 4),
)
def test_property_every_job_once_or_a_named_window(n, bursts, seed, days, max_size, shift, deletions, insertions,
                                                   repeat_last, workers):
    model = history(n, seed=seed, bursts=tuple(bursts), days=days)
    model.max_size, model.shift, model.repeat_last = max_size, shift, repeat_last
    rng = random.Random(seed)
    before = model.ids()
    doomed = rng.sample(sorted(before), min(deletions, len(before)))
    fresh = iter(range(insertions))

    def mutate(m: ModelJobs, params: dict) -> None:
        roll = rng.random()
        if roll < 0.1 and doomed:
            m.delete(doomed.pop())
        elif roll < 0.2:
            k = next(fresh, None)
            if k is not None:
                m.add(f"late-{k}", int(days * 86400) + 1, days * 86400 + 2.0)

    model.hook = mutate
    lister = Lister(model, root_window(None, None), now=NOW, page_size=max_size, workers=workers,
                    limits=Limits(max_walks=8))
    listed = Counter(item.job["job_id"] for item in lister)
    assert max(listed.values(), default=1) == 1  # never twice
    if lister.failures:  # allowed only with a window named, and never claiming completeness
        assert all(isinstance(f, ListingError) and "jobs created in [" in str(f) for f in lister.failures)
        resume = lister.resume_point()  # the next run starts at or before the first window that failed
        assert resume is None or all(f.window.start is not None and resume <= f.window.start
                                     for f in lister.failures)
    else:
        survivors = before & model.ids()  # there from start to end: must be listed
        assert survivors <= set(listed)


def test_the_resume_point_never_passes_jobs_listed_but_not_yet_taken():
    model = history(300, seed=12)
    lister = Lister(model, root_window(None, None), now=NOW, workers=2)
    items = iter(lister)
    first = next(items)
    deadline = time.monotonic() + 10
    while lister.open_windows() and time.monotonic() < deadline:  # the walk finishes while jobs wait in the queue
        time.sleep(0.01)
    assert not lister.open_windows()
    resume = lister.resume_point()
    assert resume is None or resume < NOW
    rest = list(items)
    assert len(rest) + 1 == 300 and first.job["job_id"] not in {i.job["job_id"] for i in rest}
    assert lister.resume_point() == NOW
