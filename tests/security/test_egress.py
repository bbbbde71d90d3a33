"""The egress policy: which addresses workspace-supplied URLs may reach, checked at connect time.

The "internal service" is a real listener on 127.0.0.1; names are resolved by a replaced
`egress.lookup`, so no test ever sends a packet beyond loopback.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from tests.fakes.internal_service import SECRET_BODY, InternalService
from voxline.agent_spec import OpenAiLlm, WebhookTool
from voxline.calls.webhooks import SessionWebhooks
from voxline.config import Settings
from voxline.providers.base import ChatMessage, LlmRequest, ProviderError, ToolCall
from voxline.providers.llm.openai import OpenAiLanguageModel
from voxline.providers.ws import connect
from voxline.security import egress
from voxline.security.egress import EgressPolicy, EgressRefused, GuardedTransport
from voxline.tools import ToolRunner

STRICT = EgressPolicy()
REFUSED_HOSTS = [
    "127.0.0.1",
    "127.9.9.9",
    "::1",
    "0.0.0.0",
    "::",
    "10.0.0.1",
    "172.16.5.4",
    "192.168.1.1",
    "100.64.0.1",
    "169.254.169.254",
    "169.254.1.1",
    "fd00:ec2::254",
    "fc00::1",
    "fe80::1",
    "224.0.0.1",
    "ff02::1",
    "::ffff:127.0.0.1",
    "::ffff:10.0.0.1",
    "2002:7f00:1::",
    "64:ff9b::a00:1",
    "2130706433",
    "0x7f000001",
    "017700000001",
    "127.1",
    "0177.0.0.1",
    "metadata.google.internal",
    "METADATA.google.internal.",
]
PUBLIC_HOSTS = ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111"]
HELLO = LlmRequest(messages=(ChatMessage(role="user", content="Hi"),))


@pytest.fixture
def dns(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[str]]:
    """Replaces the resolver: a name maps to the addresses the test gives it, any other name
    does not resolve."""
    records: dict[str, list[str]] = {}

    async def lookup(host: str, port: int) -> list[str]:
        if host not in records:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return records[host]

    monkeypatch.setattr(egress, "lookup", lookup)
    return records


@pytest.fixture
def strict_policy() -> Iterator[None]:
    previous = egress.install(STRICT)
    yield
    egress.install(previous)


@pytest.mark.parametrize("host", REFUSED_HOSTS)
async def test_internal_addresses_in_any_spelling_are_refused(host: str) -> None:
    assert STRICT.host_refusal(host) is not None
    with pytest.raises(EgressRefused):
        await STRICT.resolve(host, 80)


@pytest.mark.parametrize("host", PUBLIC_HOSTS)
async def test_public_addresses_are_allowed(host: str) -> None:
    assert STRICT.host_refusal(host) is None
    assert await STRICT.resolve(host, 443) == [str(ipaddress.ip_address(host))]


async def test_a_name_resolving_to_a_private_address_is_refused(dns: dict[str, list[str]]) -> None:
    dns["intranet.example"] = ["10.1.2.3"]
    with pytest.raises(EgressRefused, match=r"intranet\.example"):
        await STRICT.resolve("intranet.example", 443)


async def test_a_name_mixing_public_and_private_addresses_is_refused(
    dns: dict[str, list[str]],
) -> None:
    dns["mixed.example"] = ["93.184.216.34", "127.0.0.1"]
    with pytest.raises(EgressRefused):
        await STRICT.resolve("mixed.example", 443)


async def test_a_name_resolving_to_public_addresses_gives_them(dns: dict[str, list[str]]) -> None:
    dns["api.example"] = ["93.184.216.34", "2606:4700:4700::1111"]
    assert await STRICT.resolve("api.example", 443) == dns["api.example"]


async def test_allow_list_opens_cidrs_and_host_names(dns: dict[str, list[str]]) -> None:
    dns["llm.lan"] = ["192.168.1.20"]
    settings = Settings(_env_file=None, egress_allow=["10.0.0.0/8", "LLM.lan"])
    policy = EgressPolicy.from_settings(settings)
    assert await policy.resolve("10.20.30.40", 80) == ["10.20.30.40"]
    assert await policy.resolve("llm.lan", 80) == ["192.168.1.20"]
    with pytest.raises(EgressRefused):
        await policy.resolve("192.168.1.20", 80)


async def test_development_mode_opens_loopback_only() -> None:
    policy = EgressPolicy.from_settings(Settings(_env_file=None, dev_mode=True))
    assert await policy.resolve("127.0.0.1", 80) == ["127.0.0.1"]
    assert await policy.resolve("::1", 80) == ["::1"]
    for host in ("10.0.0.1", "169.254.169.254", "metadata.google.internal"):
        with pytest.raises(EgressRefused):
            await policy.resolve(host, 80)


async def test_save_time_check_passes_a_name_that_does_not_resolve_yet(
    dns: dict[str, list[str]],
) -> None:
    assert await STRICT.url_refusal("https://not-yet.example/hook") is None
    dns["internal.example"] = ["172.20.0.5"]
    assert await STRICT.url_refusal("https://internal.example/hook") is not None
    assert await STRICT.url_refusal("http://2130706433:6379/") is not None


# --- enforced when the request is made -----------------------------------------------------


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


def lookup_tool(http: httpx.AsyncClient, url: str) -> ToolRunner:
    tool = WebhookTool(name="lookup", description="Look something up.", url=url)
    return ToolRunner([tool], http=http, signing_secret=b"secret", session_id="sess_test")


@pytest.mark.usefixtures("strict_policy")
async def test_webhook_tool_to_an_internal_service_is_a_tool_error(http: httpx.AsyncClient) -> None:
    async with InternalService() as service:
        outcome = await lookup_tool(http, service.url("/admin")).run(ToolCall("c1", "lookup", {}))
    assert not outcome.ok
    assert "egress policy" in outcome.content
    assert SECRET_BODY["internal"] not in outcome.content
    assert service.hits == []


@pytest.mark.usefixtures("strict_policy")
async def test_webhook_tool_by_a_name_resolving_internally_is_refused(
    dns: dict[str, list[str]], http: httpx.AsyncClient
) -> None:
    async with InternalService() as service:
        dns["tools.example"] = ["127.0.0.1"]
        outcome = await lookup_tool(http, service.url("/", host="tools.example")).run(
            ToolCall("c1", "lookup", {})
        )
    assert not outcome.ok
    assert service.hits == []


async def test_webhook_tool_connects_to_the_address_it_checked(
    dns: dict[str, list[str]], http: httpx.AsyncClient
) -> None:
    # "tools.example" exists only in the replaced resolver: reaching the service proves the
    # connection went to the checked address, with the name kept in Host.
    dns["tools.example"] = ["127.0.0.1"]
    previous = egress.install(EgressPolicy(allow_networks=(ipaddress.ip_network("127.0.0.1/32"),)))
    try:
        async with InternalService() as service:
            url = service.url("/hook", host="tools.example")
            outcome = await lookup_tool(http, url).run(ToolCall("c1", "lookup", {}))
    finally:
        egress.install(previous)
    assert outcome.ok, outcome.content
    assert [hit.host for hit in service.hits] == [f"tools.example:{service.port}"]
    # Pooled by address, the connection must not carry another host's request later.
    assert service.hits[0].connection == "close"


async def test_webhook_tool_does_not_follow_a_redirect_to_an_internal_service(
    dns: dict[str, list[str]], http: httpx.AsyncClient
) -> None:
    dns["public.example"] = ["127.0.0.2"]
    previous = egress.install(EgressPolicy(allow_networks=(ipaddress.ip_network("127.0.0.2/32"),)))
    try:
        async with (
            InternalService() as internal,
            InternalService(redirect_to=internal.url("/admin"), bind="127.0.0.2") as public,
        ):
            url = public.url("/hook", host="public.example")
            outcome = await lookup_tool(http, url).run(ToolCall("c1", "lookup", {}))
    finally:
        egress.install(previous)
    assert not outcome.ok
    assert len(public.hits) == 1
    assert internal.hits == []


async def test_guarded_transport_checks_every_redirect_hop(dns: dict[str, list[str]]) -> None:
    dns["public.example"] = ["127.0.0.2"]
    policy = EgressPolicy(allow_networks=(ipaddress.ip_network("127.0.0.2/32"),))
    async with (
        InternalService() as internal,
        InternalService(redirect_to=internal.url("/admin"), bind="127.0.0.2") as public,
    ):
        transport = GuardedTransport(policy, limits=httpx.Limits())
        async with httpx.AsyncClient(transport=transport, follow_redirects=True) as client:
            with pytest.raises(EgressRefused, match=r"127\.0\.0\.1"):
                await client.get(public.url("/", host="public.example"))
    assert len(public.hits) == 1
    assert internal.hits == []


@pytest.mark.usefixtures("strict_policy")
async def test_openai_base_url_at_an_internal_service_is_a_provider_error() -> None:
    async with InternalService() as service:
        spec = OpenAiLlm(model="m", base_url=service.url("/v1"), api_key_ref=None)
        model = OpenAiLanguageModel(spec, None)
        try:
            session = await model.open()
            with pytest.raises(ProviderError, match="egress policy"):
                async for _ in session.stream(HELLO):
                    pass
        finally:
            await model.aclose()
    assert service.hits == []


@pytest.mark.usefixtures("strict_policy")
async def test_websocket_vendor_at_an_internal_address_is_a_provider_error() -> None:
    async with InternalService() as service:
        with pytest.raises(ProviderError, match="egress policy"):
            await connect(
                service.url("/v1/listen", scheme="ws"),
                {"Authorization": "Token key"},
                vendor="Deepgram",
                credential="deepgram",
                timeout_s=2.0,
            )
    assert service.hits == []


async def test_vendor_default_hosts_are_not_subject_to_the_policy(
    dns: dict[str, list[str]],
) -> None:
    dns["api.openai.com"] = ["10.9.9.9"]  # e.g. a split-horizon resolver of the operator's
    assert await STRICT.resolve("api.openai.com", 443) == ["10.9.9.9"]


def test_settings_take_the_allow_list_as_json(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("VOXLINE_EGRESS_ALLOW", '["10.0.0.0/8", "llm.lan"]')
    policy = EgressPolicy.from_settings(Settings(_env_file=None, data_dir=tmp_path))
    assert policy.allow_networks == (ipaddress.ip_network("10.0.0.0/8"),)
    assert policy.allow_hosts == frozenset({"llm.lan"})


@pytest.mark.usefixtures("strict_policy")
async def test_session_webhook_to_an_internal_service_is_not_sent(
    http: httpx.AsyncClient,
) -> None:
    async with InternalService() as service:
        webhooks = SessionWebhooks(http, first_backoff_s=0.01)
        webhooks.session_ended(service.url("/ended"), b"secret", "sess_x", "completed", "hangup")
        await webhooks.aclose()
    assert service.hits == []


async def test_session_webhook_reaches_an_allowed_name_at_its_checked_address(
    http: httpx.AsyncClient, dns: dict[str, list[str]]
) -> None:
    dns["hooks.example"] = ["127.0.0.1"]
    policy = EgressPolicy(allow_networks=(ipaddress.ip_network("127.0.0.1/32"),))
    async with InternalService() as service:
        webhooks = SessionWebhooks(http, first_backoff_s=0.01, policy=policy)
        url = service.url("/ended", host="hooks.example")
        webhooks.session_ended(url, b"secret", "sess_x", "completed", "hangup")
        await webhooks.aclose()
    assert [hit.request_line for hit in service.hits] == ["POST /ended HTTP/1.1"]


async def test_an_unusable_host_name_does_not_resolve() -> None:
    assert egress.literal_address("a\x00b") is None
    with pytest.raises(socket.gaierror):
        await STRICT.resolve("a\x00b", 80)
    assert await STRICT.url_refusal("http://a\x00b/v1") is None
