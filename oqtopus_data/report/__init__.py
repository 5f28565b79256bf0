"""`oqtopus-data report`: one self-contained HTML file (inline SVG charts, an inline script, no network) that
summarises an export: overview, jobs per week, queue and run times, success rates, usage, devices and their
calibration, top outcomes, drift of repeated circuits, estimation series and a searchable table of the newest jobs.

Every section is a DuckDB query or two that aggregate (GROUP BY, quantiles, window functions) down to a few hundred
rows; Python only draws those rows, so a million-job export takes seconds. Every string that comes from the data
is escaped on its way into the HTML. Modules: build (write_report), context (selection, sections), overview,
results, fleet, jobtable (the sections), drift (the drift definition, shared with examples/device_drift.py),
stats, charts, svg, formats, page, relations.
"""

from __future__ import annotations

from oqtopus_data.report.build import ReportSummary, SelectionError, render, write_report
from oqtopus_data.report.context import Scope

__all__ = ["ReportSummary", "Scope", "SelectionError", "render", "write_report"]
