"""One job with a bogus submitted_at (1970) among good ones is that job's oddity, named in a note; it is no proof
that the server ignored start_time, which only most of a page submitted before its window shows."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

from hostile import Hostile, job
from listing_model import EPOCH, ModelJobs

from oqtopus_data import connect
from oqtopus_data.client.api import ApiClient
from oqtopus_data.client.config import Credentials
from oqtopus_data.fetch.listing import Lister
from oqtopus_data.fetch.windows import Window
from oqtopus_data.run.export import ExportOptions, export

BOGUS = "bogus-1970"
GOOD = [f"good-{i}" for i in range(9)]


def test_a_job_submitted_in_1970_among_good_ones_is_noted_and_the_window_is_complete() -> None:
    model = ModelJobs()
    for i, job_id in enumerate(GOOD):
        model.add(job_id, 86400 * (i + 1), 86400 * (i + 1) + 0.5)
    model.add(BOGUS, 86400 * 5, -(EPOCH.timestamp()))  # created with the others, submitted_at 1970-01-01
    notes: list[str] = []
    lister = Lister(model, Window(EPOCH, None), now=EPOCH + timedelta(days=30), notice=notes.append)
    listed = [item.job["job_id"] for item in lister]
    assert sorted(listed) == sorted([*GOOD, BOGUS]) and not lister.failures
    assert [n for n in notes if BOGUS in n] == [
        f"GET /jobs listed job {BOGUS} among the jobs created in [2024-01-01T00:00:00Z .. now], but it says it was "
        "submitted at 1970-01-01T00:00:00Z, before that: its submitted_at is not to be trusted"]


def test_most_of_a_page_before_its_window_still_proves_the_server_ignored_start_time() -> None:
    model = ModelJobs(ignore_start=True)
    for i in range(6):
        model.add(f"old-{i}", i, i + 0.5)  # created on 2024-01-01
    for i in range(4):
        model.add(f"new-{i}", 86400 * 20 + i, 86400 * 20 + i + 0.5)
    lister = Lister(model, Window(EPOCH + timedelta(days=19), None), now=EPOCH + timedelta(days=30))
    list(lister)
    assert lister.failures and "ignored start_time (6 of the 10 jobs of a page" in str(lister.failures[0])


def pages(jobs: list[tuple[str, dict[str, Any]]]) -> Any:
    """GET /jobs as the server's code answers it: (creation time, job) filtered on the creation time, page by
    page, `[]` past the end."""

    def behave(h: Any) -> None:
        query = {k: v[0] for k, v in parse_qs(urlsplit(h.path).query).items()}
        size, page = int(query.get("size", 100)), int(query.get("page", 1))
        low, high = (datetime.fromisoformat(query[k]) if k in query else None for k in ("start_time", "end_time"))
        chosen = [j for created, j in jobs if (low is None or datetime.fromisoformat(created) >= low)
                  and (high is None or datetime.fromisoformat(created) <= high)]
        chosen = chosen[::-1] if query.get("order") == "DESC" else chosen
        h.send_body(200, json.dumps(chosen[(page - 1) * size: page * size]).encode())

    return behave


def test_nine_good_jobs_and_one_from_1970_export_the_nine_with_exit_0_on_every_run(server: Hostile, tmp_path) -> None:
    info = {"result": {"sampling": {"counts": {"0": 1}}}}
    jobs = [(f"2024-05-0{i + 1}T00:00:00+00:00", job(j, info, submitted_at=f"2024-05-0{i + 1}T00:00:00Z"))
            for i, j in enumerate(GOOD)]
    jobs.insert(4, ("2024-05-04T12:00:00+00:00", job(BOGUS, info, submitted_at="1970-01-01T00:00:00Z")))
    server.on("/jobs", pages(jobs))
    since = EPOCH
    for run in range(2):
        notes: list[str] = []
        with ApiClient(Credentials(server.url, "tok"), max_tries=2, backoff=0.001) as api:
            report = export(api, tmp_path / "out", ExportOptions(since=since, devices_snapshot=False),
                            notice=notes.append)
        assert report.ok and report.complete, report.errors
        assert run or any(BOGUS in n and "1970-01-01T00:00:00Z" in n for n in notes), notes
    ids = sorted(r[0] for r in connect(tmp_path / "out").execute("SELECT job_id FROM jobs").fetchall())
    assert ids == GOOD  # the 1970 job is outside --since: not selected
