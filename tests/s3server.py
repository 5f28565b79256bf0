"""A local fake S3 for tests: moto's server on 127.0.0.1, fake credentials, nothing read from ~/.aws."""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

FAKE_AWS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",  # no instance-metadata lookups from a test
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
}
CLEARED = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_REGION",
           "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3")
_buckets = itertools.count()


@dataclass
class FakeS3:
    """The running server: its endpoint, the environment a subprocess needs, and fresh buckets."""

    endpoint: str

    @property
    def options(self) -> dict[str, str]:
        """Storage options that point oqtopus-data at this server."""
        return {"endpoint_url": self.endpoint}

    def env(self, **extra: str) -> dict[str, str]:
        """os.environ without real AWS settings, with the fake credentials and `extra`."""
        env = {k: v for k, v in os.environ.items() if k not in CLEARED}
        return {**env, **FAKE_AWS, **extra}

    def client(self) -> Any:
        """A boto3 S3 client on this server."""
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1")

    def bucket(self) -> str:
        """Create a new empty bucket and return its name."""
        name = f"test-bucket-{next(_buckets)}"
        self.client().create_bucket(Bucket=name)
        return name

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        """Every key in `bucket` under `prefix`, sorted."""
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        return sorted(item["Key"] for page in pages for item in page.get("Contents", []))


@contextlib.contextmanager
def moto_s3() -> Iterator[FakeS3]:
    """Start moto's S3 server on 127.0.0.1 (a free port) with the fake credentials in os.environ."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one log line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    with pytest.MonkeyPatch.context() as patch:
        for name in CLEARED:
            patch.delenv(name, raising=False)
        for name, value in FAKE_AWS.items():
            patch.setenv(name, value)
        server.start()
        try:
            host, port = server.get_host_and_port()
            yield FakeS3(f"http://{host}:{port}")
        finally:
            server.stop()


@pytest.fixture(scope="module")
def s3() -> Iterator[FakeS3]:
    """moto's S3 server for the tests of one module."""
    with moto_s3() as server:
        yield server
