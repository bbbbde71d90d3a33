"""Server settings, read once from `VOXLINE_*` environment variables (and `.env`)."""

from __future__ import annotations

import ipaddress
import re
import secrets
from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

_SECRET_FILE = "server-secret"
_HOST_NAME = re.compile(
    r"^(?=.{1,253}$)[A-Za-z0-9_]([A-Za-z0-9_-]{0,62})(\.[A-Za-z0-9_-]{1,63})*\.?$"
)


class Settings(BaseSettings):
    """Everything the server reads from its environment. Nothing else reads `os.environ`."""

    model_config = SettingsConfigDict(env_prefix="VOXLINE_", env_file=".env", extra="ignore")

    data_dir: Path = Field(
        default=Path("./data"), description="Where SQLite, the server secret and caches live."
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy async URL; default SQLite in data_dir. "
        "PostgreSQL: postgresql+asyncpg://user@host/db",
    )
    public_base_url: str | None = Field(
        default=None,
        description="The URL the world reaches this server at (used for wss:// stream URLs "
        "and to validate Twilio signatures behind a proxy); http://HOST:PORT when unset.",
    )
    host: str = "127.0.0.1"
    port: int = 8000
    secret_key: SecretStr | None = Field(
        default=None,
        description="Signs relay tokens; generated on first start and kept in data_dir when unset.",
    )

    twilio_account_sid: str | None = None
    twilio_auth_token: SecretStr | None = None
    twilio_api_base_url: str = Field(
        default="https://api.twilio.com",
        description="Twilio REST base URL; point it at a local fake in tests.",
    )
    twilio_validate_signatures: bool = Field(
        default=True,
        description="Reject voice webhooks without a valid X-Twilio-Signature "
        "(requires twilio_auth_token).",
    )

    relay_token_ttl_seconds: int = Field(default=300, ge=10, le=3600)
    seed_demo_agent: bool = Field(
        default=True, description="Create a demo workspace, key and agent on first start."
    )
    dev_mode: bool = Field(
        default=False,
        description="Enables local-only conveniences (browser session tokens; agent configs "
        "may reach loopback addresses).",
    )
    allowed_origins: list[str] = Field(
        default_factory=list,
        description="Web origins (scheme://host[:port]) besides the server's own whose pages "
        "may open browser sessions; '*' allows any. A JSON list in the environment.",
    )
    egress_allow: list[str] = Field(
        default_factory=list,
        description="CIDRs and host names that agent configs may reach although they are "
        "internal (loopback, private, link-local...), e.g. a self-hosted LLM on the LAN. "
        "A JSON list in the environment.",
    )
    max_request_body_bytes: int = Field(
        default=1024 * 1024,
        ge=1024,
        description="Largest HTTP request body accepted; larger ones are refused with 413.",
    )
    session_token_ttl_seconds: int = Field(
        default=60, ge=5, le=3600, description="How long a browser session token stays valid."
    )
    preload_models: bool = Field(
        default=True, description="Load and warm the embedded models at start-up."
    )
    inference_threads: int = Field(
        default=2, ge=1, le=64, description="Threads in the shared model inference pool."
    )
    lag_monitor: bool = Field(
        default=False,
        description="Sample event-loop lag and serve it at GET /v1/debug/runtime (benchmarks).",
    )
    log_level: str = "info"

    openai_api_key: SecretStr | None = None
    anthropic_api_key: SecretStr | None = None
    deepgram_api_key: SecretStr | None = None
    cartesia_api_key: SecretStr | None = None
    elevenlabs_api_key: SecretStr | None = None

    @field_validator("egress_allow")
    @classmethod
    def _cidrs_or_host_names(cls, entries: list[str]) -> list[str]:
        for entry in entries:
            try:
                ipaddress.ip_network(entry.strip(), strict=False)
            except ValueError:
                if not _HOST_NAME.match(entry.strip()):
                    raise ValueError(
                        f"egress_allow: {entry[:80]!r} is neither a CIDR nor a host name"
                    ) from None
        return entries

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'voxline.db').resolve()}"

    def resolved_secret(self) -> bytes:
        """The server secret: configured, or generated once and kept in the data directory."""
        if self.secret_key is not None:
            return self.secret_key.get_secret_value().encode()
        path = self.data_dir / _SECRET_FILE
        if path.exists():
            return path.read_text().strip().encode()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        value = secrets.token_urlsafe(48)
        path.touch(mode=0o600)
        path.write_text(value)
        return value.encode()

    def resolved_public_base_url(self) -> str:
        """The configured public URL, or the address this server listens on."""
        if self.public_base_url:
            return self.public_base_url.rstrip("/")
        host = "127.0.0.1" if self.host in ("", "0.0.0.0", "::") else self.host
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.port}"

    def stream_url(self) -> str:
        """The wss:// URL of the Twilio media-stream WebSocket, from the public base URL."""
        base = self.resolved_public_base_url()
        if base.startswith("https://"):
            base = "wss://" + base.removeprefix("https://")
        elif base.startswith("http://"):
            base = "ws://" + base.removeprefix("http://")
        return f"{base}/v1/sessions/twilio/stream"
