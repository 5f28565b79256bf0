"""Sections on what the jobs measured: top outcomes of recent sampling jobs, drift of repeated circuits (see
drift.py for its definition) and estimation series."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from oqtopus_data.enums import JobType
from oqtopus_data.report import charts
from oqtopus_data.report.charts import Mark, Point, Series
from oqtopus_data.report.context import Context, Section
from oqtopus_data.report.drift import MIN_RUNS, MIN_SHOTS, Circuit, CircuitDrift, Run, calibration_times
from oqtopus_data.report.formats import BIT_ORDER, bits_html, esc, format_count, legend, minute, number
from oqtopus_data.report.stats import weighted_mean
from oqtopus_data.report.svg import epoch

TOP_BITSTRINGS = 8  # outcomes listed per recent sampling job
CARD_BITS = 16  # bits a card shows of a wider bitstring (8 at each end): one line in the narrowest card
DRIFT_CIRCUITS = 6  # circuits drawn
DRIFT_DEVICES = 6  # panels per circuit (its busiest devices)
DRIFT_NEWEST = 200  # runs drawn as points per circuit and device (the newest); trends use every run
OTHER_NAMES = 3  # a circuit's other names written in its heading; the rest are counted
TRACE_SERIES = 6  # estimation series drawn
TRACE_RUNS = 4  # optimisation runs drawn per stepped series (the newest)
TRACE_POINTS = 200  # points drawn per time series (the newest)


def top_bitstrings(r: Context) -> Section:
    section = Section("top-bitstrings", "Top outcomes of recent sampling jobs")
    if not r.top_jobs:
        return section.empty("Not asked for (top jobs = 0).")
    rows = r.rows(f"""
        WITH recent AS (
            SELECT job_id, name, device_id, submitted_at, shots, total_count, n_outcomes, submitted_month
            FROM jobs WHERE {r.scope.where()} AND job_type IN ('{JobType.SAMPLING}', '{JobType.MULTI_MANUAL}')
                AND total_count > 0
            ORDER BY submitted_at DESC, job_id LIMIT $top),
        ranked AS (
            SELECT c.job_id, c.bitstring, c.count,
                   row_number() OVER (PARTITION BY c.job_id ORDER BY c.count DESC, c.bitstring) AS rank
            FROM counts AS c SEMI JOIN recent AS r ON c.job_id = r.job_id AND c.submitted_month = r.submitted_month)
        SELECT r.job_id, r.name, r.device_id, r.submitted_at, r.shots, r.n_outcomes, k.bitstring,
               k.count / r.total_count
        FROM recent AS r JOIN ranked AS k USING (job_id) WHERE k.rank <= $k
        ORDER BY r.submitted_at DESC, r.job_id, k.rank""", top=r.top_jobs, k=TOP_BITSTRINGS)
    if not rows:
        return section.empty("No sampling job with counts in this selection.")
    section.text(f"<p>The {TOP_BITSTRINGS} most frequent outcomes of the {r.top_jobs} most recent sampling and "
                 f"multi_manual jobs (newest first); the bar is the share of all counted shots. {BIT_ORDER}</p>")
    cards: dict[str, list[tuple[Any, ...]]] = {}
    for row in rows:
        cards.setdefault(row[0], []).append(row)
    out = ['<div class="cards">']
    for job_id, outcomes in cards.items():
        _, name, device, submitted, shots, n_outcomes = outcomes[0][:6]
        out.append(f'<div class="card"><h3>{esc(name)}</h3><p class="meta">{esc(device)} · '
                   f'{esc(minute(submitted))} · {shots:,} shots · {n_outcomes:,} outcomes<br>'
                   f'<code>{esc(job_id)}</code></p><table class="bits">')
        for *_, bits, p in outcomes:
            out.append(f'<tr><td class="bitstring">{bits_html(bits, CARD_BITS)}</td><td class="barcell">'
                       f'<span class="bar" style="width:{100 * p:.1f}%"></span></td><td class="num">{100 * p:.1f}%'
                       "</td></tr>")
        out.append("</table></div>")
    section.text("".join(out) + "</div>")
    return section


def drift(r: Context) -> Section:
    section = Section("drift", "Drift of repeated circuits")
    with CircuitDrift(r.con, r.scope.where(), r.scope.params) as found:
        circuits = found.circuits(limit=DRIFT_CIRCUITS)
        runs = found.runs(circuits)
    if not circuits:
        return section.empty(f"No circuit (the same OpenQASM program) ran at least {MIN_RUNS} times with counts "
                             "in this selection.")
    section.text(
        "<p>A circuit is the job's OpenQASM program(s), compared after removing comments and normalising "
        "whitespace, whatever the job's name. Each point is one run's Hellinger fidelity F = (Σ √(p·q))² between "
        "its outcome distribution p and the circuit's reference q: its simulator runs pooled when it has any, "
        f"else its runs on every device pooled. Whiskers are ±1 shot-noise standard error; runs of fewer than "
        f"{MIN_SHOTS} shots are hollow and faint and left out of the black trend line (a shot-weighted mean per "
        "period). Brown ticks on the time axis mark the device's recalibrations (hover one for its time), "
        "and each panel's title counts them.</p>")
    calibrations = calibration_times(r.con)
    for circuit in circuits:
        mine = [run for run in runs if run.circuit == circuit.key]
        section.text(_circuit_heading(circuit))
        devices = sorted({run.device_id for run in mine}, key=lambda d: (-sum(x.device_id == d for x in mine), d))
        drawn = {id(x) for d in devices for x in [y for y in mine if y.device_id == d][-DRIFT_NEWEST:]}
        solid = [x for x in mine if id(x) in drawn and not x.low_shots] or mine
        low = max(0.0, min(run.fidelity - run.stderr for run in solid))
        y_range = (max(0.0, low - 0.02 * (1 - low)), 1.0)
        x_range = (min(epoch(x.submitted_at) for x in mine), max(epoch(x.submitted_at) for x in mine))
        panels = [_drift_panel(device, [x for x in mine if x.device_id == device], calibrations.get(device, []),
                               r.colors.get(device, charts.PALETTE[-1]), y_range, x_range)
                  for device in devices[:DRIFT_DEVICES]]
        hidden = len(devices) - DRIFT_DEVICES
        section.panels(panels, f"{circuit.name}: one panel per device; points for its {DRIFT_NEWEST} newest runs "
                               "at most, the trend over all of them"
                               + (f"; {hidden} more device(s) not drawn" if hidden > 0 else "") + ". "
                               "Hover a point for its job.")
    return section


def _circuit_heading(c: Circuit) -> str:
    shown = ", ".join(c.other_names[:OTHER_NAMES])
    more = f" and {len(c.other_names) - OTHER_NAMES:,} more" if len(c.other_names) > OTHER_NAMES else ""
    names = f" (also named {shown}{more})" if c.other_names else ""
    pooled = "simulator runs" if c.reference == "simulator" else "runs on all devices (no simulator runs)"
    reference = f"reference: {c.reference_runs:,} {pooled}, {format_count(c.reference_shots)} shots"
    return (f'<h3 class="circuit">{esc(c.name)}{esc(names)}</h3><p class="meta">circuit <code>{esc(c.key[:12])}'
            f"</code> · {c.runs:,} runs on {c.devices} device(s) · {esc(reference)}</p>")


def _drift_panel(device: str, runs: Sequence[Run], calibrations: Sequence[datetime], color: str,
                 y_range: tuple[float, float], x_range: tuple[float, float]) -> str:
    points = [Point(epoch(x.submitted_at), x.fidelity, x.stderr,
                    f"{x.name} · {x.job_id}\n{minute(x.submitted_at)} · {x.shots:,} shots"
                    f"{' (low-shot: not in the trend)' if x.low_shots else ''}\n"
                    f"F = {x.fidelity:.4f} ± {x.stderr:.4f}", x.low_shots) for x in runs[-DRIFT_NEWEST:]]
    t0, t1 = x_range
    span = (t1 - t0) / 86400
    period = 86400 if span <= 60 else 7 * 86400 if span <= 730 else 30 * 86400
    buckets: dict[int, list[tuple[float, float]]] = {}
    for x in runs:
        if not x.low_shots:
            buckets.setdefault(int(epoch(x.submitted_at) // period), []).append((x.fidelity, x.shots))
    trend = [((k + 0.5) * period, weighted_mean(v) or 0.0) for k, v in sorted(buckets.items())]
    inside = [t for t in calibrations if t0 <= epoch(t) <= t1]
    marks = [Mark(epoch(t), f"{device} recalibrated {minute(t)}") for t in inside]
    note = f"{len(runs):,} runs" + (f", {len(points)} newest drawn" if len(points) < len(runs) else "")
    title = f"{device} · {len(inside):,} recalibration{'' if len(inside) == 1 else 's'}" if calibrations else device
    return charts.series_panel(title, [Series(device, color, points, trend=trend if len(trend) > 1 else [])],
                               note=note, y_range=y_range, y_format=lambda v: f"{v:.3g}", y_name="fidelity",
                               marks=marks, x_range=x_range)


def estimation(r: Context) -> Section:
    section = Section("estimation", "Estimation series")
    rows = r.rows(f"""
        WITH base AS (
            SELECT j.name, j.device_id, j.submitted_at, e.exp_value, e.stds,
                   regexp_extract(j.name, '^(.*?)[0-9]+$', 1) AS prefix,
                   TRY_CAST(regexp_extract(j.name, '([0-9]+)$', 1) AS BIGINT) AS step
            FROM estimations AS e JOIN jobs AS j USING (job_id)
            WHERE {r.scope.where("j.")} AND e.exp_value IS NOT NULL AND j.submitted_at IS NOT NULL),
        keyed AS (SELECT *, CASE WHEN prefix = '' THEN name ELSE prefix END AS series FROM base),
        top AS (
            SELECT series, count(*) AS n, count(DISTINCT step) >= 3 AS stepped, min(name) AS first_name,
                   count(DISTINCT name) AS names
            FROM keyed GROUP BY series HAVING count(*) >= 2 ORDER BY n DESC, series LIMIT $series),
        ordered AS (
            SELECT k.*, t.n, t.stepped, t.first_name, t.names,
                   lag(k.step) OVER (PARTITION BY k.series ORDER BY k.submitted_at, k.name) AS prev_step,
                   row_number() OVER (PARTITION BY k.series ORDER BY k.submitted_at DESC, k.name DESC) AS newest
            FROM keyed AS k JOIN top AS t USING (series)),
        runs AS (  -- a stepped series starts a new optimisation run whenever its step goes back
            SELECT *, sum(CASE WHEN step <= prev_step THEN 1 ELSE 0 END) OVER (
                       PARTITION BY series ORDER BY submitted_at, name ROWS UNBOUNDED PRECEDING) AS run
            FROM ordered),
        marked AS (SELECT *, max(run) OVER (PARTITION BY series) AS last_run FROM runs)
        SELECT series, n, stepped, first_name, names, run, device_id, submitted_at, step, exp_value, stds, name
        FROM marked
        WHERE newest <= $points * $runs AND (CASE WHEN stepped THEN run > last_run - $runs ELSE newest <= $points END)
        ORDER BY n DESC, series, submitted_at, name""", series=TRACE_SERIES, runs=TRACE_RUNS, points=TRACE_POINTS)
    if not rows:
        return section.empty("No estimation job series (at least two jobs with an exp_value) in this selection.")
    series: dict[str, dict[str, Any]] = {}
    for key, n, stepped, first_name, names, run, device, t, step, value, stds, name in rows:
        s = series.setdefault(key, {"label": first_name if names == 1 else key + "*", "n": n, "stepped": stepped,
                                    "runs": {}})
        group = (run, device) if stepped else (0, device)  # a run on two devices: a line in each one's colour
        tip = f"{name} on {device}, {minute(t)}\nexp_value = {number(value, 6)} ± {number(stds, 3)}"
        s["runs"].setdefault(group, (device, []))[1].append(Point(step if stepped else epoch(t), value, stds, tip))
    panels, shown = [], []
    for s in series.values():
        newest = max(run for run, _ in s["runs"])
        lines = []
        for (run, device), (_, points) in s["runs"].items():
            older = s["stepped"] and run != newest
            lines.append(Series(device, r.colors[r.group(device)], points, line=True, dash="4 3" if older else "",
                                hollow=older))
            shown.append(r.group(device))
        panels.append(charts.series_panel(s["label"], lines, note=f"{s['n']:,} jobs", time_x=not s["stepped"],
                                          y_format=lambda v: f"{v:.4g}", y_name="exp_value",
                                          x_name="step" if s["stepped"] else ""))
    section.panels(panels, "exp_value ± stds. Jobs are grouped by name without its trailing number (vqe-h2-step-017 "
                           "→ vqe-h2-step-*). Colour is the device, as in every chart of this page (legend above). "
                           f"Numbered series are drawn by step, their {TRACE_RUNS} newest runs (a run restarts when "
                           "the step goes back): the newest solid, older ones dashed with hollow points; other "
                           f"series by time, their {TRACE_POINTS} newest jobs. Hover a point for its job.",
                   legend([(d, r.colors[d]) for d in r.shown if d in shown]))
    return section
