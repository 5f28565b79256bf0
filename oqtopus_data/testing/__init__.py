"""A local OQTOPUS Cloud for tests, benchmarks and the demo: synthetic history, API server, faults.

    with FakeCloud(n_jobs=500, seed=0) as cloud:          # behaves like the server's code
        requests.get(f"{cloud.url}/jobs", headers={"q-api-token": cloud.token})
    FakeCloud(n_jobs=500, api="newest")                   # its newest generation: submitted_at windows
    FakeCloud(n_jobs=500, api="spec")                     # the older, specified behaviours
"""

from oqtopus_data.testing.behaviour import NEWEST_API, SERVER_API, SPEC_API, ApiBehaviour
from oqtopus_data.testing.faults import MALFORMED_KINDS, Faults
from oqtopus_data.testing.payloads import EXP_VALUE_FORMS
from oqtopus_data.testing.server import DEFAULT_ACCOUNT, FakeCloud, RequestCounts, serve_forever
from oqtopus_data.testing.synth import History, generate_history

__all__ = ["DEFAULT_ACCOUNT", "EXP_VALUE_FORMS", "MALFORMED_KINDS", "NEWEST_API", "SERVER_API", "SPEC_API",
           "ApiBehaviour", "FakeCloud", "Faults", "History", "RequestCounts", "generate_history", "serve_forever"]
