"""The credentials a call's providers authenticate with: the server's keys (environment, by
vendor name) overlaid by the workspace's secrets (by name).

Workspace secrets are read sealed when a call is loaded and opened only to build its
providers. Where each credential may be sent is the registry's rule (see `Credential`).
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy.ext.asyncio import AsyncSession

from voxline.agent_spec import AgentSpec
from voxline.config import Settings
from voxline.providers.base import ProviderUnavailable
from voxline.providers.registry import UsesCredential
from voxline.providers.vendor import Credential, CredentialScope
from voxline.security.secret_box import SecretBox, SecretBoxError
from voxline.store.secrets import sealed_secrets


def server_credentials(settings: Settings) -> dict[str, Credential]:
    """The keys set in the server's environment, by vendor name, each of SERVER scope."""
    return {
        name: Credential(key.get_secret_value(), CredentialScope.SERVER)
        for name, key in settings.api_keys.items()
        if key.get_secret_value()
    }


def credential_names(spec: AgentSpec) -> set[str]:
    """The credentials the agent's providers (every slot, fallbacks included) name."""
    return {
        name
        for slot in spec.provider_slots()
        if isinstance(slot.spec, UsesCredential) and (name := slot.spec.credential_name())
    }


class CallCredentials:
    """Process-wide: the server's keys and the box that opens workspace secrets."""

    def __init__(self, server: Mapping[str, Credential], box: SecretBox) -> None:
        self.server = dict(server)
        self.box = box

    @classmethod
    def from_settings(cls, settings: Settings) -> CallCredentials:
        return cls(server_credentials(settings), SecretBox(settings.resolved_secret()))

    async def load(self, db: AsyncSession, workspace_id: str, spec: AgentSpec) -> dict[str, bytes]:
        """The workspace's secrets that `spec` names, still sealed, by name."""
        return await sealed_secrets(db, workspace_id, credential_names(spec))

    def resolve(self, workspace_id: str, sealed: Mapping[str, bytes]) -> dict[str, Credential]:
        """The server's keys overlaid by the opened workspace secrets `sealed`.

        ProviderUnavailable naming a secret that cannot be opened (the server secret changed,
        or the stored value was altered)."""
        credentials = dict(self.server)
        for name, ciphertext in sealed.items():
            try:
                value = self.box.open(ciphertext, workspace_id=workspace_id, name=name)
            except SecretBoxError as exc:
                raise ProviderUnavailable(f"workspace secret {name!r} is unusable: {exc}") from exc
            credentials[name] = Credential(value, CredentialScope.WORKSPACE)
        return credentials
