"""`oqtopus-data fake-cloud`: a local synthetic OQTOPUS Cloud, for trying the exporter without an account."""

from __future__ import annotations

import dataclasses
import time
from datetime import timedelta

import click

from oqtopus_data.cli import options as opt
from oqtopus_data.cli.failures import Command


def _sizes(text: str | None) -> tuple[int, ...]:
    if not text:
        return ()
    try:
        sizes = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise click.BadParameter(f"{text!r} is not a comma-separated list of batch sizes",
                                 param_hint="--bursts") from None
    if any(size < 1 for size in sizes):
        raise click.BadParameter("batch sizes are whole numbers of at least 1", param_hint="--bursts")
    return sizes


@click.command("fake-cloud", cls=Command)
@click.option("--jobs", "n_jobs", type=click.IntRange(1), default=500, show_default=True, help="Jobs in the history.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the synthetic history.")
@click.option("--port", type=click.IntRange(0, 65535), default=0, show_default=True,
              help="Port on 127.0.0.1 (0 picks a free one).")
@click.option("--latency", type=click.FloatRange(0), default=0.0, show_default=True,
              help="Seconds added to every request.")
@click.option("--legacy", is_flag=True, help="Serve job_info inline (the legacy form) instead of archive URLs.")
@click.option("--spec-api", is_flag=True,
              help="Behave as the API specification says instead of as the server's code runs: submitted_at windows, "
                   "the last page repeated past the end, sizes up to 65535, GET /jobs/{id}/sselog.")
@click.option("--newest-api", is_flag=True,
              help="Behave as the newest generation of the server's code: start_time/end_time on submitted_at in UTC "
                   "(jobs never submitted are never in a window), a status filter.")
@click.option("--no-tz-shift", is_flag=True,
              help="Compare start_time/end_time in UTC (the server's code compares them in Asia/Tokyo).")
@click.option("--bursts", metavar="N,N,...", help="Batches of jobs created within one second each, e.g. 300,300.")
@click.option("--two-step", type=click.FloatRange(0, 1), default=0.15, show_default=True,
              help="Share of jobs registered first and submitted later.")
@click.option("--max-submit-delay", type=opt.Duration(), default="1d", show_default=True,
              help="Longest gap between a two-step job's registration and its submission.")
@click.option("--undeclared-keys", is_flag=True, help="Send keys no schema declares, at every level of some jobs.")
@click.option("--no-account", is_flag=True, help="Answer GET /users/me with 404, as servers without it do.")
def fake_cloud_command(n_jobs: int, seed: int, port: int, latency: float, legacy: bool, spec_api: bool,
                       newest_api: bool, no_tz_shift: bool, bursts: str | None, two_step: float,
                       max_submit_delay: timedelta, undeclared_keys: bool, no_account: bool) -> None:
    """Serve a synthetic OQTOPUS Cloud on 127.0.0.1 until Ctrl-C (for trying the exporter without an account).

    By default it behaves like the OQTOPUS Cloud server's code: GET /jobs filters and orders on the jobs' creation
    time, pages of at most 100 jobs, `[]` past the end, SSE logs as presigned archives.

    \b
    Example:
      oqtopus-data fake-cloud --jobs 2000 --bursts 300,300 --port 8080 &
      OQTOPUS_URL=http://127.0.0.1:8080 OQTOPUS_API_TOKEN=demo-token oqtopus-export out/
    """
    from oqtopus_data.testing import (
        DEFAULT_ACCOUNT,
        NEWEST_API,
        SERVER_API,
        SPEC_API,
        FakeCloud,
        Faults,
        generate_history,
    )

    sizes = _sizes(bursts)
    if sum(sizes) > n_jobs:
        raise click.BadParameter(f"the bursts add up to {sum(sizes):,} jobs, more than --jobs {n_jobs:,}",
                                 param_hint="--bursts")
    if spec_api and newest_api:
        raise click.BadParameter("choose one of --spec-api and --newest-api", param_hint="--newest-api")
    api = SPEC_API if spec_api else NEWEST_API if newest_api else SERVER_API
    if no_tz_shift:
        api = dataclasses.replace(api, tz_shift=timedelta(0))
    history = generate_history(n_jobs, seed=seed, bursts=sizes, two_step=two_step, max_submit_delay=max_submit_delay,
                               undeclared=undeclared_keys)
    cloud = FakeCloud(history=history, faults=Faults(latency=latency), legacy=legacy, api=api,
                      account=None if no_account else DEFAULT_ACCOUNT)
    try:
        cloud.start(port=port)
    except OSError as exc:
        raise click.BadParameter(f"cannot listen on 127.0.0.1:{port} ({exc.strerror or exc})",
                                 param_hint="--port") from None
    click.echo(f"OQTOPUS_URL={cloud.url}")
    click.echo(f"OQTOPUS_API_TOKEN={cloud.token}")
    click.echo(f"serving {n_jobs:,} jobs on {cloud.url} ({api.name} API); Ctrl-C stops", err=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        cloud.stop()
