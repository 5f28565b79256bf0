"""The commit a writer continues: read under the lock, its unfinished publish rolled forward, its files checked."""

from __future__ import annotations

from dataclasses import dataclass, field

from oqtopus_data.dataset.manifest import (
    REBUILD,
    REPAIR,
    FileEntry,
    Manifest,
    MissingFilesError,
    list_versions,
    locate,
    none_readable,
    present,
    read_newest,
)
from oqtopus_data.dataset.storage import Storage


@dataclass
class BaseCommit:
    """What a writer starts from: `manifest` (None: empty), `notes` (why newer manifests were skipped), `missing`
    (files of the base that are gone) and `versions` (every manifest number there is, readable or not)."""

    manifest: Manifest | None
    notes: list[str]
    versions: list[int]
    missing: list[FileEntry] = field(default_factory=list)

    @property
    def next_version(self) -> int:
        """Above every manifest there is, readable or not: a commit never reuses the number of a broken one."""
        return max([0, *self.versions]) + 1

    def kept(self) -> dict[str, list[FileEntry]]:
        """The final files of the base that are still there (table -> entries): what the next commit keeps."""
        gone = {e.path for e in self.missing}
        files = self.manifest.files if self.manifest is not None else {}
        kept = {table: [e for e in entries if e.final and e.path not in gone] for table, entries in files.items()}
        return {table: entries for table, entries in kept.items() if entries}


def open_base(storage: Storage, *, fresh: bool, repair: bool) -> BaseCommit:
    """Read the base commit under the lock, roll its publish forward and check that its files are all there.

    Missing final files are an error unless `repair` (or `fresh`). One listing of the table directories serves
    both checks.
    """
    versions = list_versions(storage)
    manifest, notes = read_newest(storage, versions)
    if manifest is None and notes:
        if not fresh:
            raise none_readable(storage, notes)
        notes.append("this fresh export starts from an empty dataset")
    base = BaseCommit(manifest, notes, versions)
    if manifest is None:
        return base
    found = present(storage)
    for final, staged in manifest.publish.items():  # roll forward a run killed between commit and publish
        if staged in found:
            storage.rename(staged, final)
            found.discard(staged)
            found.add(final)
    missing = locate(manifest, found)
    if missing and not fresh:
        final = [e for e in missing if e.final]
        if final and not repair:
            raise MissingFilesError(
                storage.uri(""), manifest.version, final,
                f"an export does not continue a dataset that lost files: restore them from where the dataset "
                f"came from, {REPAIR}, {REBUILD}")
        if len(final) < len(missing):
            # Volatile rows (jobs not yet terminal, current errors) are replaced by every commit and their jobs
            # are fetched again by id: losing their file loses nothing. Typical after falling back to an older
            # commit, whose volatile files the newer one had replaced.
            notes.append(f"{len(missing) - len(final)} file(s) of rows that may still change are gone "
                         f"from commit {manifest.version}; their jobs are fetched again")
        base.missing = missing
    return base
