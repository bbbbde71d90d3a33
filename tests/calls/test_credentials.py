from __future__ import annotations

import pytest
from pydantic import SecretStr

from voxline.agent_spec import (
    AgentSpec,
    AnthropicLlm,
    CartesiaTts,
    OpenAiLlm,
    ScriptedLlm,
    ScriptedStt,
    ScriptedTts,
)
from voxline.calls.credentials import CallCredentials, credential_names, server_credentials
from voxline.config import Settings
from voxline.providers.base import ProviderUnavailable
from voxline.providers.registry import Credential, CredentialScope
from voxline.security.secret_box import SecretBox

WORKSPACE = "ws_01jnc8y0w6zk3t9q2m5r7v4b8f"
BOX = SecretBox(b"credentials-test-server-secret")


def settings(**keys: str) -> Settings:
    update = {f"{name}_api_key": SecretStr(value) for name, value in keys.items()}
    return Settings(_env_file=None).model_copy(update=update)


def test_server_credentials_are_the_keys_set_in_the_environment() -> None:
    credentials = server_credentials(settings(openai="sk-env", deepgram="dg-env"))
    assert credentials == {
        "openai": Credential("sk-env", CredentialScope.SERVER),
        "deepgram": Credential("dg-env", CredentialScope.SERVER),
    }


def test_an_empty_environment_key_is_not_a_credential() -> None:
    assert server_credentials(settings(anthropic="")) == {}


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
