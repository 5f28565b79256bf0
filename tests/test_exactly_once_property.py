"""Property: several runs of one export under random 404s, 403s, foreign bodies, timeouts and clock steps on
GET /jobs/{id} and the listing; once the disturbances end, one more run with --verify leaves the dataset equal to the
server's final state, every job_id once."""

from __future__ import annotations

import contextlib
import random
import tempfile
import time
from pathlib import Path

from groundtruth import assert_matches_ground_truth
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from oqtopus_data.client.api import ApiClient
from oqtopus_data.client.config import Credentials
from oqtopus_data.enums import TERMINAL
from oqtopus_data.errors import OqtopusDataError
from oqtopus_data.run.export import ExportOptions, export
from oqtopus_data.testing import FakeCloud
from oqtopus_data.testing.faults import foreign_body
from oqtopus_data.testing.server import NOT_FOUND

#: What one GET /jobs/{id} or one listing page may meet, drawn per request.
DISTURBANCES = ("404", "403", "foreign", "timeout", "500")
TIMEOUT = 0.4  # the client's read timeout and deadline in these runs; a "timeout" sleeps past it


def run(cloud: FakeCloud, out: Path, *, disturbed: bool, **options) -> object:
    """One run; a disturbed one gives up early (short deadlines, two tries), the last one has the usual patience."""
    patience = {"max_tries": 2, "timeout": TIMEOUT, "deadline": TIMEOUT} if disturbed else {}
    with ApiClient(Credentials(url=cloud.url, token=cloud.token), workers=4, backoff=0.01, **patience) as api:
        return export(api, out, ExportOptions(page_size=20, **options))


def disturbing(rng: random.Random, rate: float, kinds: list[str], job_ids: list[str]):
    """Hooks for GET /jobs/{id} and GET /jobs answering a drawn disturbance at `rate`, else as usual."""

    def draw() -> str | None:
        return rng.choice(kinds) if kinds and rng.random() < rate else None

    def on_job(cloud: FakeCloud, job_id: str):
        kind = draw()
        if kind == "404":
            return 404, {"message": NOT_FOUND}
        if kind == "403":
            return 403, {"message": "Forbidden"}
        if kind == "foreign":
            other = rng.choice(job_ids)
            return foreign_body(cloud, other) if other != job_id and cloud.history.index(other) is not None \
                else None
        if kind == "timeout":
            time.sleep(TIMEOUT * 2.5)
        if kind == "500":
            return 500, {"message": "Internal Server Error"}
        return None

    def on_list(cloud: FakeCloud, query: dict[str, str]):
        kind = draw()
        if kind == "403":
            return 403, {"message": "Forbidden"}
        if kind in ("500", "404"):
            return 500, {"message": "Internal Server Error"}
        if kind == "timeout":
            time.sleep(TIMEOUT * 2.5)
        return None

    return on_job, on_list


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10_000),
    runs=st.integers(2, 3),
    rate=st.sampled_from([0.05, 0.15, 0.3]),
    kinds=st.lists(st.sampled_from(DISTURBANCES), min_size=1, max_size=5, unique=True),
    steps=st.lists(st.sampled_from([0, 0, 2 * 3600, -2 * 86400, 2 * 86400]), min_size=3, max_size=3),
    churn=st.booleans(),
)
def test_property_disturbed_runs_then_one_verify_equal_the_server(seed, runs, rate, kinds, steps, churn):
    rng = random.Random(seed)
    with FakeCloud(n_jobs=40, seed=seed) as cloud, tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out"
        on_job, on_list = disturbing(rng, rate, kinds, list(cloud.history.job_ids()))
        for number in range(runs):
            cloud.advance_clock(steps[number])  # a clock step of the server (forward, or back)
            cloud.faults.on_job, cloud.faults.on_list = on_job, on_list
            with contextlib.suppress(OqtopusDataError):  # a 403 on the listing refuses the credentials
                run(cloud, out, disturbed=True)
            cloud.faults.on_job = cloud.faults.on_list = None
            if churn:  # the history moves on between runs: jobs finish, new ones come, old ones are deleted
                pending = [j for j in cloud.history.job_ids() if cloud.history.status(j) not in TERMINAL
                           and cloud.history.status(j) != "registered"]
                for job_id in pending[:2]:
                    cloud.finish(job_id)
                cloud.add_jobs(3)
                cloud.delete_oldest(1)
        cloud.set_clock(None)
        report = run(cloud, out, disturbed=False, verify=True)
        assert report.ok, report.errors
        assert_matches_ground_truth(out, cloud)
