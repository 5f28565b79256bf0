"""Talking to S3 through boto3: one session and client per set of options, the same credentials as a pyarrow
filesystem for the readers, and boto's errors turned into the project's (configuration problems exit 2)."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

from oqtopus_data.dataset.storage.s3_lease import error_code
from oqtopus_data.errors import ConfigError, StoreError


# Making a client costs a few hundred milliseconds and `read`/`scan`/`connect` each open the dataset again: one
# per set of options and AWS_* environment. Clients are thread-safe; sessions refresh expiring credentials.
@functools.lru_cache(maxsize=16)
def session_and_client(options: tuple[tuple[str, str], ...], _env: tuple[tuple[str, str], ...]) -> tuple[Any, Any]:
    """The boto3 session and S3 client for these storage options (cached per options and AWS_* environment)."""
    import boto3
    import botocore.config

    opts = dict(options)
    session = boto3.Session(
        profile_name=opts.get("profile"), region_name=opts.get("region"),
        aws_access_key_id=opts.get("aws_access_key_id"), aws_secret_access_key=opts.get("aws_secret_access_key"),
        aws_session_token=opts.get("aws_session_token"))
    config = botocore.config.Config(
        retries={"max_attempts": 8, "mode": "standard"}, connect_timeout=10, read_timeout=60, max_pool_connections=32,
        s3={"addressing_style": opts["addressing_style"]} if "addressing_style" in opts else None)
    return session, session.client("s3", endpoint_url=opts.get("endpoint_url"), config=config)


@contextlib.contextmanager
def boto_errors(action: str, where: str, bucket: str, endpoint: str) -> Iterator[None]:
    """Turn boto errors into the project's: configuration problems exit 2, the rest are store errors."""
    import botocore.exceptions as boto

    try:
        yield
    except (boto.NoCredentialsError, boto.PartialCredentialsError) as exc:
        raise ConfigError(f"no usable AWS credentials to {action} {where} ({exc}): set AWS_ACCESS_KEY_ID and "
                          "AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or --storage-option profile=NAME") from None
    except boto.ClientError as exc:
        code, message = error_code(exc), exc.response.get("Error", {}).get("Message", "")
        if code == "NoSuchBucket":
            raise ConfigError(f"bucket {bucket!r} does not exist at {endpoint}") from None
        if code in ("AccessDenied", "403", "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken"):
            raise ConfigError(f"the object store refused to {action} {where} ({code}): check the AWS "
                              "credentials and the bucket's permissions") from None
        if code in ("NotImplemented", "501"):
            raise StoreError(f"the object store at {endpoint} cannot {action} {where} "
                             f"({code}: {message}); oqtopus-data needs S3 conditional writes "
                             "(If-None-Match / If-Match) to commit safely") from None
        raise StoreError(f"cannot {action} {where}: {code} {message}".rstrip()) from None
    except boto.BotoCoreError as exc:  # connection refused, timeouts after the retries, ...
        raise StoreError(f"cannot {action} {where}: {exc}") from None


def arrow_filesystem(session: Any, client: Any, bucket: str,
                     errors: contextlib.AbstractContextManager[None]) -> Any:
    """A pyarrow S3FileSystem with the session's credentials and the client's endpoint and bucket's region
    (`errors`: how a failure to find them is reported)."""
    import botocore.exceptions as boto
    import pyarrow.fs as pafs

    with errors:
        credentials = session.get_credentials()
        if credentials is None:
            raise boto.NoCredentialsError()
        frozen = credentials.get_frozen_credentials()
        reply = client.head_bucket(Bucket=bucket)
    headers = reply.get("ResponseMetadata", {}).get("HTTPHeaders", {})
    region = headers.get("x-amz-bucket-region") or client.meta.region_name or "us-east-1"
    endpoint = client.meta.endpoint_url
    custom = not (urlsplit(endpoint).hostname or "").endswith((".amazonaws.com", ".amazonaws.com.cn"))
    return pafs.S3FileSystem(
        access_key=frozen.access_key, secret_key=frozen.secret_key, session_token=frozen.token,
        region=region, endpoint_override=endpoint if custom else None,
        retry_strategy=pafs.AwsStandardS3RetryStrategy(max_attempts=8))
