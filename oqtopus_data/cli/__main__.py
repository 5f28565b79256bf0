"""`python -m oqtopus_data.cli` runs `oqtopus-data`."""

from oqtopus_data.cli import main

main(prog_name="oqtopus-data")
