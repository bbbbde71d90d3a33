import hashlib

import pytest
from twilio.request_validator import RequestValidator

from voxline.telephony.twilio.signature import (
    public_request_url,
    validate_twilio_json_request,
    validate_twilio_request,
)

TOKEN = "12345"
VECTOR_URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
VECTOR_PARAMS = {
    "CallSid": "CA1234567890ABCDE",
    "Caller": "+14158675309",
    "Digits": "1234",
    "From": "+14158675309",
    "To": "+18005551212",
}
VECTOR_SIGNATURE = "RSOYDt4T1cUTdK1PDd93/VVr8B8="
WEBHOOK_URL = "https://voice.example.com/v1/sessions/twilio"
FORM = {
    "CallSid": "CA" + "0" * 32,
    "AccountSid": "AC" + "1" * 32,
    "From": "+14155550123",
    "To": "+18005550100",
    "CallStatus": "ringing",
    "Direction": "inbound",
}


def _official_sign(url: str, params: dict[str, str]) -> str:
    signature: str = RequestValidator(TOKEN).compute_signature(url, params)
    return signature


def test_known_vector_is_valid() -> None:
    assert validate_twilio_request(TOKEN, VECTOR_URL, VECTOR_PARAMS, VECTOR_SIGNATURE)


def test_request_signed_by_the_official_validator_is_valid() -> None:
    signature = _official_sign(WEBHOOK_URL, FORM)
    assert validate_twilio_request(TOKEN, WEBHOOK_URL, FORM, signature)


@pytest.mark.parametrize(
    ("signed_url", "received_url"),
    [
        ("https://voice.example.com:443/v1/sessions/twilio", WEBHOOK_URL),
        (WEBHOOK_URL, "https://voice.example.com:443/v1/sessions/twilio"),
        ("http://voice.example.com:80/hook?x=1", "http://voice.example.com/hook?x=1"),
        ("http://voice.example.com/hook?x=1", "http://voice.example.com:80/hook?x=1"),
        ("http://127.0.0.1/hook", "http://127.0.0.1:8000/hook"),
    ],
)
def test_url_is_valid_with_and_without_its_port(signed_url: str, received_url: str) -> None:
    signature = _official_sign(signed_url, FORM)
    assert validate_twilio_request(TOKEN, received_url, FORM, signature)


def test_repeated_keys_contribute_every_value_sorted() -> None:
    params: dict[str, str | list[str]] = {
        "StatusCallbackEvent": ["ringing", "answered"],
        "To": "+18005550100",
    }
    signed = WEBHOOK_URL + "StatusCallbackEventansweredStatusCallbackEventringingTo+18005550100"
    signature = _official_sign(signed, {})
    assert validate_twilio_request(TOKEN, WEBHOOK_URL, params, signature)


def test_forged_signature_is_rejected() -> None:
    forged = RequestValidator("not-the-token").compute_signature(WEBHOOK_URL, FORM)
    assert not validate_twilio_request(TOKEN, WEBHOOK_URL, FORM, forged)


def test_tampered_parameter_is_rejected() -> None:
    signature = _official_sign(WEBHOOK_URL, FORM)
    tampered = {**FORM, "From": "+19995550000"}
    assert not validate_twilio_request(TOKEN, WEBHOOK_URL, tampered, signature)


def test_signature_for_another_url_is_rejected() -> None:
    signature = _official_sign("https://evil.example.com/v1/sessions/twilio", FORM)
    assert not validate_twilio_request(TOKEN, WEBHOOK_URL, FORM, signature)


@pytest.mark.parametrize("signature", [None, ""])
def test_missing_signature_is_rejected(signature: str | None) -> None:
    assert not validate_twilio_request(TOKEN, WEBHOOK_URL, FORM, signature)


def test_empty_auth_token_is_a_configuration_error() -> None:
    with pytest.raises(ValueError, match="auth token"):
        validate_twilio_request("", WEBHOOK_URL, FORM, "sig")


def _json_request(body: bytes) -> tuple[str, str]:
    url = f"{WEBHOOK_URL}/status?bodySHA256={hashlib.sha256(body).hexdigest()}"
    return url, _official_sign(url, {})


def test_json_body_signed_with_body_sha256_is_valid() -> None:
    body = b'{"CallSid":"CA00","CallStatus":"completed"}'
    url, signature = _json_request(body)
    assert RequestValidator(TOKEN).validate(url, body.decode(), signature)
    assert validate_twilio_json_request(TOKEN, url, body, signature)


def test_json_body_that_does_not_match_its_hash_is_rejected() -> None:
    url, signature = _json_request(b'{"CallStatus":"completed"}')
    assert not validate_twilio_json_request(TOKEN, url, b'{"CallStatus":"failed"}', signature)


def test_json_body_without_body_sha256_is_rejected() -> None:
    body = b"{}"
    signature = _official_sign(WEBHOOK_URL, {})
    assert not validate_twilio_json_request(TOKEN, WEBHOOK_URL, body, signature)


def test_public_url_comes_from_the_configured_base_not_the_socket() -> None:
    url = public_request_url("https://voice.example.com/", "/v1/sessions/twilio", "a=1&b=2")
    assert url == "https://voice.example.com/v1/sessions/twilio?a=1&b=2"


def test_public_url_keeps_a_path_prefix_of_the_base() -> None:
    url = public_request_url("https://example.com/voxline", "/v1/sessions/twilio")
    assert url == "https://example.com/voxline/v1/sessions/twilio"
