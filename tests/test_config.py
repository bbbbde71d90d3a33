import pytest
from pydantic import ValidationError

from voxline.config import Settings


def test_the_public_url_defaults_to_the_listening_address() -> None:
    settings = Settings(_env_file=None, host="0.0.0.0", port=9000)  # type: ignore[call-arg]
    assert settings.resolved_public_base_url() == "http://127.0.0.1:9000"
    assert settings.stream_url() == "ws://127.0.0.1:9000/v1/sessions/twilio/stream"


def test_a_configured_public_url_wins_and_gives_a_wss_stream() -> None:
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, port=9000, public_base_url="https://voice.example.com/"
    )
    assert settings.resolved_public_base_url() == "https://voice.example.com"
    assert settings.stream_url() == "wss://voice.example.com/v1/sessions/twilio/stream"


def test_egress_allow_takes_cidrs_and_host_names_only() -> None:
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, egress_allow=["10.0.0.0/8", "fd00::/8", "llm.lan", "gpu"]
    )
    assert settings.egress_allow == ["10.0.0.0/8", "fd00::/8", "llm.lan", "gpu"]
    with pytest.raises(ValidationError, match="neither a CIDR nor a host name"):
        Settings(_env_file=None, egress_allow=["http://llm.lan/v1"])  # type: ignore[call-arg]
