"""The one fail-fast check of a run's set-up (`ApiClient.preflight`): which account, and whether the URL, the
network, TLS and the proxy let a connection be made at all, said as a ConfigError naming what to check.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from oqtopus_data.client.config import URL_ENV
from oqtopus_data.client.neterrors import ConnectFailed, ProxyFailed
from oqtopus_data.errors import ApiError, ConfigError
from oqtopus_data.redact import redact_url

#: What `preflight` keeps of GET /users/me: which account a dataset came from (never e-mail or login events).
ACCOUNT_KEYS = ("id", "name", "organization")
URL_HINT = f"check --url / {URL_ENV}"

#: The client's GET of an API path: (path, kind, params, tries=...) -> the decoded JSON (`ApiClient._api`).
Get = Callable[..., Any]


def preflight(get: Get, base_url: str, proxy: str | None) -> dict | None:
    """One fail-fast check before a run: GET /users/me, then GET /jobs?size=1 where there is no /users/me.

    Returns the account (id, name, organization) or None when the server does not say. Set-up errors come
    at once, without the usual retries: ConfigError for a connection refused, an unknown host, a TLS failure
    or a URL whose /jobs answers 404; AuthError for refused credentials."""
    try:
        me = get("/users/me", "user", tries=1)
    except ApiError as exc:
        _raise_setup_error(exc, base_url, proxy)
        # No /users/me (404), or a /users/me that failed: the run may still work. /jobs tells, fail-fast
        # when it is missing, with the usual retries when it is only unwell.
        _probe_jobs(get, base_url, proxy, tries=1 if exc.status == 404 else None)
        return None
    if not isinstance(me, dict):
        return None
    return {key: me[key] for key in ACCOUNT_KEYS if key in me}


def _probe_jobs(get: Get, base_url: str, proxy: str | None, *, tries: int | None) -> None:
    try:
        get("/jobs", "list", {"size": 1}, tries=tries)
    except ApiError as exc:
        _raise_setup_error(exc, base_url, proxy)
        if exc.status == 404:
            raise ConfigError(
                f"{redact_url(base_url)}/jobs answered 404: the URL is not an OQTOPUS Cloud user API: "
                f"{URL_HINT}."
            ) from None
        if tries is not None:
            _probe_jobs(get, base_url, proxy, tries=None)  # not a set-up error: the usual retries
            return
        raise


def _raise_setup_error(exc: ApiError, base_url: str, proxy: str | None) -> None:
    """Raise ConfigError when `exc` was caused by a connection that could not be made at all."""
    cause = exc.__cause__
    if not isinstance(cause, ConnectFailed) or cause.why is None:
        return
    if isinstance(cause, ProxyFailed):
        where = "OQTOPUS_PROXY or the profile's proxy" if proxy else "HTTPS_PROXY, HTTP_PROXY, ALL_PROXY and NO_PROXY"
        raise ConfigError(f"cannot connect to the proxy {cause.proxy} ({cause.why}): check {where}.") from None
    hint = URL_HINT + (", and REQUESTS_CA_BUNDLE for a private certificate authority"
                       if cause.why.startswith("TLS") else "")
    raise ConfigError(f"cannot connect to {_host_port(base_url)} ({cause.why}): {hint}.") from None


def _host_port(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or "?"
    host = f"[{host}]" if ":" in host else host
    return f"{host}:{parts.port or (443 if parts.scheme == 'https' else 80)}"
