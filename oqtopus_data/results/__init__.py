"""The result objects (oqtopus-client 1.3.0's API) and the payload rules they and the tables share. Internal: the
classes are public from oqtopus_data."""
