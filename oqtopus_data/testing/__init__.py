"""A local OQTOPUS Cloud for tests, benchmarks and the demo: synthetic history, API server, faults.

    with FakeCloud(n_jobs=500, seed=0) as cloud:
        requests.get(f"{cloud.url}/jobs", headers={"q-api-token": cloud.token})
"""

from oqtopus_data.testing.faults import MALFORMED_KINDS, Faults
from oqtopus_data.testing.server import FakeCloud, RequestCounts, serve_forever
from oqtopus_data.testing.synth import History, generate_history

__all__ = ["MALFORMED_KINDS", "FakeCloud", "Faults", "History", "RequestCounts",
           "generate_history", "serve_forever"]
