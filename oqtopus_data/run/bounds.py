"""The span of creation time an export run lists, on the server's clock: where it starts, where the next run resumes.

A run lists from where the last one stopped (`listed_until`) minus a lookback (the longest gap between a job's
creation and its submission, and a server comparing bounds in another time zone). Two things move the start back:
time running backwards (a stored bound later than the server's now lists again from the start of the newest month
the dataset holds jobs of) and lost data files (`--repair` lists their months again). Each commit stores the bound
the next run resumes from: the listing's resume point before the first window with a listed job not processed yet,
never behind what the previous run established.
"""

from __future__ import annotations

from collections import Counter, deque
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from oqtopus_data.fetch.listing import Lister
from oqtopus_data.fetch.windows import SHIFT_SLACK, Window, root_window
from oqtopus_data.tables import schema as S
from oqtopus_data.times import format_time

if TYPE_CHECKING:
    from oqtopus_data.client.api import ApiClient
    from oqtopus_data.dataset.writer import Writer
    from oqtopus_data.run.info import ExportOptions
    from oqtopus_data.run.ledger import Ledger

#: How far a stored listing bound may lie past the server's clock before time counts as having run backwards.
CLOCK_TOLERANCE = timedelta(minutes=5)


def _local_now() -> datetime:
    """This machine's clock: the run's time only when the server sends no Date header (tests move it)."""
    return datetime.now(UTC)


def run_clock(api: ApiClient) -> datetime:
    """The run's time: the server's clock (its latest Date header), else this machine's."""
    server_now = getattr(api, "server_now", None)
    server = server_now() if callable(server_now) else None
    return server if server is not None else _local_now()


class Span:
    """One run's listing span: its start, moved back when the clock stepped back or files were lost, and the bound
    each commit stores (`listed_until`). Reads and moves the ledger's state, which a continued run replaces."""

    def __init__(self, ledger: Ledger, options: ExportOptions, writer: Writer, *, continued: bool) -> None:
        self.ledger, self.options, self.writer, self.continued = ledger, options, writer, continued
        self.lister: Lister | None = None
        self._outstanding: Counter[int] = Counter()  # listed jobs of each window not processed yet
        self._order: deque[int] = deque()  # the window of each listed job not processed yet, in listing order

    def check_clock(self) -> None:
        """Time ran backwards (the stored listing bound is later than the server's now): list again from the start
        of the newest month the dataset holds jobs of, which no job created since the bound was stored precedes."""
        state, now = self.ledger.state, self.ledger.now
        stored = state.listed_until if self.continued else None
        if stored is None or stored - now <= CLOCK_TOLERANCE:
            return
        months = sorted(e.partition for e in self.writer.files.get("jobs", [])
                        if e.partition and e.partition != S.UNKNOWN_MONTH)
        earlier = datetime.strptime(months[-1], "%Y-%m").replace(tzinfo=UTC) if months else None
        if earlier is not None:
            earlier = min(earlier, now)
        state.listed_until = earlier
        self.ledger.anomalies.append("the clock stepped back")
        self.ledger.notice(f"time ran backwards: the last run listed jobs up to {format_time(stored)}, but the "
                           f"server's clock says {format_time(now)}; listing again from "
                           f"{format_time(earlier) if earlier else 'the start of the selection'}")

    def repair(self) -> None:
        """Take out every file of the months that lost one, and list from the first of them again."""
        writer, state = self.writer, self.ledger.state
        months = writer.missing_months if writer.missing else []
        if not months:
            return
        writer.drop_partitions(months)
        self.ledger.notice(f"repairing: {len(writer.missing)} lost data file(s); fetching the jobs of "
                           f"{', '.join(months)} again")
        dated = sorted(m for m in months if m != S.UNKNOWN_MONTH)
        if S.UNKNOWN_MONTH in months or not dated:
            state.listed_until = None  # jobs without a month: list from the start of the selection
        else:
            first = datetime.strptime(dated[0], "%Y-%m").replace(tzinfo=UTC)
            if state.listed_until is not None:
                state.listed_until = min(state.listed_until, first)

    def root(self, since: datetime | None, *, resume: bool = True) -> Window:
        """The window of creation time to list (in GET /jobs' terms): from `since`, or (`resume`) from where the
        last listing ended when that is later, minus the lookback; up to the options' `until`."""
        lookback = self.options.max_submit_delay + SHIFT_SLACK
        bounds = (self.ledger.state.listed_until, since) if resume else (since,)
        starts = [t - lookback for t in bounds if t is not None]
        end = self.options.until + SHIFT_SLACK if self.options.until is not None else None
        return root_window(max(starts) if starts else None, end)

    def walk(self, api: ApiClient, root: Window) -> Lister:
        """The lister of this run's listing (`listed_until` reads how far it got)."""
        self.lister = Lister(api, root, now=self.ledger.now, page_size=self.options.page_size,
                             workers=self.options.listing_workers, limits=self.options.listing_limits,
                             notice=self.ledger.notice)
        return self.lister

    def listed(self, window: int) -> None:
        """A job of `window` goes on to be processed."""
        self._outstanding[window] += 1
        self._order.append(window)

    def processed(self) -> None:
        """The oldest job listed and not processed yet is done (jobs are processed in listing order)."""
        self._outstanding[self._order.popleft()] -= 1

    def listed_until(self) -> datetime | None:
        """How far the listing got, as the next run needs it (never behind what the previous run established)."""
        previous = self.ledger.state.listed_until if self.continued else None
        if self.lister is None:
            return previous
        resume = self.lister.resume_point(w for w, n in self._outstanding.items() if n > 0)
        if resume is None or (previous is not None and resume < previous):
            return previous
        return resume
