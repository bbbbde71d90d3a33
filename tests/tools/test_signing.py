import hashlib
import hmac

import pytest

from voxline.tools.signing import sign, verify_signature

SECRET = b"s3cret"
NOW = 1_700_000_000


def test_signature_header_is_hmac_of_timestamp_dot_body() -> None:
    header = sign(SECRET, '{"a":1}', timestamp=NOW)
    expected = hmac.new(SECRET, f'{NOW}.{{"a":1}}'.encode(), hashlib.sha256).hexdigest()
    assert header == f"t={NOW},v1={expected}"


def test_valid_signature_verifies() -> None:
    header = sign(SECRET, "body", timestamp=NOW)
    assert verify_signature(SECRET, header, "body", now=NOW + 10)


def test_bytes_and_text_bodies_verify_alike() -> None:
    header = sign(SECRET, "héllo", timestamp=NOW)
    assert verify_signature(SECRET, header, "héllo".encode(), now=NOW)


def test_empty_body_verifies() -> None:
    header = sign(SECRET, "", timestamp=NOW)
    assert verify_signature(SECRET, header, b"", now=NOW)


def test_wrong_secret_is_rejected() -> None:
    header = sign(SECRET, "body", timestamp=NOW)
    assert not verify_signature(b"other", header, "body", now=NOW)


def test_tampered_body_is_rejected() -> None:
    header = sign(SECRET, "body", timestamp=NOW)
    assert not verify_signature(SECRET, header, "bodY", now=NOW)


def test_stale_timestamp_is_rejected() -> None:
    header = sign(SECRET, "body", timestamp=NOW)
    assert not verify_signature(SECRET, header, "body", tolerance_s=300, now=NOW + 301)


def test_future_timestamp_beyond_tolerance_is_rejected() -> None:
    header = sign(SECRET, "body", timestamp=NOW)
    assert not verify_signature(SECRET, header, "body", tolerance_s=300, now=NOW - 301)


def test_any_matching_v1_entry_verifies() -> None:
    valid = sign(SECRET, "body", timestamp=NOW).split(",")[1]
    header = f"t={NOW},v1={'0' * 64},{valid}"
    assert verify_signature(SECRET, header, "body", now=NOW)


@pytest.mark.parametrize(
    "header",
    ["", "garbage", "t=abc,v1=00", "v1=00", f"t={NOW}", f"t={NOW},v1", f"t=-{NOW},v1=00"],
)
def test_malformed_header_is_rejected(header: str) -> None:
    assert not verify_signature(SECRET, header, "body", now=NOW)


def test_signing_with_an_empty_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="secret"):
        sign(b"", "body")
