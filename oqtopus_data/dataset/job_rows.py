"""One row per job: which jobs each data file of a commit holds rows of, and the guard built on that knowledge."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Container

import pyarrow as pa

from oqtopus_data.dataset.manifest import FileEntry
from oqtopus_data.errors import StoreError


class JobRows:
    """The job ids of every file of one commit in the making: the one place that knows which jobs are written.

    It shares the writer's `files` (table -> entries of the commit) and `staged` (the files written since the last
    commit) and reads a committed file's ids with `read_ids`, once per file.
    """

    def __init__(self, files: dict[str, list[FileEntry]], staged: Container[str],
                 read_ids: Callable[[FileEntry], set[str]], where: str) -> None:
        self.files = files
        self.staged = staged
        self.read_ids = read_ids
        self.where = where  # the dataset's location, for the errors
        self._ids: dict[str, dict[str, set[str]]] = {}  # table -> file -> its job ids (see `ids`)
        self._held: set[str] | None = None  # see `_held_jobs`; None: to be worked out again

    def ids(self, table: str = "jobs", *, final: bool | None = True) -> set[str]:
        """The job ids with rows in this commit's files of `table` so far: final files (default), volatile ones
        (`final=False`) or all (None). Each committed file's ids are read once per writer (one column), those of
        files written here are taken as they are written: the one place that knows which jobs are written."""
        index = self._ids.setdefault(table, {})
        entries = self.files.get(table, [])
        for entry in entries:
            if entry.path not in index:
                index[entry.path] = self.read_ids(entry)
        out: set[str] = set()
        for entry in entries:
            if final is None or entry.final == final:
                out |= index[entry.path]
        return out

    def duplicates(self, jobs: pa.Table, buffered: set[str] | None = None) -> dict[str, str]:
        """The jobs among the `jobs` rows that this commit must refuse (job_id -> why): a job whose row it holds
        already (committed as final, or written by this run, or among the caller's `buffered` rows on their way),
        or one `jobs` holds twice. A commit never holds two rows of one job; the caller refuses every new row of
        these jobs, and the stored rows stay."""
        new = Counter(jobs["job_id"].to_pylist())
        held_now, buffered = (self._held_jobs() if new else set()), buffered or set()
        held = {job_id for job_id in new if job_id in held_now or job_id in buffered}
        out = {job_id: "the dataset holds this job's row already, so the second one the server's answers "
                       "brought in this run was refused (the stored row is kept)" for job_id in sorted(held)}
        for job_id, n in sorted(new.items()):
            if n > 1 and job_id not in out:
                out[job_id] = (f"the server's answers brought {n} rows of this job in one batch, so none was "
                               "written; it is fetched again next run")
        return out

    def refuse_duplicates(self, jobs: pa.Table) -> None:
        """Refuse (StoreError) `jobs` rows of which `duplicates` finds any: the last guard, for callers that did
        not take them out first."""
        twice = self.duplicates(jobs)
        if twice:
            job_id, why = next(iter(twice.items()))
            raise StoreError(f"job {job_id}: {why}; {len(twice)} job(s) would have two rows in "
                             f"{self.where}: nothing of this write was committed")

    def _held_jobs(self) -> set[str]:
        """Jobs the next commit holds rows of so far: in final files, and in volatile files written since the last
        commit (those of an earlier checkpoint are replaced by the next commit's volatile set). Kept between
        calls: a batch's check costs its own size, not the dataset's."""
        if self._held is None:
            held = self.ids("jobs", final=True)
            index = self._ids["jobs"]
            for entry in self.files.get("jobs", []):
                if not entry.final and entry.path in self.staged:
                    held |= index[entry.path]
            self._held = held
        return self._held

    def check_unique(self) -> None:
        """At commit: every jobs file written since the last commit holds each of its jobs once, and no job another
        file of the commit holds (the guard behind `duplicates`, whatever wrote the files)."""
        entries = self.files.get("jobs", [])
        new = [e for e in entries if e.path in self.staged]
        if not new:
            return
        self.ids("jobs", final=None)
        index = self._ids["jobs"]
        others: Counter[str] = Counter()
        for entry in entries:
            others.update(index[entry.path])
        for entry in new:
            twice = sorted(j for j in index[entry.path] if others[j] > 1)
            if twice or entry.rows > len(index[entry.path]):
                shown = f"job {twice[0]}" if twice else f"a job of {entry.path}"
                raise StoreError(f"{shown} would have two rows in the jobs table of {self.where}: "
                                 "nothing of this run was committed")

    def written(self, table: str, path: str, ids: set[str]) -> None:
        """Note the job ids of a file just written (`path` of `table`)."""
        self._ids.setdefault(table, {})[path] = ids
        if table == "jobs" and self._held is not None:
            self._held |= ids

    def dropped(self, paths: set[str]) -> None:
        """Forget files taken out of the commit."""
        for index in self._ids.values():
            for path in paths:
                index.pop(path, None)
        self._held = None

    def reset(self) -> None:
        """Work the held jobs out again at the next check (after a commit, the volatile files written so far belong
        to an earlier commit)."""
        self._held = None
