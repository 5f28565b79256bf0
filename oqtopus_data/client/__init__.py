"""Speaking to the OQTOPUS Cloud API: credentials (config), the endpoints (api), the transport (retries, pace,
deadlines, byte budget, redaction) and reading archives. Internal: import the public names from oqtopus_data."""
