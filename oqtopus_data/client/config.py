"""Where the API URL and token come from: the same places the official SDK users already fill in.

Each value is taken from the first place that has it:
  1. the `--url` flag, and the section of an explicit `--profile`;
  2. the environment: OQTOPUS_URL (older alias OQTOPUS_BASE_URL), OQTOPUS_API_TOKEN, OQTOPUS_PROXY;
  3. the `default` section of the profile file: $XDG_CONFIG_HOME/oqtopus/config.ini, else
     ~/.config/oqtopus/config.ini, with ~/.oqtopus (quri-parts-oqtopus) as the fallback.
"""

from __future__ import annotations

import configparser
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from oqtopus_data.errors import ConfigError

DEFAULT_PROFILE = "default"
DEFAULT_TIMEOUT = 30.0
URL_ENV = "OQTOPUS_URL"
BASE_URL_ENV = "OQTOPUS_BASE_URL"
TOKEN_ENV = "OQTOPUS_API_TOKEN"  # noqa: S105 (a variable name, not a secret)
PROXY_ENV = "OQTOPUS_PROXY"


@dataclass(frozen=True)
class Credentials:
    """Resolved connection settings; `source` says where they came from, never what the token is."""

    url: str
    token: str = field(repr=False)
    proxy: str | None = None
    timeout: float = DEFAULT_TIMEOUT
    source: str = ""

    def __repr__(self) -> str:
        proxy = _redact_proxy(self.proxy) if self.proxy else None
        return (
            f"Credentials(url={self.url!r}, token=<hidden>, proxy={proxy!r}, "
            f"timeout={self.timeout!r}, source={self.source!r})"
        )

    __str__ = __repr__


@dataclass
class _Profile:
    name: str
    path: Path | None  # None: no file holds this section
    values: dict[str, str]

    @property
    def where(self) -> str:
        return f"profile '{self.name}' in {self.path}"


def profile_paths(environ: Mapping[str, str], home: Path) -> list[Path]:
    """The profile files in the order they are searched (oqtopus-client's, then quri-parts')."""
    xdg = environ.get("XDG_CONFIG_HOME")
    primary = Path(xdg) / "oqtopus" / "config.ini" if xdg else home / ".config/oqtopus/config.ini"
    return [primary, home / ".oqtopus"]


def resolve_credentials(
    *,
    url: str | None = None,
    profile: str | None = None,
    environ: Mapping[str, str] | None = None,
    home: Path | None = None,
) -> Credentials:
    """Resolve URL, token, proxy and timeout from flags, environment, then the profile file."""
    environ = os.environ if environ is None else environ
    home = Path.home() if home is None else home
    paths = profile_paths(environ, home)
    section = _load_profile(profile or DEFAULT_PROFILE, paths, required=profile is not None)
    env = {
        "url": environ.get(URL_ENV) or environ.get(BASE_URL_ENV),
        "api_token": environ.get(TOKEN_ENV),
        "proxy": environ.get(PROXY_ENV),
    }
    # An explicit profile ranks with the flags; the default profile ranks below the environment.
    layers: list[tuple[str, Mapping[str, str | None]]] = [("--url flag", {"url": url})]
    profile_layer = (section.where, section.values)
    if profile is not None:
        layers.append(profile_layer)
    layers.append(("environment", env))
    if profile is None:
        layers.append(profile_layer)

    chosen: dict[str, str] = {}
    origin: dict[str, str] = {}
    sources: list[str] = []
    for where, values in layers:
        for key in ("url", "api_token", "proxy", "timeout"):
            value = (values.get(key) or "").strip()
            if value and key not in chosen:
                chosen[key] = value
                origin[key] = where
                if where not in sources:
                    sources.append(where)

    hint = _profile_hint(section, paths)
    if "url" not in chosen:
        raise ConfigError(
            f"No OQTOPUS API URL is configured: pass --url, set {URL_ENV}, or add 'url' to {hint}."
        )
    if "api_token" not in chosen:
        raise ConfigError(
            f"No OQTOPUS API token is configured: set {TOKEN_ENV} or add 'api_token' to {hint}."
        )
    token_from = TOKEN_ENV if origin["api_token"] == "environment" else f"the 'api_token' of {hint}"  # noqa: S105
    check_token(chosen["api_token"], where=token_from)
    return Credentials(
        url=check_url(chosen["url"]),
        token=chosen["api_token"],
        proxy=chosen.get("proxy"),
        timeout=_parse_timeout(chosen.get("timeout"), section),
        source=", ".join(sources),
    )


def _load_profile(name: str, paths: list[Path], *, required: bool) -> _Profile:
    """Read section `name` from the first profile file that has it."""
    found: dict[Path, list[str]] = {}
    for path in paths:
        if not path.is_file():
            continue
        # No interpolation: tokens may contain '%'.
        parser = configparser.ConfigParser(interpolation=None)
        try:
            with path.open(encoding="utf-8") as handle:
                parser.read_file(handle)
        except (OSError, UnicodeDecodeError, configparser.Error) as exc:
            raise ConfigError(f"Cannot read profile file {path}: {_first_line(exc)}") from None
        if parser.has_section(name):
            values = dict(parser.items(name))
            values["url"] = values.get("url") or values.get("base_url", "")
            return _Profile(name, path, values)
        found[path] = parser.sections()
    if required:
        looked = ", ".join(
            f"{p} (sections: {', '.join(found[p]) or 'none'})" if p in found else f"{p} (missing)"
            for p in paths
        )
        raise ConfigError(f"Profile '{name}' was not found; looked in {looked}.")
    return _Profile(name, None, {})


def _profile_hint(section: _Profile, paths: list[Path]) -> str:
    path = section.path or paths[0]
    return f"section [{section.name}] of {path}"


def check_token(token: str, *, where: str = f"{TOKEN_ENV} or the profile's api_token") -> None:
    """Refuse a token that cannot travel in the q-api-token header (never showing it); `where` is the fix."""
    if not token.isascii():
        raise ConfigError(f"The API token contains a character that cannot be sent in an HTTP header: check {where}.")
    if any(ord(char) < 33 or ord(char) == 127 for char in token):
        raise ConfigError(f"The OQTOPUS API token contains blanks or control characters: check {where}.")


def check_url(value: str) -> str:
    """The API base URL without a trailing slash; ConfigError with one sentence when it cannot be used."""
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 (raises ValueError on a port that is not a number in range)
    except ValueError as exc:
        raise ConfigError(f"The OQTOPUS API URL is malformed ({_reason(exc)}): check --url / {URL_ENV}.") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            "The OQTOPUS API URL must start with http:// or https:// and name a host "
            f"(got scheme {parts.scheme or 'none'!r})."
        )
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ConfigError("The OQTOPUS API URL must not carry credentials, a query or a fragment.")
    if any(char.isspace() or not char.isprintable() for char in value.strip()):
        raise ConfigError(f"The OQTOPUS API URL contains blanks or control characters: check --url / {URL_ENV}.")
    return value.strip().rstrip("/")


def _reason(exc: ValueError) -> str:
    """urlsplit's complaint in a few plain words (it never quotes the URL)."""
    text = str(exc).rstrip(".")
    return text[:1].lower() + text[1:] if text else "unreadable"


def _parse_timeout(value: str | None, section: _Profile) -> float:
    if value is None:
        return DEFAULT_TIMEOUT
    try:
        timeout = float(value)
    except ValueError:
        timeout = -1.0
    if not timeout > 0 or timeout == float("inf"):
        raise ConfigError(
            f"The 'timeout' of {section.where} must be a positive number of seconds, got {value!r}."
        )
    return timeout


def _redact_proxy(proxy: str) -> str:
    """A proxy URL may carry user:password; show only scheme://host:port."""
    parts = urlsplit(proxy)
    host = parts.netloc.rpartition("@")[2]
    return f"{parts.scheme}://{host}" if parts.scheme and host else "<proxy>"


def _first_line(exc: BaseException) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0][:200]
