"""Server settings, read once from `VOXLINE_*` environment variables (and `.env`)."""

from __future__ import annotations

import secrets
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

_SECRET_FILE = "server-secret"


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

    dispatcher_enabled: bool = Field(
        default=True,
        description="Run the outbound-call dispatcher in this server process "
        "(`voxline dispatcher` runs it alone).",
    )
    twilio_calls_per_second: float = Field(
        default=1.0,
        gt=0,
        le=1000,
        description="Outbound calls created per second on the Twilio account, across every "
        "process (Twilio's default CPS is 1).",
    )
    dispatch_poll_interval_seconds: float = Field(default=0.5, gt=0, le=60)
    dispatch_lease_seconds: float = Field(
        default=30.0,
        ge=1,
        le=3600,
        description="How long a dispatcher owns an attempt whose call it is creating; after "
        "that the attempt is reconciled against Twilio by any process. Keep it above the "
        "longest Twilio create request (10 s timeout, plus retries of refused connections).",
    )
    dispatch_stale_call_seconds: float = Field(
        default=120.0,
        ge=1,
        description="A live outbound call without news for this long is looked up at Twilio "
        "(its final status callback may have been lost).",
    )

    relay_token_ttl_seconds: int = Field(default=300, ge=10, le=3600)
    seed_demo_agent: bool = Field(
        default=True, description="Create a demo workspace, key and agent on first start."
    )
    dev_mode: bool = Field(
        default=False, description="Enables local-only conveniences (browser session tokens)."
    )
    allowed_origins: list[str] = Field(
        default_factory=list,
        description="Web origins (scheme://host[:port]) besides the server's own whose pages "
        "may open browser sessions; '*' allows any. A JSON list in the environment.",
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
