"""Egress policy: where the server may connect on behalf of a workspace's agent config.

A workspace names URLs (webhook tools, `webhookUrl`, provider `baseUrl`s); unchecked, they let
any API-key holder read the deployment's internal services. The policy is enforced when a
connection is made: the host is resolved, every resolved address is checked, and the socket
goes to an address that was checked (no DNS-rebinding window); TLS and `Host` still use the
name. Refused by default: loopback, private (RFC 1918, CGNAT, ULA), link-local, multicast,
unspecified, reserved and cloud-metadata addresses, IPv6 forms embedding one (mapped, 6to4,
NAT64), and every spelling libc accepts for them (`2130706433`, `0x7f000001`, `127.1`).
An operator allow-list of CIDRs and host names opens what a deployment needs; development
mode opens loopback. The server's own endpoints (Twilio, vendor defaults) are not subject.

The process's policy is installed once at start-up (`install`) and read by the code that
connects (`current`), which the provider constructors cannot be handed through.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import logging
import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx

from voxline.agent_spec import AnthropicLlm, CartesiaTts, DeepgramStt, ElevenLabsTts, OpenAiLlm
from voxline.config import Settings

logger = logging.getLogger(__name__)

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Names that reach a cloud's instance metadata service without looking like an address.
_METADATA_NAMES = frozenset(
    {
        "metadata",
        "metadata.google.internal",
        "metadata.goog",
        "metadata.azure.com",
        "instance-data",
        "instance-data.ec2.internal",
    }
)
_METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(value) for value in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200")
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))
_SAVE_TIME_LOOKUP_S = 2.0
_DEFAULT_PORTS = {"http": 80, "ws": 80, "https": 443, "wss": 443}


class EgressRefused(ConnectionError):
    """A connection the egress policy forbids. An OSError, so code that treats an unreachable
    host as a failure treats this one too; its message names the host, never a URL's query."""

    def __init__(self, host: str, reason: str) -> None:
        super().__init__(f"connections to {host} are not allowed by the egress policy ({reason})")
        self.host = host
        self.reason = reason


async def lookup(host: str, port: int) -> list[str]:
    """The addresses `host` resolves to (the system resolver); an unusable name is a
    `socket.gaierror` like an unknown one. Tests replace this."""
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(
            host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
        )
    except ValueError as exc:  # a NUL byte, a label IDNA cannot encode
        raise socket.gaierror(socket.EAI_NONAME, f"not a valid host name: {exc}") from None
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


@dataclass(frozen=True, slots=True)
class EgressPolicy:
    """What workspace-supplied URLs may reach besides public addresses."""

    allow_networks: tuple[IpNetwork, ...] = ()
    allow_hosts: frozenset[str] = field(default_factory=frozenset)
    """Host names trusted whatever they resolve to (lower case, no trailing dot)."""
    allow_loopback: bool = False

    @classmethod
    def from_settings(cls, settings: Settings) -> EgressPolicy:
        networks: list[IpNetwork] = []
        hosts: set[str] = set()
        for entry in settings.egress_allow:
            try:
                networks.append(ipaddress.ip_network(entry.strip(), strict=False))
            except ValueError:
                hosts.add(_normal_host(entry))
        return cls(tuple(networks), frozenset(hosts), allow_loopback=settings.dev_mode)

    def address_refusal(self, address: IpAddress) -> str | None:
        """Why a connection to `address` is refused, or None if it is allowed."""
        if any(address in network for network in self.allow_networks):
            return None
        if self.allow_loopback and any(address in network for network in _LOOPBACK):
            return None
        return _refusal(address)

    def host_refusal(self, host: str) -> str | None:
        """Why `host` is refused before any lookup (a literal address, a metadata name)."""
        name = _normal_host(host)
        if self._trusted(name):
            return None
        if name in _METADATA_NAMES:
            return "a cloud metadata service"
        address = literal_address(name)
        return None if address is None else self.address_refusal(address)

    async def resolve(self, host: str, port: int) -> list[str]:
        """The addresses to connect to for `host`, every one checked; EgressRefused if any
        address `host` resolves to is refused (a name must not mix public and internal)."""
        name = _normal_host(host)
        if self._trusted(name):
            return await lookup(name, port)
        refusal = self.host_refusal(name)
        if refusal is not None:
            raise EgressRefused(name, refusal)
        address = literal_address(name)
        if address is not None:
            return [str(address)]
        addresses = await lookup(name, port)
        for value in addresses:
            refusal = self.address_refusal(ipaddress.ip_address(value.split("%", 1)[0]))
            if refusal is not None:
                raise EgressRefused(name, f"it resolves to {refusal}")
        return addresses

    def _trusted(self, name: str) -> bool:
        return name in self.allow_hosts or name in _vendor_hosts()

    async def url_refusal(self, url: str) -> str | None:
        """Why `url` is refused at save time, or None. A literal address or metadata name is
        judged as is; a name is looked up briefly, and one that does not resolve now passes
        (it is checked again on every connection)."""
        try:
            parts = urlsplit(url)
            host, port = parts.hostname, _port(parts.scheme, parts.port)
        except ValueError:
            return "it is not a valid URL"
        if not host:
            return "it has no host"
        refusal = self.host_refusal(host)
        if refusal is not None or literal_address(host) is not None:
            return refusal
        try:
            async with asyncio.timeout(_SAVE_TIME_LOOKUP_S):
                await self.resolve(host, port)
        except EgressRefused as exc:
            return exc.reason
        except (OSError, TimeoutError, UnicodeError):
            return None
        return None

    async def pin(self, url: str) -> PinnedUrl:
        """`url` with its host replaced by a checked address, and what keeps the request
        addressed to the name (Host header, TLS server name); EgressRefused if refused."""
        target = httpx.URL(url)
        addresses = await self.resolve(target.host, target.port or _port(target.scheme, None))
        return PinnedUrl(
            url=target.copy_with(host=addresses[0]),
            # Pooled by address, a kept-alive connection could carry another host's request
            # over TLS verified for this one: pinned requests close theirs.
            headers={"Host": target.netloc.decode("ascii"), "Connection": "close"},
            extensions={"sni_hostname": target.host} if target.scheme == "https" else {},
        )


@dataclass(frozen=True, slots=True)
class PinnedUrl:
    """A request target bound to a checked address (see `EgressPolicy.pin`)."""

    url: httpx.URL
    headers: dict[str, str]
    extensions: dict[str, Any]


def literal_address(host: str) -> IpAddress | None:
    """`host` as an IP address if it is one in any spelling the system resolver accepts
    (dotted, integer, hex, octal, shortened IPv4; IPv6), else None."""
    name = host.strip("[]")
    try:
        return ipaddress.ip_address(name.split("%", 1)[0])
    except ValueError:
        pass
    try:
        return ipaddress.IPv4Address(socket.inet_aton(name))
    except (OSError, ValueError):  # ValueError: a NUL byte
        return None


@functools.cache
def _vendor_hosts() -> frozenset[str]:
    """The hosts of the vendors' own APIs (the specs' default base URLs): operator-chosen
    endpoints, like Twilio's, that no workspace picks."""
    specs = (OpenAiLlm, AnthropicLlm, DeepgramStt, CartesiaTts, ElevenLabsTts)
    return frozenset(
        urlsplit(str(spec.model_fields["base_url"].default)).hostname or "" for spec in specs
    )


def _refusal(address: IpAddress) -> str | None:
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address in _NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None:
            return _refusal(embedded)
    if address in _METADATA_ADDRESSES:
        return "a cloud metadata address"
    if address.is_loopback:
        return "a loopback address"
    if address.is_unspecified:
        return "an unspecified address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_multicast:
        return "a multicast address"
    if address.is_private or not address.is_global:
        return "a private or reserved address"
    return None


def _normal_host(host: str) -> str:
    return host.strip().strip("[]").lower().rstrip(".")


def _port(scheme: str, port: int | None) -> int:
    return port if port is not None else _DEFAULT_PORTS.get(scheme, 443)


_installed = EgressPolicy()


def install(policy: EgressPolicy) -> EgressPolicy:
    """Make `policy` the process's policy (at start-up, from the settings); returns the one
    it replaces."""
    global _installed
    previous, _installed = _installed, policy
    return previous


def current() -> EgressPolicy:
    """The process's policy; refuses every internal address until one is installed."""
    return _installed


class _GuardedBackend(httpcore.AsyncNetworkBackend):
    """Opens each TCP connection to an address the policy checked, keeping the name for TLS."""

    def __init__(self, policy: EgressPolicy) -> None:
        self._policy = policy
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            async with asyncio.timeout(timeout):
                addresses = await self._policy.resolve(host, port)
        except EgressRefused:
            raise
        except TimeoutError as exc:
            raise httpcore.ConnectTimeout(f"resolving {host} timed out") from exc
        except OSError as exc:
            raise httpcore.ConnectError(f"could not resolve {host}: {exc}") from exc
        return await _connect_first(
            self._inner, addresses, port, timeout, local_address, socket_options
        )

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


async def _connect_first(
    backend: httpcore.AsyncNetworkBackend,
    addresses: Sequence[str],
    port: int,
    timeout_s: float | None,
    local_address: str | None,
    socket_options: Iterable[Any] | None,
) -> httpcore.AsyncNetworkStream:
    failure: httpcore.ConnectError | httpcore.ConnectTimeout | None = None
    for address in addresses:
        try:
            return await backend.connect_tcp(
                address, port, timeout_s, local_address, socket_options=socket_options
            )
        except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
            failure = exc
    assert failure is not None  # resolve() never returns an empty list
    raise failure


class GuardedTransport(httpx.AsyncHTTPTransport):
    """An httpx transport whose every connection obeys `policy`. No proxy from the
    environment: the checked address must be the one connected to."""

    def __init__(self, policy: EgressPolicy, *, limits: httpx.Limits) -> None:
        super().__init__(limits=limits, trust_env=False)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=_GuardedBackend(policy),
        )


async def websocket_target(url: str, policy: EgressPolicy | None = None) -> dict[str, Any]:
    """Keyword arguments for `websockets.connect(url, ...)` that send the socket to a checked
    address of `url`'s host (TLS and `Host` keep the name); EgressRefused if refused. With the
    address given, websockets refuses to follow a redirect to another host."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = _port(parts.scheme, parts.port)
    addresses = await (policy or current()).resolve(host, port)
    return {"host": addresses[0], "port": port, "proxy": None}
