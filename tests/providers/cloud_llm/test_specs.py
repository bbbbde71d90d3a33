import pytest
from pydantic import ValidationError

from voxline.agent_spec import AgentSpec, AnthropicLlm, OpenAiLlm


def test_openai_uses_the_openai_credential_for_openais_own_api() -> None:
    assert OpenAiLlm(model="gpt-4o-mini").credential_name() == "openai"


def test_other_openai_compatible_servers_get_no_credential_by_default() -> None:
    spec = OpenAiLlm(model="llama-3.1-8b-instant", base_url="https://api.groq.com/openai/v1")
    assert spec.credential_name() is None


def test_a_named_credential_is_used_wherever_the_server_is() -> None:
    spec = OpenAiLlm(model="m", base_url="https://api.groq.com/openai/v1", api_key_ref="groq")
    assert spec.credential_name() == "groq"


def test_anthropic_uses_the_anthropic_credential_for_its_own_api() -> None:
    assert AnthropicLlm(model="claude-haiku-4-5").credential_name() == "anthropic"


def test_a_trailing_slash_on_the_base_url_is_dropped() -> None:
    spec = OpenAiLlm(model="llama3.2", base_url="http://127.0.0.1:11434/v1/")
    assert spec.base_url == "http://127.0.0.1:11434/v1"


def test_agent_json_selects_cloud_llms_and_fallbacks_in_camel_case() -> None:
    agent = AgentSpec.model_validate(
        {
            "name": "support",
            "llm": {"provider": "openai", "model": "gpt-4o-mini", "firstTokenTimeoutMs": 1500},
            "llmFallbacks": [{"provider": "anthropic", "model": "claude-haiku-4-5"}],
        }
    )
    assert isinstance(agent.llm, OpenAiLlm)
    assert agent.llm.first_token_timeout_ms == 1500
    assert isinstance(agent.llm_fallbacks[0], AnthropicLlm)


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"model": ""}, "model"),
        ({"baseUrl": "ftp://example.com"}, "baseUrl"),
        ({"baseUrl": "https://user:secret@example.com/v1"}, "baseUrl"),
        ({"apiKeyRef": "has space"}, "apiKeyRef"),
        ({"temperature": 2.5}, "temperature"),
        ({"maxTokens": 0}, "maxTokens"),
        ({"firstTokenTimeoutMs": 10}, "firstTokenTimeoutMs"),
        ({"extraHeaders": {"Authorization": "Bearer x"}}, "extraHeaders"),
        ({"extraHeaders": {"Bad Name": "x"}}, "extraHeaders"),
        ({"extraHeaders": {"X-Ok": "line\r\nbreak"}}, "extraHeaders"),
    ],
)
def test_bad_openai_options_are_refused_naming_the_field(
    options: dict[str, object], field: str
) -> None:
    with pytest.raises(ValidationError) as raised:
        OpenAiLlm.model_validate({"model": "m", **options})
    assert raised.value.errors()[0]["loc"][0] == field


def test_anthropic_temperature_above_one_is_refused() -> None:
    with pytest.raises(ValidationError, match="temperature"):
        AnthropicLlm.model_validate({"model": "m", "temperature": 1.5})


def test_at_most_four_llm_fallbacks() -> None:
    fallback = {"provider": "openai", "model": "m"}
    with pytest.raises(ValidationError, match="llmFallbacks"):
        AgentSpec.model_validate({"name": "a", "llmFallbacks": [fallback] * 5})
