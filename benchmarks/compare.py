"""`python -m benchmarks --baseline FILE`: this run's key figures beside those of an earlier run's `--json` file.

The earlier run is usually the code before a change, measured on the same machine (benchmarks/baselines/ keeps
the ones the README cites, each with the commit it ran). Only figures both runs have are compared; a benchmark the
baseline did not run is named, not guessed.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .common import table

Figure = Callable[[dict[str, Any]], float | None]


def _per_job_ms(result: dict[str, Any]) -> float | None:
    exported = result.get("exported")
    return result["ours_cpu"] / exported * 1e3 if exported and "ours_cpu" in result else None


def _realistic_per_job_ms(result: dict[str, Any]) -> float | None:
    realistic = result.get("realistic") or {}
    return realistic["cpu"] / realistic["jobs"] * 1e3 if realistic.get("jobs") and "cpu" in realistic else None


def _transport_ms(result: dict[str, Any]) -> float | None:
    """The project's own Transport: the variant the benchmark names by its module ("oqtopus_data...")."""
    ours = [value for name, value in result.items() if name.startswith("oqtopus_data")]
    return ours[0] if ours else None


def _history_us(result: dict[str, Any]) -> float | None:
    """CPU per history job from the run's own figures (older runs did not name the ratio)."""
    history = result.get("history") or {}
    return history["ours"]["cpu"] / history["jobs"] * 1e6 if history.get("jobs") and "ours" in history else None


def _heavy_x_floor(result: dict[str, Any]) -> float | None:
    heavy = result.get("heavy") or {}
    return heavy["ours"]["total"] / heavy["floor_results"] if heavy.get("floor_results") and "ours" in heavy else None


#: (benchmark, what, unit, the figure read from its result; lower is better for every one).
FIGURES: list[tuple[str, str, str, Figure]] = [
    ("export", "export at 20 ms: client CPU per job (whole process)", "ms", _per_job_ms),
    ("export", "export at 20 ms: wall time / request floor", "x", lambda r: r.get("to_floor")),
    ("export", "export at 20 ms: wall time", "s", lambda r: r.get("ours_seconds")),
    ("export", "export, realistic profile: client CPU per job", "ms", _realistic_per_job_ms),
    ("export", "export, realistic profile: wall time / request floor", "x",
     lambda r: (r.get("realistic") or {}).get("to_floor")),
    ("cpu", "CPU path: CPU per history job", "us", _history_us),
    ("cpu", "CPU path: count-heavy jobs / parse floor", "x", _heavy_x_floor),
    ("cpu", "CPU path cost model: per job", "us", lambda r: r.get("us_per_job")),
    ("cpu", "CPU path cost model: per count row", "us", lambda r: r.get("us_per_count_row")),
    ("transport", "transport: CPU per GET, the project's Transport", "ms", _transport_ms),
]


def load(path: str) -> dict[str, Any]:
    """An earlier run's `--json` file; a clear error when it is not one."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise SystemExit(f"--baseline {path}: cannot read it ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("results"), dict):
        raise SystemExit(f"--baseline {path}: not a `python -m benchmarks --json` file")
    return data


def report(current: dict[str, Any], baseline: dict[str, Any], path: str) -> list[dict[str, Any]]:
    """Print the figures both runs have, side by side with their ratio; return them as rows."""
    rows, out = [], []
    for name, what, unit, figure in FIGURES:
        now_result = current["results"].get(name)
        then_result = baseline["results"].get(name)
        if now_result is None or then_result is None:
            continue
        now, then = figure(now_result), figure(then_result)
        if now is None or then is None:
            continue
        rows.append([f"{what} ({unit})", then, now, f"{now / then:.2f}x" if then else ""])
        out.append({"benchmark": name, "figure": what, "unit": unit, "baseline": then, "now": now})
    missing = sorted({name for name, *_ in FIGURES if name in current["results"]} - set(baseline["results"]))
    then_machine = baseline.get("machine", {})
    note = (f"Baseline: {path}, --{baseline.get('mode', '?')} run of source {then_machine.get('commit', '?')}, "
            f"load average at its start {baseline.get('load_start', '?')}; this run: source "
            f"{current.get('machine', {}).get('commit', '?')}. Lower is better for every figure; now / baseline "
            "below 1 is an improvement. Runs of different modes (--quick, --full) measure different sizes.")
    if missing:
        note += f" Not in the baseline: {', '.join(missing)}."
    table(f"compared with the baseline [python -m benchmarks --baseline {path}]",
          ["", "baseline", "now", "now / baseline"], rows, note=note)
    return out
