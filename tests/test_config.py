"""Credentials resolution: flag > explicit profile > environment > default profile file."""

from __future__ import annotations

from pathlib import Path

import pytest

from oqtopus_data.client.api import ApiClient
from oqtopus_data.client.config import Credentials, resolve_credentials
from oqtopus_data.errors import ConfigError

TOKEN = "tok-SECRET-123"


def write_profile(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


def test_environment_gives_url_token_and_proxy(home: Path) -> None:
    env = {
        "OQTOPUS_URL": "https://api.example.com/",
        "OQTOPUS_API_TOKEN": TOKEN,
        "OQTOPUS_PROXY": "http://proxy:3128",
    }
    creds = resolve_credentials(environ=env, home=home)
    assert creds == Credentials(
        url="https://api.example.com",
        token=TOKEN,
        proxy="http://proxy:3128",
        timeout=30.0,
        source="environment",
    )


def test_base_url_alias_is_read_when_url_is_unset(home: Path) -> None:
    env = {"OQTOPUS_BASE_URL": "https://old.example.com", "OQTOPUS_API_TOKEN": TOKEN}
    assert resolve_credentials(environ=env, home=home).url == "https://old.example.com"


def test_url_wins_over_base_url_alias(home: Path) -> None:
    env = {
        "OQTOPUS_URL": "https://new.example.com",
        "OQTOPUS_BASE_URL": "https://old.example.com",
        "OQTOPUS_API_TOKEN": TOKEN,
    }
    assert resolve_credentials(environ=env, home=home).url == "https://new.example.com"


def test_flag_beats_environment_and_environment_beats_default_profile(home: Path) -> None:
    ini = write_profile(
        home / ".config/oqtopus/config.ini",
        "[default]\nurl = https://file.example.com\napi_token = file-token\n"
        "proxy = http://file-proxy:1\ntimeout = 12\n",
    )
    env = {"OQTOPUS_URL": "https://env.example.com", "OQTOPUS_API_TOKEN": TOKEN}
    creds = resolve_credentials(url="https://flag.example.com", environ=env, home=home)
    assert (creds.url, creds.token, creds.proxy, creds.timeout) == (
        "https://flag.example.com",
        TOKEN,
        "http://file-proxy:1",
        12.0,
    )
    assert creds.source == f"--url flag, environment, profile 'default' in {ini}"


def test_explicit_profile_beats_environment(home: Path) -> None:
    ini = write_profile(
        home / ".config/oqtopus/config.ini",
        "[default]\nurl = https://default.example.com\napi_token = default-token\n"
        "[prod]\nurl = https://prod.example.com\n",
    )
    env = {"OQTOPUS_URL": "https://env.example.com", "OQTOPUS_API_TOKEN": TOKEN}
    creds = resolve_credentials(profile="prod", environ=env, home=home)
    # prod has no token: the environment fills it, never the default section.
    assert (creds.url, creds.token) == ("https://prod.example.com", TOKEN)
    assert creds.source == f"profile 'prod' in {ini}, environment"


def test_xdg_config_home_is_searched_instead_of_dot_config(tmp_path: Path, home: Path) -> None:
    write_profile(home / ".config/oqtopus/config.ini", "[default]\nurl = https://ignored\n")
    xdg = tmp_path / "xdg"
    write_profile(
        xdg / "oqtopus/config.ini", "[default]\nbase_url = https://xdg.example.com\napi_token = x\n"
    )
    creds = resolve_credentials(environ={"XDG_CONFIG_HOME": str(xdg)}, home=home)
    assert creds.url == "https://xdg.example.com"


def test_dot_oqtopus_is_the_fallback_profile_file(home: Path) -> None:
    legacy = write_profile(
        home / ".oqtopus", "[default]\nurl = https://legacy.example.com\napi_token = 100%secret\n"
    )
    creds = resolve_credentials(environ={}, home=home)
    assert (creds.url, creds.token) == ("https://legacy.example.com", "100%secret")
    assert creds.source == f"profile 'default' in {legacy}"


def test_missing_url_names_flag_env_var_and_profile_key(home: Path) -> None:
    with pytest.raises(ConfigError) as info:
        resolve_credentials(environ={"OQTOPUS_API_TOKEN": TOKEN}, home=home)
    assert str(info.value) == (
        "No OQTOPUS API URL is configured: pass --url, set OQTOPUS_URL, or add 'url' to "
        f"section [default] of {home / '.config/oqtopus/config.ini'}."
    )


def test_missing_token_names_env_var_and_profile_file(home: Path) -> None:
    ini = write_profile(home / ".config/oqtopus/config.ini", "[dev]\nurl = https://dev.example\n")
    with pytest.raises(ConfigError) as info:
        resolve_credentials(profile="dev", environ={}, home=home)
    assert str(info.value) == (
        "No OQTOPUS API token is configured: set OQTOPUS_API_TOKEN or add 'api_token' to "
        f"section [dev] of {ini}."
    )


def test_unknown_profile_names_files_and_sections(home: Path) -> None:
    ini = write_profile(home / ".config/oqtopus/config.ini", "[default]\n[dev]\n")
    with pytest.raises(ConfigError) as info:
        resolve_credentials(profile="prod", environ={}, home=home)
    assert str(info.value) == (
        f"Profile 'prod' was not found; looked in {ini} (sections: default, dev), "
        f"{home / '.oqtopus'} (missing)."
    )


@pytest.mark.parametrize("url", ["ftp://example.com", "example.com/api", "https://"])
def test_url_without_http_scheme_and_host_is_refused(home: Path, url: str) -> None:
    with pytest.raises(ConfigError, match="must start with http:// or https://"):
        resolve_credentials(url=url, environ={"OQTOPUS_API_TOKEN": TOKEN}, home=home)


def test_bad_timeout_in_profile_is_refused(home: Path) -> None:
    write_profile(home / ".oqtopus", "[default]\nurl = https://x.example\ntimeout = soon\n")
    with pytest.raises(ConfigError, match="'timeout' of profile 'default'"):
        resolve_credentials(environ={"OQTOPUS_API_TOKEN": TOKEN}, home=home)


def test_broken_profile_file_is_reported_without_its_content(home: Path) -> None:
    write_profile(home / ".oqtopus", f"api_token = {TOKEN}\n")
    with pytest.raises(ConfigError, match="Cannot read profile file") as info:
        resolve_credentials(environ={}, home=home)
    assert TOKEN not in str(info.value)


def test_token_and_proxy_password_never_shown_in_repr_or_str(home: Path) -> None:
    env = {
        "OQTOPUS_URL": "https://api.example.com",
        "OQTOPUS_API_TOKEN": TOKEN,
        "OQTOPUS_PROXY": "http://user:pw-SECRET@proxy:3128",
    }
    creds = resolve_credentials(environ=env, home=home)
    for text in (repr(creds), str(creds), f"{creds}", repr([creds])):
        assert TOKEN not in text
        assert "pw-SECRET" not in text
    assert repr(creds) == (
        "Credentials(url='https://api.example.com', token=<hidden>, "
        "proxy='http://proxy:3128', timeout=30.0, source='environment')"
    )


def test_token_with_control_characters_is_refused_without_showing_it(home: Path) -> None:
    env = {"OQTOPUS_URL": "https://api.example.com", "OQTOPUS_API_TOKEN": "tok\nSECRET"}
    with pytest.raises(ConfigError, match="contains blanks or control characters") as info:
        resolve_credentials(environ=env, home=home)
    assert "SECRET" not in str(info.value)


@pytest.mark.parametrize("url", ["http://[::1", "https://host:99999", "http://host:port"])
def test_a_malformed_api_url_is_a_config_error_at_start_up(home: Path, url: str) -> None:
    with pytest.raises(ConfigError, match=r"^The OQTOPUS API URL is malformed \(.+\): check --url / OQTOPUS_URL\.$"):
        resolve_credentials(url=url, environ={"OQTOPUS_API_TOKEN": TOKEN}, home=home)
    with pytest.raises(ConfigError):
        ApiClient(Credentials(url, TOKEN))


def test_a_token_with_a_non_ascii_character_is_a_config_error(home: Path) -> None:
    env = {"OQTOPUS_URL": "https://api.example.com", "OQTOPUS_API_TOKEN": "tok-SECRET-é"}
    with pytest.raises(ConfigError) as info:
        resolve_credentials(environ=env, home=home)
    assert str(info.value) == (  # the fix names where the token came from
        "The API token contains a character that cannot be sent in an HTTP header: check OQTOPUS_API_TOKEN."
    )
    with pytest.raises(ConfigError, match="cannot be sent in an HTTP header"):
        ApiClient(Credentials("https://api.example.com", "tok-€"))
