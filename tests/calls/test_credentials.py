from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from voxline.agent_spec import (
    AgentSpec,
    AnthropicLlm,
    CartesiaTts,
    DeepgramStt,
    OpenAiLlm,
    ScriptedLlm,
    ScriptedStt,
    ScriptedTts,
)
from voxline.calls.credentials import CallCredentials, credential_names, server_credentials
from voxline.config import Settings
from voxline.providers.base import ProviderUnavailable
from voxline.providers.vendor import Credential, CredentialScope
from voxline.security.secret_box import SecretBox

WORKSPACE = "ws_01jnc8y0w6zk3t9q2m5r7v4b8f"
BOX = SecretBox(b"credentials-test-server-secret")


def settings(**keys: str) -> Settings:
    api_keys = {name: SecretStr(value) for name, value in keys.items()}
    return Settings(_env_file=None, api_keys=api_keys)  # type: ignore[call-arg]


def test_server_credentials_are_the_keys_set_in_the_environment() -> None:
    credentials = server_credentials(settings(openai="sk-env", deepgram="dg-env"))
    assert credentials == {
        "openai": Credential("sk-env", CredentialScope.SERVER),
        "deepgram": Credential("dg-env", CredentialScope.SERVER),
    }


def test_an_empty_environment_key_is_not_a_credential() -> None:
    assert server_credentials(settings(anthropic="")) == {}


def test_each_catalog_vendor_key_is_read_from_its_environment_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("VOXLINE_CARTESIA_API_KEY", "sk-cartesia")
    monkeypatch.setenv("VOXLINE_DEEPGRAM_API_KEY", "")
    monkeypatch.setenv("VOXLINE_UNKNOWNVENDOR_API_KEY", "ignored")
    credentials = server_credentials(Settings(_env_file=None))  # type: ignore[call-arg]
    assert credentials == {"cartesia": Credential("sk-cartesia", CredentialScope.SERVER)}


def test_vendor_keys_are_read_from_the_env_file_too(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("VOXLINE_ELEVENLABS_API_KEY", raising=False)
    env_file = tmp_path / ".env"
    env_file.write_text("VOXLINE_ELEVENLABS_API_KEY=xi-from-file\n")
    credentials = server_credentials(Settings(_env_file=env_file))  # type: ignore[call-arg]
    assert credentials["elevenlabs"] == Credential("xi-from-file", CredentialScope.SERVER)


def test_credential_names_cover_speech_recognition_fallbacks() -> None:
    spec = AgentSpec(
        name="stt fallback",
        stt=ScriptedStt(),
        stt_fallbacks=[DeepgramStt(api_key_ref="team-deepgram")],
        llm=ScriptedLlm(),
        tts=ScriptedTts(),
    )
    assert credential_names(spec) == {"team-deepgram"}


def test_credential_names_cover_fallbacks_and_skip_keyless_providers() -> None:
    spec = AgentSpec(
        name="names",
        stt=ScriptedStt(),
        llm=OpenAiLlm(model="m", base_url="http://127.0.0.1:11434/v1"),
        llm_fallbacks=[AnthropicLlm(model="claude")],
        tts=ScriptedTts(),
        tts_fallbacks=[CartesiaTts(voice_id="v", api_key_ref="team-cartesia")],
    )
    assert credential_names(spec) == {"anthropic", "team-cartesia"}


def test_credential_names_of_an_offline_agent_are_empty() -> None:
    spec = AgentSpec(name="offline", stt=ScriptedStt(), llm=ScriptedLlm(), tts=ScriptedTts())
    assert credential_names(spec) == set()


def test_workspace_secrets_overlay_the_server_keys_by_name() -> None:
    calls = CallCredentials(
        {
            "openai": Credential("sk-env", CredentialScope.SERVER),
            "deepgram": Credential("dg-env", CredentialScope.SERVER),
        },
        BOX,
    )
    sealed = {
        name: BOX.seal(value, workspace_id=WORKSPACE, name=name)
        for name, value in {"openai": "sk-ws", "groq": "gsk-ws"}.items()
    }
    assert calls.resolve(WORKSPACE, sealed) == {
        "openai": Credential("sk-ws", CredentialScope.WORKSPACE),
        "groq": Credential("gsk-ws", CredentialScope.WORKSPACE),
        "deepgram": Credential("dg-env", CredentialScope.SERVER),
    }


def test_a_secret_sealed_under_another_server_secret_is_unavailable_by_name() -> None:
    sealed = {"groq": SecretBox(b"old-secret").seal("gsk", workspace_id=WORKSPACE, name="groq")}
    with pytest.raises(ProviderUnavailable, match=r"workspace secret 'groq'.*server secret"):
        CallCredentials({}, BOX).resolve(WORKSPACE, sealed)


def test_a_credentials_repr_hides_its_value() -> None:
    assert "sk-hidden" not in repr(Credential("sk-hidden", CredentialScope.WORKSPACE))
