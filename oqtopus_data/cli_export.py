"""`python -m oqtopus_data.cli_export` runs `oqtopus-export` (for environments without the console script)."""

from oqtopus_data.cli import export_command

if __name__ == "__main__":
    export_command(prog_name="oqtopus-export")
