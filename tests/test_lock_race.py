"""Two exports racing on a new directory: the loser stops with a lock error and removes nothing of the winner's."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time

import pytest
from cli_support import EXPORT_COMMAND
from groundtruth import assert_matches_ground_truth

from oqtopus_data.dataset.dataset import Dataset
from oqtopus_data.dataset.storage.local import LocalStorage
from oqtopus_data.dataset.writer import discard_new
from oqtopus_data.errors import LockError
from oqtopus_data.testing import FakeCloud, Faults

# The loser: an export that stops right before taking the lock until the test says go, so that the other run
# creates the directory, takes the lock and commits in between (the race, made certain).
LOSER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from oqtopus_data.client.api import ApiClient
    from oqtopus_data.client.config import Credentials
    from oqtopus_data.errors import LockError
    from oqtopus_data.run.export import export
    from oqtopus_data.dataset.storage.local import LocalStorage

    url, token, out, go = sys.argv[1:]
    take_lock, held_back = LocalStorage.lock, []

    def late_lock(self):
        if not held_back:
            held_back.append(True)
            print("at the lock", flush=True)
            while not Path(go).exists():
                time.sleep(0.01)
        return take_lock(self)

    LocalStorage.lock = late_lock
    with ApiClient(Credentials(url=url, token=token)) as api:
        try:
            export(api, out)
        except LockError as exc:
            print(f"LockError: {exc}", flush=True)
            sys.exit(3)
""")


def winner_command(out) -> list[str]:
    return [*EXPORT_COMMAND, "-q", "--checkpoint-every", "10", "--workers", "2",
            "--page-size", "20", str(out)]


def test_the_loser_of_a_race_for_a_new_directory_leaves_the_winners_commits(tmp_path):
    out, go = tmp_path / "new" / "out", tmp_path / "go"
    with FakeCloud(n_jobs=80, seed=11, faults=Faults(latency=0.02)) as cloud:
        env = {**os.environ, "OQTOPUS_URL": cloud.url, "OQTOPUS_API_TOKEN": cloud.token}
        loser = subprocess.Popen([sys.executable, "-c", LOSER, cloud.url, cloud.token, str(out), str(go)],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        winner = None
        try:
            assert loser.stdout.readline().strip() == "at the lock"  # it has looked at the directory already
            winner = subprocess.Popen(winner_command(out), env=env, stderr=subprocess.PIPE, text=True)
            manifests = out / "_oqtopus" / "manifests"
            deadline = time.monotonic() + 60
            while not (manifests.is_dir() and any(manifests.iterdir())):  # the winner's first checkpoint
                assert winner.poll() is None, winner.stderr.read()
                assert time.monotonic() < deadline, "the winner never committed"
                time.sleep(0.01)
            go.touch()
            stdout, stderr = loser.communicate(timeout=60)
            assert loser.returncode == 3, stderr
            assert stdout.startswith(f"LockError: another oqtopus-data export is writing to {out} (pid {winner.pid}")
            assert winner.wait(timeout=120) == 0, winner.stderr.read()
        finally:
            for proc in (loser, winner):
                if proc is not None and proc.poll() is None:
                    proc.kill()
                    proc.wait()
        assert_matches_ground_truth(out, cloud)
        Dataset(out).verified()  # every file of the winner's last commit is there


def test_a_run_that_created_the_directory_and_committed_nothing_removes_it(tmp_path):
    out = tmp_path / "out"
    storage = LocalStorage(out)
    assert storage.create_root() is True
    assert storage.create_root() is False  # exactly one caller is told it made the directory
    with Dataset(storage).writer():  # a run that stages a file, then fails before its commit
        (out / "jobs").mkdir()
        (out / "jobs" / ".part-1.parquet.staged").write_bytes(b"staged")
    assert discard_new(LocalStorage(out)) is True
    assert not out.exists()
    assert tmp_path.is_dir()


def test_a_directory_is_not_removed_while_another_run_holds_its_lock_or_once_it_holds_a_commit(tmp_path):
    from oqtopus_data import write_dataset

    out = tmp_path / "out"
    LocalStorage(out).create_root()
    with Dataset(out).writer():
        assert discard_new(LocalStorage(out)) is False  # the lock is another run's: it may be about to commit
    assert out.is_dir()
    write_dataset({}, out)
    assert discard_new(LocalStorage(out)) is False
    assert Dataset(out).latest().version == 1


def test_the_lock_of_a_removed_directory_is_not_taken(tmp_path):
    """A run that opened the lock file of a directory that was then removed must not believe it holds a lock."""
    out = tmp_path / "out"
    storage = LocalStorage(out)
    storage.create_root()
    real_open = LocalStorage._open_lock

    def open_then_removed(self):
        fd = real_open(self)
        (out / "_oqtopus" / "lock").unlink()  # a failing first run's remove_root, between our open and flock
        return fd

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(LocalStorage, "_open_lock", open_then_removed)
        with pytest.raises(LockError, match="was being removed"), storage.lock():
            pass
