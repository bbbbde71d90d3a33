"""What voxline knows of a vendor, in one place: the `Vendor` descriptor and the `Catalog`.

A descriptor names the spec class an agent configures it with, the factory that builds a
provider from that spec, the role it plays (stt, llm, tts) and, for a vendor with an API key,
its credential name (the server reads `VOXLINE_<NAME>_API_KEY`) and the one host a server key
may be sent to. Everything else (the registry, the server's keys, the credential rule) reads
the catalog, so adding a vendor is its module, its descriptor and its tests (plus its spec
class in the role's union in `agent_spec`, which is the API's schema).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel

from voxline.agent_spec import Role
from voxline.providers.base import ProviderUnavailable
from voxline.providers.executor import InferenceExecutor


class CredentialScope(StrEnum):
    SERVER = "server"
    """The operator's key (environment): sent only to its vendor's own API."""
    WORKSPACE = "workspace"
    """A workspace's own secret: sent to whatever endpoint the workspace's agent names."""


@dataclass(frozen=True, slots=True)
class Credential:
    """A secret value and where it came from, which decides where it may be sent."""

    value: str = field(repr=False)
    scope: CredentialScope


@dataclass(frozen=True, slots=True)
class BuildContext:
    """What a factory gets besides its spec: the shared inference pool, the agent's language
    (part of the cache key, since a recognizer is built for one language), where assembled
    model files are cached, and the credentials by name with the check on where they go."""

    executor: InferenceExecutor
    language: str
    model_dir: Path | None = None
    credentials: Mapping[str, Credential] = field(default_factory=dict)
    """Secrets by name: the server's keys ('openai', ...) overlaid by the workspace's."""
    catalog: Catalog | None = None
    """Where a server key's own host is looked up (the built-in catalog when None)."""

    def credential(self, name: str | None, endpoint: str) -> str | None:
        """The secret called `name` (None for None) for a provider sending it to `endpoint`.

        ProviderUnavailable if there is none, or if it is a server key and `endpoint` is not
        its vendor's own API (a custom endpoint needs a workspace secret)."""
        if name is None:
            return None
        catalog = self.catalog if self.catalog is not None else _builtin()
        credential = self.credentials.get(name)
        if credential is None or not credential.value:
            env_var = catalog.env_vars().get(name)
            where = f"set {env_var} or add" if env_var else "add"
            raise ProviderUnavailable(
                f"no credential named {name!r} is configured: {where} a workspace secret {name!r}"
            )
        if credential.scope is CredentialScope.SERVER:
            catalog.check_server_endpoint(name, endpoint)
        return credential.value


Factory = Callable[[Any, BuildContext], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class Vendor:
    """One vendor (or engine) of one role. `provider` is the spec's `provider` value."""

    role: Role
    spec: type[BaseModel]
    factory: Factory
    """Builds the provider object (shared by every call using an equal spec)."""
    credential: str | None = None
    """The vendor's own credential name, if it authenticates; its server key is read from
    `VOXLINE_<NAME>_API_KEY`."""
    host: str | None = None
    """The only host a server key for `credential` is ever sent to."""

    @property
    def provider(self) -> str:
        default: str = self.spec.model_fields["provider"].default
        return default

    @property
    def env_var(self) -> str | None:
        return None if self.credential is None else f"VOXLINE_{self.credential.upper()}_API_KEY"


_SECURE_SCHEMES = frozenset({"https", "wss"})


class Catalog:
    """The vendors a process knows, looked up by spec class."""

    def __init__(self, vendors: Iterable[Vendor] = ()) -> None:
        self._by_spec: dict[type[BaseModel], Vendor] = {}
        for vendor in vendors:
            self.register(vendor)

    def register(self, vendor: Vendor) -> None:
        """Add (or replace) the vendor of `vendor.spec`."""
        self._by_spec[vendor.spec] = vendor

    def with_vendor(self, vendor: Vendor) -> Catalog:
        """A copy of this catalog with `vendor` added or replaced."""
        copy = Catalog(self._by_spec.values())
        copy.register(vendor)
        return copy

    def without(self, spec: type[BaseModel]) -> Catalog:
        """A copy of this catalog that does not know `spec`."""
        return Catalog(vendor for vendor in self._by_spec.values() if vendor.spec is not spec)

    def __iter__(self) -> Iterator[Vendor]:
        return iter(self._by_spec.values())

    def vendor_of(self, part: BaseModel) -> Vendor:
        """The vendor configured by `part`; ProviderUnavailable if none is registered."""
        vendor = self._by_spec.get(type(part))
        if vendor is None:
            raise ProviderUnavailable(f"no provider is registered for {type(part).__name__}")
        return vendor

    def env_vars(self) -> dict[str, str]:
        """The environment variable of each credential the server can hold, by name."""
        return {v.credential: v.env_var for v in self if v.credential and v.env_var}

    def check_server_endpoint(self, name: str, endpoint: str) -> None:
        """ProviderUnavailable unless `endpoint` is the own API (https/wss) of the vendor
        whose server key is called `name`."""
        host = next((v.host for v in self if v.credential == name and v.host), None)
        parts = urlsplit(endpoint)
        if host is not None and parts.scheme in _SECURE_SCHEMES and parts.hostname == host:
            return
        raise ProviderUnavailable(
            f"credential {name!r} is the server's, and server credentials are only sent to "
            f"{host or 'their vendor'}; store a workspace secret {name!r} for custom endpoints "
            f"(this agent sends it to {parts.hostname or endpoint!r})"
        )


def _builtin() -> Catalog:
    from voxline.providers.catalog import CATALOG

    return CATALOG
