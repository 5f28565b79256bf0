"""kill -9 at random moments of real exports and compactions, then a normal run: the exact uninterrupted dataset."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time

from cli_support import EXPORT_COMMAND
from groundtruth import assert_matches_ground_truth

from oqtopus_data import connect
from oqtopus_data.testing import FakeCloud, Faults

TABLES = ("jobs", "counts", "divided_counts", "estimations", "errors")
VOLATILE_COLUMNS = {"exported_at", "recorded_at"}  # when a row was written: differs between runs by nature


def snapshot(out) -> dict[str, list[tuple]]:
    con = connect(out)
    result = {}
    for table in TABLES:
        cols = [c[0] for c in con.execute(f"DESCRIBE {table}").fetchall() if c[0] not in VOLATILE_COLUMNS]
        result[table] = con.execute(f"SELECT {', '.join(cols)} FROM {table} ORDER BY ALL").fetchall()
    return result


def command(out, *extra: str) -> list[str]:
    return [*EXPORT_COMMAND, "-q", "--checkpoint-every", "40", "--workers", "4",
            "--page-size", "60", *extra, str(out)]


def test_killed_runs_then_a_normal_run_give_the_uninterrupted_dataset(tmp_path):
    rng = random.Random(2024)
    with FakeCloud(n_jobs=500, seed=21, faults=Faults(latency=0.002)) as cloud:
        env = {**os.environ, "OQTOPUS_URL": cloud.url, "OQTOPUS_API_TOKEN": cloud.token}
        out = tmp_path / "killed"
        kills = 0
        for cycle in range(14):
            if cycle % 4 == 3:  # the history moves on between runs: new jobs, pending jobs finish
                cloud.add_jobs(15)
                for job_id in cloud.history.job_ids():
                    if cloud.history.status(job_id) in ("submitted", "ready", "running") and rng.random() < 0.5:
                        cloud.finish(job_id)
            if cycle % 5 == 4 and (out / "_oqtopus").exists():
                args = command(out, "--compact")
            elif cycle % 3 == 2:
                args = command(out, "--full-refresh")  # a long run again, so the kill lands mid-write
            else:
                args = command(out)
            proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            time.sleep(rng.uniform(0.05, 1.8))
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                kills += 1
            proc.wait()
            if (out / "_oqtopus" / "manifests").exists() and any((out / "_oqtopus" / "manifests").iterdir()):
                # Whatever moment it died at, the committed dataset reads and holds no job twice.
                con = connect(out)
                assert con.execute("SELECT count(*) = count(DISTINCT job_id) FROM jobs").fetchone() == (True,)
        assert kills >= 6, "the kills should mostly land mid-run"

        final = subprocess.run(command(out), env=env, capture_output=True, timeout=300)
        assert final.returncode == 0, final.stderr.decode()
        clean = tmp_path / "clean"
        assert subprocess.run(command(clean), env=env, timeout=300).returncode == 0
        assert_matches_ground_truth(out, cloud)
        assert snapshot(out) == snapshot(clean)
        leftovers = [p for p in out.rglob("*.parquet")
                     if str(p.relative_to(out)) not in {e.path for es in _latest(out).files.values() for e in es}]
        assert len(leftovers) <= 200, "files of killed runs are cleaned up by later runs"


def _latest(out):
    from oqtopus_data.dataset.dataset import Dataset

    return Dataset(out).latest()
