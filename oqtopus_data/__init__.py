"""oqtopus-data: an OQTOPUS Cloud job history as a Parquet dataset with DuckDB views.

The public names are the ones in `__all__`, each read lazily from the module `_PUBLIC` names, so that
`import oqtopus_data` stays cheap for the CLI (no pyarrow, numpy, polars or duckdb until a name is used).
Adding a public name is one line in `_PUBLIC`. Every other module is internal: its names may change between
releases; import the public ones from here (the command line is `oqtopus_data.cli`, the local cloud
`oqtopus_data.testing`).
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from oqtopus_data._version import __version__

# Public name -> the module that defines it.
_PUBLIC = {
    "OqtopusJobResult": "oqtopus_data.results.objects",
    "OqtopusSamplingJobResult": "oqtopus_data.results.objects",
    "OqtopusEstimationJobResult": "oqtopus_data.results.objects",
    "OqtopusMultiManualJobResult": "oqtopus_data.results.objects",
    "OqtopusSseJobResult": "oqtopus_data.results.objects",
    "result_from_raw": "oqtopus_data.results.objects",
    "flatten": "oqtopus_data.tables.flatten",
    "SCHEMAS": "oqtopus_data.tables.schema",
    "Dataset": "oqtopus_data.dataset.dataset",
    "write_dataset": "oqtopus_data.dataset.dataset",
    "compact": "oqtopus_data.dataset.dataset",
    "connect": "oqtopus_data.query.views",
    "scan": "oqtopus_data.query.views",
    "read": "oqtopus_data.query.views",
    "usage_figures": "oqtopus_data.query.usage",
    "ApiClient": "oqtopus_data.client.api",
    "Credentials": "oqtopus_data.client.config",
    "ExportOptions": "oqtopus_data.run.info",
    "export": "oqtopus_data.run.export",
    "write_report": "oqtopus_data.report",
    "load_result": "oqtopus_data.query.offline",
    "load_results": "oqtopus_data.query.offline",
    "counts": "oqtopus_data.query.offline",
    "JobNotFound": "oqtopus_data.query.offline",
}

__all__ = ["__version__", *_PUBLIC]


def __getattr__(name: str) -> Any:
    """A public name, imported on first use (PEP 562)."""
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'oqtopus_data' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_PUBLIC})

