"""History.list_page, the fake cloud's listing index, agrees with a plain filter of the ground truth."""

from __future__ import annotations

import functools
from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from oqtopus_data.testing import generate_history

S = 1_000_000


@functools.cache
def _changed_history():
    """A history with bursts, deletions, jobs added in the middle and at the end, and submissions;
    per live job: index, id, status, created_at (s), submitted_at (us or None), search text."""
    history = generate_history(400, seed=11, days=30, bursts=[40, 25])
    history.clock = lambda: history.start + timedelta(days=31)
    for job_id in history.job_ids()[::37]:
        history.delete(job_id)
    history.add_jobs(20, at=history.start + timedelta(days=12, seconds=0.5))  # in the middle
    later = history.add_jobs(15, registered=0.5)
    for job_id in later[:3]:
        if history.status(job_id) == "registered":
            history.submit(job_id, at=history.start + timedelta(days=31, hours=1))
    rows = []
    for job_id in history.job_ids():
        idx, job = history.index(job_id), history.job(job_id)
        text = " ".join((job.get("name", ""), job.get("description", ""))).lower()
        rows.append((idx, job_id, job["status"], history.created_s(idx), history.submitted_us(idx),
                     text))
    return history, rows


def _expected(rows, by, start_us, end_us, status, q, q_in_id, desc, page, size, repeat_last):
    timed = start_us is not None or end_us is not None
    matches = []
    for idx, job_id, job_status, created_s, sub_us, text in rows:
        if by == "created":
            at = created_s * S
        elif sub_us is None:
            if timed:
                continue
            at = created_s * S
        else:
            at = sub_us
        if (start_us is not None and at < start_us) or (end_us is not None and at > end_us):
            continue
        if status and job_status != status:
            continue
        if q and not (q.lower() in text or (q_in_id and q.lower() in job_id)):
            continue
        key = (created_s, job_id) if by == "created" else (at, idx)
        matches.append((key, idx))
    ordered = [idx for _, idx in sorted(matches)]
    ordered = ordered[::-1] if desc else ordered
    if not ordered:
        return [], 0
    if repeat_last:
        page = min(page, -(-len(ordered) // size))
    return ordered[(page - 1) * size:][:size], len(ordered)


def _bound(rows, drawn):
    """A window bound: None, an instant, or one close to a job's creation or submission time."""
    if drawn is None or isinstance(drawn, int):
        return drawn
    i, created, delta = drawn
    _, _, _, created_s, sub_us, _ = rows[i % len(rows)]
    return (created_s * S if created or sub_us is None else sub_us) + delta


NEAR_A_JOB = st.tuples(st.integers(0, 10_000), st.booleans(),
                      st.sampled_from([-S // 2, -1, 0, 1, S // 2]))
BOUNDS = st.one_of(st.none(), st.integers(-10 * S, 32 * 86400 * S), NEAR_A_JOB, NEAR_A_JOB)


@settings(max_examples=300, deadline=None)
@given(by=st.sampled_from(["created", "submitted"]), start=BOUNDS, end=BOUNDS,
       status=st.sampled_from([None, "succeeded", "failed", "registered", "running"]),
       q=st.sampled_from([None, "bell", "DRIFT", "4", "zzz"]), q_in_id=st.booleans(),
       desc=st.booleans(), page=st.integers(1, 40), size=st.sampled_from([1, 3, 10, 250]),
       repeat_last=st.booleans())
def test_list_page_matches_a_plain_filter_of_the_history(by, start, end, status, q, q_in_id, desc,
                                                         page, size, repeat_last):
    history, rows = _changed_history()
    args = {"start_us": _bound(rows, start), "end_us": _bound(rows, end), "status": status, "q": q, "q_in_id": q_in_id,
            "desc": desc, "page": page, "size": size, "repeat_last": repeat_last}
    assert history.list_page(by=by, **args) == _expected(rows, by, **args)


def test_the_changed_history_keeps_both_orders_consistent():
    history, rows = _changed_history()
    assert [r[1] for r in rows] == history.job_ids()
    created = [(r[3], r[1]) for r in rows]
    assert created == sorted(created)
    assert sorted(history.job_ids("submitted")) == sorted(history.job_ids())
