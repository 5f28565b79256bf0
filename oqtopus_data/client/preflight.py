"""The one fail-fast check of a run's set-up (`ApiClient.preflight`): which account, and whether the URL, the
network, TLS and the proxy let a connection be made at all, said as a ConfigError naming what to check.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import requests

from oqtopus_data.client.config import URL_ENV
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
    problem = _connect_problem(exc.__cause__)
    if problem is None:
        return
    if proxy and isinstance(exc.__cause__, requests.exceptions.ProxyError):
        raise ConfigError(f"cannot connect to the proxy {_host_port(proxy)} ({problem}): check "
                          "OQTOPUS_PROXY or the profile's proxy.") from None
    hint = URL_HINT + (", and REQUESTS_CA_BUNDLE for a private certificate authority"
                       if problem.startswith("TLS") else "")
    raise ConfigError(f"cannot connect to {_host_port(base_url)} ({problem}): {hint}.") from None


def _causes(exc: BaseException | None) -> Iterator[BaseException]:
    """`exc` and everything it wraps (causes, contexts, urllib3's `reason`, exceptions among the args)."""
    seen: set[int] = set()
    stack = [exc]
    while stack:
        item = stack.pop()
        if item is None or id(item) in seen:
            continue
        seen.add(id(item))
        yield item
        reason = getattr(item, "reason", None)
        stack += [item.__cause__, item.__context__, reason if isinstance(reason, BaseException) else None]
        stack += [arg for arg in item.args if isinstance(arg, BaseException)]


def _connect_problem(exc: BaseException | None) -> str | None:
    """Why no connection could be made at all, in a few words; None when `exc` is something else."""
    if not isinstance(exc, requests.exceptions.ConnectionError):
        return None
    causes = list(_causes(exc))
    for cause in causes:
        if isinstance(cause, ssl.SSLCertVerificationError):
            return f"TLS failure: {cause.verify_message or 'certificate verify failed'}"
        if isinstance(cause, ssl.SSLError):
            return f"TLS failure: {(cause.reason or 'handshake failed').lower().replace('_', ' ')}"
    if isinstance(exc, requests.exceptions.SSLError):
        return "TLS failure"
    for cause in causes:
        if isinstance(cause, socket.gaierror):
            return "unknown host"
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused"
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return "connection timed out"
    for cause in causes:
        if type(cause) is OSError and cause.strerror:  # e.g. network unreachable, no route to host
            return cause.strerror[:1].lower() + cause.strerror[1:]
    return None


def _host_port(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or "?"
    host = f"[{host}]" if ":" in host else host
    return f"{host}:{parts.port or (443 if parts.scheme == 'https' else 80)}"
