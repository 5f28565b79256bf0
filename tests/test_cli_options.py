"""The shared options (dates, durations) and the flags of `oqtopus-export` as the ExportOptions they make."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from importlib import import_module

import click
import pytest
from cli_support import run_export

from oqtopus_data.cli.options import Duration, Moment
from oqtopus_data.run.export import ExportOptions, ExportReport

pytest_plugins = ["cli_env"]  # the `env` fixture
# The module (`oqtopus_data.run.export` as an attribute is the public function `export`).
export_module = import_module("oqtopus_data.run.export")


@pytest.mark.parametrize(("text", "end_of_day", "moment"), [
    ("2024-01-31", False, datetime(2024, 1, 31, tzinfo=UTC)),
    ("2024-01-31", True, datetime(2024, 1, 31, 23, 59, 59, 999999, tzinfo=UTC)),
    ("2024-01-31T12:00:00Z", True, datetime(2024, 1, 31, 12, tzinfo=UTC)),
    ("2024-01-31T21:00:00+09:00", False, datetime(2024, 1, 31, 12, tzinfo=UTC)),
    ("2024-01-31T12:00", False, datetime(2024, 1, 31, 12, tzinfo=UTC)),
])
def test_dates_are_read_as_utc_and_a_bare_until_date_includes_its_day(text, end_of_day, moment):
    assert Moment(end_of_day=end_of_day).convert(text, None, None) == moment


@pytest.mark.parametrize("text", ["last tuesday", "2024-13-01", "0001-01-01T00:00:00+01:00", ""])
def test_a_date_that_is_not_one_is_a_usage_error_naming_the_forms(text):
    with pytest.raises(click.BadParameter, match=r"give a date \(2024-01-31\) or date-time"):
        Moment().convert(text, None, None)


@pytest.mark.parametrize(("text", "duration"), [
    ("90m", timedelta(minutes=90)), ("36h", timedelta(hours=36)), ("2d", timedelta(days=2)),
    ("1d12h", timedelta(days=1, hours=12)), ("1.5h", timedelta(minutes=90)), ("45s", timedelta(seconds=45)),
    ("2w", timedelta(weeks=2)), ("0m", timedelta(0)),
])
def test_durations(text, duration):
    assert Duration().convert(text, None, None) == duration


@pytest.mark.parametrize("text", ["36", "3x", "h", "1d 2", "-1d", "99999999999999999999d", "3654d"])
def test_a_duration_without_a_unit_or_beyond_ten_years_is_refused(text):
    with pytest.raises(click.BadParameter):
        Duration().convert(text, None, None)


def test_flags_map_one_to_one_onto_export_options(tmp_path, env):
    seen = {}

    def export(api, out, options, **kwargs):
        seen.update(out=out, options=options, storage_options=kwargs["storage_options"])
        return ExportReport(str(out), version=1)

    env.setattr(export_module, "export", export)
    env.setenv("OQTOPUS_URL", "http://127.0.0.1:9")
    env.setenv("OQTOPUS_API_TOKEN", "tok-1234567890")
    done = run_export("-q", "--since", "2024-01-01", "--until", "2024-02-01", "--status", "succeeded",
                      "--job-type", "sampling", "--device", "Kawasaki", "--workers", "3", "--page-size", "50",
                      "--max-submit-delay", "36h", "--repair", "--sse-logs", "--checkpoint-every", "7",
                      tmp_path / "out")
    assert done.exit_code == 0, done.output
    assert seen["options"] == ExportOptions(
        since=datetime(2024, 1, 1, tzinfo=UTC), until=datetime(2024, 2, 1, 23, 59, 59, 999999, tzinfo=UTC),
        statuses=("succeeded",), job_types=("sampling",), devices=("Kawasaki",), workers=3, page_size=50,
        repair=True, sse_logs=True, max_submit_delay=timedelta(hours=36), checkpoint_jobs=7)
    assert seen["storage_options"] == {}
    assert run_export("-q", tmp_path / "out").exit_code == 0
    assert seen["options"] == ExportOptions(page_size=100, max_submit_delay=timedelta(days=1))
