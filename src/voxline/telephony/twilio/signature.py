"""`X-Twilio-Signature` validation for Twilio's webhooks and callbacks.

The signature is base64(HMAC-SHA1(auth_token, url + sorted form params)). Twilio signs the URL
it requested, which behind a proxy is the public one: rebuild it with `public_request_url`.
Like Twilio's own validator, the URL is accepted with and without its port.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable, Mapping
from urllib.parse import parse_qs, urlsplit, urlunsplit

SIGNATURE_HEADER = "X-Twilio-Signature"

_DEFAULT_PORTS = {"https": 443, "http": 80}


def public_request_url(public_base_url: str, path: str, query: str = "") -> str:
    """The URL Twilio requested: the configured public base URL + the routed path and query.

    `path` is the request path as the application routes it (without any prefix already in
    the base URL); `query` is the raw query string, without the leading `?`.
    """
    url = public_base_url.rstrip("/") + "/" + path.lstrip("/")
    return f"{url}?{query}" if query else url


def validate_twilio_request(
    auth_token: str,
    public_url: str,
    params: Mapping[str, str | list[str]],
    signature: str | None,
) -> bool:
    """True when `signature` is Twilio's signature of a form POST (or GET) to `public_url`."""
    if not auth_token:
        raise ValueError("a Twilio auth token is required to validate signatures")
    if not signature:
        return False
    key = auth_token.encode()
    expected = signature.encode()
    return any(
        hmac.compare_digest(_sign(key, url, payload), expected)
        for url in _url_variants(public_url)
        for payload in _param_strings(params)
    )


def validate_twilio_json_request(
    auth_token: str, public_url: str, body: bytes, signature: str | None
) -> bool:
    """True for a signed JSON POST: the URL carries `bodySHA256` of the body, params are empty."""
    query = parse_qs(urlsplit(public_url).query)
    claimed = query.get("bodySHA256")
    if not claimed:
        return False
    actual = hashlib.sha256(body).hexdigest()
    body_ok = hmac.compare_digest(actual.encode(), claimed[0].strip().lower().encode())
    return validate_twilio_request(auth_token, public_url, {}, signature) and body_ok


def _sign(key: bytes, url: str, params: str) -> bytes:
    digest = hmac.new(key, (url + params).encode(), hashlib.sha1).digest()
    return base64.b64encode(digest)


def _url_variants(url: str) -> set[str]:
    """The URL as given, without its port, and with it (the default port when none is given)."""
    parts = urlsplit(url)
    userinfo, at, hostport = parts.netloc.rpartition("@")
    if hostport.startswith("["):  # an IPv6 literal holds colons of its own
        end = hostport.find("]") + 1
        host, port_text = hostport[:end], hostport[end + 1 :]
    else:
        host, _, port_text = hostport.partition(":")
    default_port = _DEFAULT_PORTS.get(parts.scheme)
    port = port_text or (str(default_port) if default_port else "")
    variants = {url, urlunsplit(parts._replace(netloc=f"{userinfo}{at}{host}"))}
    if port:
        variants.add(urlunsplit(parts._replace(netloc=f"{userinfo}{at}{host}:{port}")))
    return variants


def _param_strings(params: Mapping[str, str | list[str]]) -> set[str]:
    """How the params enter the signed string: each key with each of its values, sorted.

    Twilio documents every value in sorted order; its own validator drops repeated values.
    Both are accepted so that a repeated value cannot make a genuine request fail.
    """
    return {_concat(_values(params, dedupe=False)), _concat(_values(params, dedupe=True))}


def _values(
    params: Mapping[str, str | list[str]], *, dedupe: bool
) -> Iterable[tuple[str, list[str]]]:
    for key in sorted(params):
        raw = params[key]
        values = [raw] if isinstance(raw, str) else list(raw)
        yield key, sorted(set(values)) if dedupe else sorted(values)


def _concat(items: Iterable[tuple[str, list[str]]]) -> str:
    return "".join(key + value for key, values in items for value in values)
