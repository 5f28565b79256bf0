"""The safety net of an export: list the whole selection's ids and statuses, and compare them with the dataset.

An export trusts each answer only as far as the checks it knows. A reconcile (`oqtopus-export --verify`) trusts
nothing the runs did: it walks the whole selection with the lightest listing the server allows (`fields` with the
few properties the selection and the walk need, where the server takes `fields`; full pages where it does not), at
the largest page size the server accepts, and tells the export run what differs: jobs the dataset misses, jobs whose
status differs, and jobs the dataset holds that the listing no longer shows. The run then fetches the first two
again and confirms the third by id (a job absent from a fresh, complete listing that answers 404 is gone).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import pyarrow.parquet as pq

from oqtopus_data.dataset.manifest import FileEntry
from oqtopus_data.errors import ApiError, StoreError
from oqtopus_data.fetch.listing import Limits, Lister
from oqtopus_data.fetch.windows import Window
from oqtopus_data.run.bounds import CLOCK_TOLERANCE
from oqtopus_data.selection import Filters, select
from oqtopus_data.tables.storable import escaped
from oqtopus_data.times import duration_text

if TYPE_CHECKING:
    from oqtopus_data.client.api import ApiClient
    from oqtopus_data.dataset.storage import Storage
    from oqtopus_data.dataset.writer import Writer
    from oqtopus_data.run.info import ExportOptions
    from oqtopus_data.run.ledger import Ledger

#: What a reconcile asks of each listed job: its id and status, and what the selection and the walk need
#: (submitted_at: the time filter, and the walk's sizing of windows; job_type and device_id: the filters).
LIGHT_FIELDS = "job_id,status,submitted_at,job_type,device_id"
#: The page size a reconcile asks for first; a server refusing it steps down (`pages.PageSize`) to what it takes.
LARGEST_PAGE = 10_000


@dataclass
class Inventory:
    """The server's side: each selected job's status, and whether the listing was shown complete."""

    statuses: dict[str, str] = field(default_factory=dict)
    listed: set[str] = field(default_factory=set)  # every id listed, selected or not (registered jobs too)
    complete: bool = True
    failures: list[str] = field(default_factory=list)
    light: bool = True  # False: the server refused `fields`, whole pages were listed
    requests: int = 0


@dataclass
class Differences:
    """What the dataset and the server disagree on, by job id (sorted)."""

    missing: list[str] = field(default_factory=list)  # the server lists them, the dataset holds no row
    changed: list[str] = field(default_factory=list)  # held with another status than the server's
    absent: list[str] = field(default_factory=list)  # held, but the complete listing does not show them

    def __bool__(self) -> bool:
        return bool(self.missing or self.changed or self.absent)

    def describe(self, limit: int = 5) -> list[str]:
        """One line per kind of difference, naming up to `limit` jobs."""
        lines = []
        for what, ids in (("missing from the dataset", self.missing), ("with another status on the server",
                                                                       self.changed),
                          ("no longer listed by the server", self.absent)):
            if ids:
                more = f" and {len(ids) - limit} more" if len(ids) > limit else ""
                lines.append(f"verify: {len(ids)} job(s) {what}: {', '.join(ids[:limit])}{more}")
        return lines


@dataclass
class Comparison:
    """A reconcile's findings: the server's side, the dataset's, and what differs."""

    inventory: Inventory
    held: dict[str, tuple[str | None, bool]]
    differences: Differences

    def final_changed(self) -> list[str]:
        """Jobs held with another status whose row is final: their final files are rewritten without them."""
        return [j for j in self.differences.changed if self.held[escaped(j)[0]][1]]

    def to_fetch(self) -> list[str]:
        """Jobs to fetch again: missing from the dataset, or held with another status."""
        return self.differences.missing + self.differences.changed

    def unlisted(self, suspects: Iterable[str]) -> list[str]:
        """Jobs to confirm gone by id: held but not listed, and the suspects (404 once) a complete listing misses."""
        inventory = self.inventory
        missed = {j for j in suspects if j not in inventory.listed} if inventory.complete else set()
        return sorted(set(self.differences.absent) | missed)

    def matches(self) -> str:
        """The line saying that nothing differs."""
        inventory = self.inventory
        return (f"verify: the dataset matches the server's {len(inventory.statuses):,} selected job(s) "
                f"({inventory.requests:,} listing requests{'' if inventory.light else ', whole pages'})")


class _Light:
    """The client as the lister sees it, every page asked with `fields` (when the server takes them)."""

    def __init__(self, api: ApiClient, fields: str | None) -> None:
        self.api, self.fields = api, fields

    def list_page(self, params: dict[str, Any], *, tries: int | None = None) -> list[Any]:
        return self.api.list_page({**params, "fields": self.fields} if self.fields else params, tries=tries)


def light_fields(api: ApiClient, notice: Callable[[str], None]) -> str | None:
    """LIGHT_FIELDS when the server answers a listing with them, else None (whole pages), said in a notice."""
    try:
        api.list_page({"size": 1, "fields": LIGHT_FIELDS}, tries=1)
    except ApiError as exc:
        notice(f"verify: GET /jobs refused fields={LIGHT_FIELDS} ({exc}); listing whole pages")
        return None
    return LIGHT_FIELDS


def server_inventory(api: ApiClient, root: Window, filters: Filters, *, now: datetime, workers: int = 4,
                     limits: Limits | None = None, notice: Callable[[str], None] | None = None) -> Inventory:
    """List every job created in `root` (lightly) and keep the status of those `filters` select."""
    notice = notice or (lambda _message: None)
    fields = light_fields(api, notice)
    lister = Lister(_Light(api, fields), root, now=now, page_size=LARGEST_PAGE,  # type: ignore[arg-type]
                    workers=workers, limits=limits, notice=notice)
    inventory = Inventory(light=fields is not None)
    for item in lister:
        job = item.job
        if not isinstance(job, dict) or not isinstance(job.get("job_id"), str):
            continue
        inventory.listed.add(job["job_id"])
        if select(job, filters).export:
            inventory.statuses[job["job_id"]] = str(job.get("status"))
    inventory.failures = [str(f) for f in lister.failures]
    inventory.complete = not inventory.failures
    inventory.requests = lister.requests + 1
    return inventory


def held_statuses(storage: Storage, entries: Iterable[FileEntry]) -> dict[str, tuple[str | None, bool]]:
    """The dataset's side: each job id of these `jobs` files, its status, and whether its row is final."""
    out: dict[str, tuple[str | None, bool]] = {}
    for entry in entries:
        try:
            data = pq.read_table(storage.arrow_path(entry.path), filesystem=storage.arrow_filesystem(),
                                 columns=["job_id", "status"])
        except (OSError, ValueError) as exc:
            raise StoreError(f"{storage.uri(entry.path)} is not a readable jobs file ({exc})") from None
        for job_id, status in zip(data["job_id"].to_pylist(), data["status"].to_pylist(), strict=True):
            out[job_id] = (status, entry.final)
    return out


def compare(server: dict[str, str], held: dict[str, tuple[str | None, bool]], *, complete: bool,
            failing: Iterable[str] = ()) -> Differences:
    """What differs between the server's statuses and the dataset's rows. Jobs with a current error
    (`failing`, retried by every run anyway) are not differences; nothing is absent from an incomplete listing."""
    skip = {escaped(j)[0] for j in failing}
    stored = {escaped(j)[0]: j for j in server}
    missing = sorted(raw for key, raw in stored.items() if key not in held and key not in skip)
    changed = sorted(raw for key, raw in stored.items() if key in held and held[key][0] != server[raw])
    absent = sorted(key for key in held if key not in stored) if complete else []
    return Differences(missing, changed, absent)


def verify_reason(options: ExportOptions, ledger: Ledger, *, continued: bool) -> str | None:
    """Why this run reconciles (asked, after anomalies, or on schedule), or None."""
    if options.verify:
        return "asked for"
    anomalies = ledger.anomalies
    if anomalies:
        return "after " + "; ".join(anomalies[:3]) + (" ..." if len(anomalies) > 3 else "")
    every, last, now = options.verify_every, ledger.state.verified_at, ledger.now
    if not continued or not every:
        return None
    if last is None or now - last >= every or last - now > CLOCK_TOLERANCE:
        return f"none in the last {duration_text(every)}"
    return None


def reconcile(api: ApiClient, writer: Writer, root: Window, filters: Filters, *, failing: Iterable[str],
              now: datetime, workers: int, limits: Limits | None, notice: Callable[[str], None]) -> Comparison:
    """List the whole selection in `root` lightly and compare it with the `jobs` files of the writer's commit."""
    inventory = server_inventory(api, root, filters, now=now, workers=workers, limits=limits, notice=notice)
    held = held_statuses(writer.storage, writer.files.get("jobs", []))
    return Comparison(inventory, held, compare(inventory.statuses, held, complete=inventory.complete,
                                               failing=failing))
