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
