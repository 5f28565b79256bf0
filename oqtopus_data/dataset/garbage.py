"""Garbage collection: which files a dataset may delete, and deleting them under the writer lock.

A dataset deletes only files it wrote: those its manifests named, or those one of its writers staged (a writer notes
its token in RUNS before it stages anything, and names every file it writes with it). A table directory may be a
symlink to a disk that holds other files, and a file this dataset never wrote is never its garbage.
"""

from __future__ import annotations

import json
import re
import uuid

from oqtopus_data.dataset.manifest import Manifest, list_versions, manifest_name, present
from oqtopus_data.dataset.storage import Storage, is_staged
from oqtopus_data.dataset.storage.common import META_DIR
from oqtopus_data.errors import StoreError

#: The tokens of writers that may have staged files no commit names yet (a writer notes its token before it stages
#: anything; garbage collection deletes their leftovers, then forgets them).
RUNS = f"{META_DIR}/runs"
_TOKEN = re.compile(r"[0-9a-f]{8}")
KEEP_MANIFESTS = 10  # older manifests are pruned; readers only ever need the newest readable one


def collect_garbage(storage: Storage, *, named: set[str] | None = None, running: str | None = None) -> int:
    """Delete the data files of this dataset that the newest manifest does not name (replaced, compacted, left by
    killed runs); returns how many.

    Only files a manifest of this dataset named (`named`, default: read from every manifest kept) or that one of
    its writers staged (their tokens are noted in RUNS before they stage anything) are ever deleted: a table
    directory may be a symlink to a disk that holds other files, and a file this dataset never wrote is never
    its garbage. `running` is the token of a writer that goes on (a checkpoint): it stays noted.
    Call it only under the writer lock. Readers of an older manifest may then miss a file: they re-open. Nothing is
    deleted unless the newest manifest reads and passes its checks: never on partial knowledge.
    """
    versions = list_versions(storage)
    if not versions:
        return 0
    name = manifest_name(versions[-1])
    try:
        manifest = Manifest.from_bytes(storage.read_bytes(name), name, version=versions[-1])
    except (OSError, StoreError):
        return 0
    live = names_of(manifest)
    if named is None:
        named = named_files(storage, versions)
    runs = _runs(storage)
    removed = 0
    for rel in sorted(present(storage)):
        if rel not in live and (rel in named or _run_of(rel, runs) is not None):
            storage.delete(rel)
            removed += 1
    for version in versions[:-KEEP_MANIFESTS]:
        storage.delete(manifest_name(version))
    still = {running} if running else set()
    if set(runs) != still:
        storage.write_bytes(RUNS, json.dumps(sorted(still)).encode())
    return removed


def named_files(storage: Storage, versions: list[int]) -> set[str]:
    """Every data file (final and staged name) that the readable manifests among `versions` name."""
    out: set[str] = set()
    for version in versions:
        name = manifest_name(version)
        try:
            out |= names_of(Manifest.from_bytes(storage.read_bytes(name), name, version=version))
        except (OSError, StoreError):  # pruned meanwhile, or unreadable: it names nothing we can trust
            continue
    return out


def names_of(manifest: Manifest) -> set[str]:
    """The data files `manifest` names, under their final and their staged names: this dataset's own."""
    return {e.path for e in manifest.all_entries()} | set(manifest.publish.values())


def new_run(storage: Storage) -> str:
    """A new writer's token, noted in RUNS before it stages anything: a kill leaves files the next collection
    knows for this dataset's own, whatever becomes of the run."""
    token = uuid.uuid4().hex[:8]
    storage.write_bytes(RUNS, json.dumps(sorted({*_runs(storage), token})).encode())
    return token


def part_name(version: int, token: str, seq: int) -> str:
    """The name of the `seq`-th data file a writer (`token`) writes towards `version`: the token in it is what
    makes a staged file of a killed run this dataset's garbage (`_run_of`)."""
    return f"part-{version:06d}-{token}-{seq:05d}.parquet"


def _runs(storage: Storage) -> list[str]:
    """The tokens of the writers that may have left staged files (RUNS; none when absent or unreadable)."""
    try:
        runs = json.loads(storage.read_bytes(RUNS))
    except (FileNotFoundError, ValueError):
        return []
    return [r for r in runs if isinstance(r, str) and _TOKEN.fullmatch(r)] if isinstance(runs, list) else []


def _run_of(rel: str, runs: list[str]) -> str | None:
    """The noted run whose staged file (or the temporary file of one) `rel` is, or None."""
    name = rel.rpartition("/")[2]
    if not is_staged(rel):
        return None
    return next((token for token in runs if f"-{token}-" in name), None)


def discard_new(storage: Storage) -> bool:
    """Remove a location that `Storage.create_root` made for a run that then committed nothing.

    Only under the writer lock and only while no manifest exists: the winner of a race for a new directory keeps
    everything, and a run that committed a checkpoint keeps it. Never raises (it runs while another error is
    reported); returns whether the location was removed.
    """
    try:
        with storage.lock():
            if list_versions(storage):
                return False
            storage.remove_root()
            return True
    except (StoreError, OSError):  # another writer holds the lock (LockError) or the store is unreachable
        return False
