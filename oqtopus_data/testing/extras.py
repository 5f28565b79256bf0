"""Keys no schema declares, which some servers send anyway: on the job, in job_info, inside archives.

With `undeclared=True` a history gives about a third of its submitted jobs such keys, chosen per job
from its own hash, so tests can check that an exporter keeps everything the server sends.
"""

from __future__ import annotations

from typing import Any

from oqtopus_data.testing.catalog import uniforms

LEVELS = ("job", "job_info", "input", "result", "transpile_result")
# An undeclared job_info key whose value is a presigned URL to an archive like the declared ones.
URL_KEY = "execution_log"
URL_ENTRY = "execution_log.txt"


def undeclared_keys(seed: int, idx: int, archive_keys: tuple[str, ...],
                    log: str) -> dict[str, dict[str, Any]]:
    """The undeclared keys of one submitted job by level (LEVELS), only non-empty levels.

    `archive_keys` are the job's job_info archives; `log` is the text the URL key's archive holds.
    Under "job_info", URL_KEY maps to that text (the ground truth resolves archives inline).
    """
    u = uniforms(seed, idx, "undeclared")
    if u[0] >= 0.35:
        return {}
    out: dict[str, dict[str, Any]] = {}
    if u[1] < 0.7:
        out["job"] = {"queue_name": ("default", "priority", "batch")[int(u[2] * 3)],
                      "cost_estimate": {"unit": "credits", "value": round(1 + 99 * u[3], 2)}}
    info: dict[str, Any] = {}
    if u[4] < 0.6:
        info["queue_position"] = int(u[5] * 50)
    if u[6] < 0.5:
        info[URL_KEY] = log
    if info:
        out["job_info"] = info
    if u[7] < 0.7:
        out["input"] = {"program_format": "openqasm3",
                        "client": {"name": "oqtopus-client", "version": "1.3.0"}}
    if "result" in archive_keys and u[8] < 0.7:
        out["result"] = {"timing": {"queue_s": round(30 * u[9], 3),
                                    "execution_s": round(5 * u[10], 3)}}
    if "transpile_result" in archive_keys and u[11] < 0.7:
        out["transpile_result"] = {"transpiler": {"name": "tranqu", "version": "0.4.1"},
                                   "warnings": [] if u[12] < 0.5 else ["qubit 3 has low fidelity"]}
    return out


def execution_log(job_id: str, name: str) -> str:
    """The text of the URL_KEY archive of a job."""
    return f"execution of {job_id} ({name})\nqueue -> device -> done\n"
