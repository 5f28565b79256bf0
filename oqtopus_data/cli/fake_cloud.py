"""`oqtopus-data fake-cloud`: a local synthetic OQTOPUS Cloud, for trying the exporter without an account."""

from __future__ import annotations

import time

import click

from .failures import Command


@click.command("fake-cloud", cls=Command)
@click.option("--jobs", "n_jobs", type=click.IntRange(1), default=500, show_default=True, help="Jobs in the history.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the synthetic history.")
@click.option("--port", type=click.IntRange(0, 65535), default=0, show_default=True,
              help="Port on 127.0.0.1 (0 picks a free one).")
@click.option("--latency", type=click.FloatRange(0), default=0.0, show_default=True,
              help="Seconds added to every request.")
@click.option("--legacy", is_flag=True, help="Serve job_info inline (the legacy form) instead of archive URLs.")
def fake_cloud_command(n_jobs: int, seed: int, port: int, latency: float, legacy: bool) -> None:
    """Serve a synthetic OQTOPUS Cloud on 127.0.0.1 until Ctrl-C (for trying the exporter without an account).

    \b
    Example:
      oqtopus-data fake-cloud --jobs 2000 --port 8080 &
      OQTOPUS_URL=http://127.0.0.1:8080 OQTOPUS_API_TOKEN=demo-token oqtopus-export out/
    """
    from oqtopus_data.testing import FakeCloud, Faults

    cloud = FakeCloud(n_jobs=n_jobs, seed=seed, faults=Faults(latency=latency), legacy=legacy)
    try:
        cloud.start(port=port)
    except OSError as exc:
        raise click.BadParameter(f"cannot listen on 127.0.0.1:{port} ({exc.strerror or exc})",
                                 param_hint="--port") from None
    click.echo(f"OQTOPUS_URL={cloud.url}")
    click.echo(f"OQTOPUS_API_TOKEN={cloud.token}")
    click.echo(f"serving {n_jobs:,} jobs on {cloud.url}; Ctrl-C stops", err=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        cloud.stop()
