"""The job table: the newest jobs of the selection as a plain HTML table (readable with scripts off) that the
page's script makes sortable and filterable; each row holds its job's counts, estimate or message in a
`<details>` element under the job's name, which a click on the row opens (or, without scripts, on its summary)."""

from __future__ import annotations

from typing import Any

from oqtopus_data.enums import TERMINAL
from oqtopus_data.report.context import Context, Section
from oqtopus_data.report.formats import bits_html, esc, format_duration, minute, number

TOP_OUTCOMES = 8  # outcomes shown when a job is opened
FILTERS = (("device", "device", 2), ("status", "status", 3), ("type", "job type", 4))  # (name, label, column)
COLUMNS = (("submitted (UTC)", "text"), ("name and result", "text"), ("device", "text"), ("status", "text"),
           ("type", "text"), ("shots", "num"), ("queue", "num"), ("run", "num"))


def job_table(r: Context) -> Section:
    section = Section("jobs", "Jobs")
    if not r.table_rows:
        return section.empty("Not asked for (table rows = 0).")
    jobs = r.rows(f"""
        SELECT job_id, name, device_id, status, job_type, shots, submitted_at,
               epoch(running_at) - epoch(submitted_at), epoch(ended_at) - epoch(running_at),
               total_count, n_outcomes, message, submitted_month
        FROM jobs WHERE {r.scope.where()}
        ORDER BY submitted_at DESC NULLS LAST, job_id LIMIT $n""", n=r.table_rows)
    if not jobs:
        return section.empty("No jobs in this selection.")
    months = sorted({j[12] for j in jobs if j[12] is not None})
    outcomes = _outcomes(r, [j[0] for j in jobs if j[9]], months)
    estimates = _estimates(r, [j[0] for j in jobs if j[4] == "estimation"], months)
    said = (f"The newest {len(jobs):,} of the selection's {r.jobs:,} jobs" if len(jobs) < r.jobs
            else f"All {len(jobs):,} jobs of the selection")
    section.text(f"<p>{said}, newest first (at most {r.table_rows:,}: the table is for finding a job, the "
                 "export holds them all). Click a column heading to sort, a row to open its job's counts, estimate "
                 "or message.</p>")
    section.text(_controls(jobs))
    head = "".join(f'<th data-sort="{kind}" aria-sort="none">{esc(label)}</th>' for label, kind in COLUMNS)
    body = "".join(_row(j, outcomes.get(j[0]), estimates.get(j[0])) for j in jobs)
    section.text(f'<div class="jobs-wrap"><table id="jobs-table" class="jobs"><thead><tr>{head}</tr></thead>'
                 f"<tbody>{body}</tbody></table></div>")
    return section


def _outcomes(r: Context, ids: list[str], months: list[str]) -> dict[str, list[tuple[str, int]]]:
    if not ids:
        return {}
    rows = r.con.execute("""
        SELECT job_id, bitstring, count FROM counts
        WHERE list_contains($ids, job_id) AND submitted_month BETWEEN $first AND $last
        QUALIFY row_number() OVER (PARTITION BY job_id ORDER BY count DESC, bitstring) <= $k
        ORDER BY job_id, count DESC, bitstring""",
                         {"ids": ids, "first": months[0] if months else "", "last": months[-1] if months else "~",
                          "k": TOP_OUTCOMES}).fetchall()
    out: dict[str, list[tuple[str, int]]] = {}
    for job_id, bits, count in rows:
        out.setdefault(job_id, []).append((bits, count))
    return out


def _estimates(r: Context, ids: list[str], months: list[str]) -> dict[str, list[tuple[Any, ...]]]:
    if not ids:
        return {}
    rows = r.con.execute("""
        SELECT job_id, exp_value, stds FROM estimations
        WHERE list_contains($ids, job_id) AND submitted_month BETWEEN $first AND $last ORDER BY ALL""",
                         {"ids": ids, "first": months[0] if months else "", "last": months[-1] if months else "~"}
                         ).fetchall()
    out: dict[str, list[tuple[Any, ...]]] = {}
    for job_id, value, stds in rows:
        out.setdefault(job_id, []).append((value, stds))
    return out


def _controls(jobs: list[tuple[Any, ...]]) -> str:
    """Filters, hidden until the script shows them (without scripts they could not work)."""
    selects = "".join(
        f'<label>{esc(label)} <select name="{key}" data-column="{column}"><option value="">all</option>'
        + "".join(f'<option value="{esc(v)}">{esc(v)}</option>' for v in sorted({j[column] or "" for j in jobs}))
        + "</select></label>" for key, label, column in FILTERS)
    return (f'<div id="jobs-controls" class="controls" hidden>{selects}<label>name or id '
            f'<input type="search" name="q" placeholder="part of a name or job id"></label>'
            f'<span id="jobs-count" class="note"></span></div>')


def _row(job: tuple[Any, ...], outcomes: list[tuple[str, int]] | None, estimates: list[tuple[Any, ...]] | None) -> str:
    """One row: the page's script sorts by `data-v` where a cell has one (exact numbers), else by its text."""
    job_id, name, device, status, kind, shots, submitted, queue, run, total, n_outcomes, message, _ = job
    cells = [
        _cell(minute(submitted)[:16]),
        f'<td data-v="{esc(name or "")}">{esc(name or "")}'  # the job's result opens under its name
        f"{_details(job_id, status, total, n_outcomes, message, outcomes, estimates)}</td>",
        _cell(device or ""), _cell(status or ""), _cell(kind or ""),
        _cell("-" if shots is None else f"{shots:,}", "" if shots is None else str(shots)),
        _cell(format_duration(queue), "" if queue is None else f"{queue:.3f}"),
        _cell(format_duration(run), "" if run is None else f"{run:.3f}"),
    ]
    return f"<tr>{''.join(cells)}</tr>"


def _cell(text: str, value: str | None = None) -> str:
    if value is None:
        return f"<td>{esc(text)}</td>"
    return f'<td class="num" data-v="{esc(value)}">{esc(text)}</td>'


def _details(job_id: str, status: str, total: int | None, n_outcomes: int | None, message: str | None,
             outcomes: list[tuple[str, int]] | None, estimates: list[tuple[Any, ...]] | None) -> str:
    parts = [f"<p>job <code>{esc(job_id)}</code></p>"]
    if outcomes and total:
        summary = "counts"
        many = (n_outcomes or 0) > len(outcomes)
        parts.append(f"<p>{total:,} shots counted, {n_outcomes or len(outcomes):,} outcomes"
                     + (f"; the {len(outcomes)} most frequent:" if many else ":") + '</p><table class="bits">'
                     + "".join(f"<tr><td>{_bits(bits)}</td><td>{count:,}</td><td>{100 * count / total:.1f}%</td></tr>"
                               for bits, count in outcomes) + "</table>")
    elif estimates:
        summary = "estimate"
        parts += [f"<p>exp_value = {esc(number(value, 6))} ± {esc(number(stds, 3))}</p>" for value, stds in estimates]
    elif message:
        summary = "message"
    else:
        summary = "no result" if status in TERMINAL else "not finished"
    if message:
        parts.append(f'<p class="message">{esc(message)}</p>')
    return f"<details><summary>{summary}</summary>{''.join(parts)}</details>"


def _bits(bits: str) -> str:
    """A bitstring; a long one cut in the middle, whole in its tooltip."""
    return bits_html(bits, 40)
