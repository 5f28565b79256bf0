"""oqtopus-data: an OQTOPUS Cloud job history as a Parquet dataset with DuckDB views.

The public names are imported lazily so that `import oqtopus_data` stays cheap for the CLI.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "OqtopusJobResult": "results",
    "OqtopusSamplingJobResult": "results",
    "OqtopusEstimationJobResult": "results",
    "OqtopusMultiManualJobResult": "results",
    "OqtopusSseJobResult": "results",
    "result_from_raw": "results",
    "SCHEMAS": "schema",
    "Dataset": "dataset",
    "write_dataset": "dataset",
    "connect": "views",
    "scan": "views",
    "read": "views",
    "export": "export",
    "write_report": "report",
    "load_result": "offline",
    "load_results": "offline",
    "counts": "offline",
    "JobNotFound": "offline",
}

# `flatten` is both a module and the function users call as `oqtopus_data.flatten(results)`; importing the
# function eagerly makes the package attribute the function, whatever imports the module later.
from .flatten import flatten  # noqa: E402

__all__ = ["__version__", "flatten", *_EXPORTS]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'oqtopus_data' has no attribute {name!r}")
    return getattr(import_module(f"oqtopus_data.{module}"), name)
