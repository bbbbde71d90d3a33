"""Which web pages may open a browser session (the Origin allow-list)."""

from __future__ import annotations

import pytest

from voxline.api.browser import origin_allowed
from voxline.config import Settings


def _settings(*allowed: str, public: str = "https://voice.example.com") -> Settings:
    return Settings(_env_file=None, allowed_origins=list(allowed), public_base_url=public)


def test_clients_without_an_origin_are_not_browsers_and_pass() -> None:
    assert origin_allowed(None, "127.0.0.1:8000", _settings())


@pytest.mark.parametrize(
    ("origin", "host"),
    [
        ("http://127.0.0.1:8000", "127.0.0.1:8000"),
        ("http://LOCALHOST:8000", "localhost:8000"),
        ("https://voice.example.com:443", "voice.example.com"),
        ("http://[::1]:8000", "[::1]:8000"),
    ],
)
def test_the_servers_own_origin_passes(origin: str, host: str) -> None:
    assert origin_allowed(origin, host, _settings())


def test_the_public_base_url_origin_passes_behind_a_proxy() -> None:
    assert origin_allowed("https://voice.example.com", "10.0.0.5:8000", _settings())


def test_a_configured_origin_passes() -> None:
    settings = _settings("https://app.example.com/")
    assert origin_allowed("https://app.example.com", "voice.example.com", settings)


@pytest.mark.parametrize(
    "origin",
    ["https://evil.example", "null", "file://", "http://voice.example.com.evil.example", "junk"],
)
def test_other_origins_are_refused(origin: str) -> None:
    settings = _settings("https://app.example.com")
    assert not origin_allowed(origin, "voice.example.com", settings)


def test_a_configured_origin_differs_by_scheme_and_port() -> None:
    settings = _settings("https://app.example.com")
    assert not origin_allowed("http://app.example.com", "voice.example.com", settings)
    assert not origin_allowed("https://app.example.com:8443", "voice.example.com", settings)


def test_a_wildcard_allows_any_origin() -> None:
    assert origin_allowed("https://anything.example", "voice.example.com", _settings("*"))
