"""One export run, orchestrated by export.py, and what it carries between commits: options and report (info), rows on
their way to a commit, SSE logs, device snapshots. Internal: export and ExportOptions are public."""
