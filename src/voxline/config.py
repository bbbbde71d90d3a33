"""Server settings, read once from `VOXLINE_*` environment variables (and `.env`)."""

from __future__ import annotations

import ipaddress
import os
import re
import secrets
from pathlib import Path
from typing import Any

from dotenv import dotenv_values
from pydantic import Field, SecretStr, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    DotEnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

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
    analysis_workers: int = Field(
        default=2,
        ge=0,
        le=64,
        description="Post-call analyses run at once by this process; 0 runs none here "
        "(another process of the deployment does them).",
    )
    analysis_timeout_s: float = Field(
        default=60.0, gt=0, le=600, description="Longest wait for one answer of the model."
    )
    analysis_lease_s: float = Field(
        default=120.0,
        ge=5,
        le=3600,
        description="An analysis whose process stops renewing its lease this long is "
        "taken up again by any process.",
    )
    analysis_max_attempts: int = Field(
        default=3, ge=1, le=20, description="Attempts at an analysis whose model fails."
    )
    memory_budget_chars: int = Field(
        default=4000,
        ge=200,
        le=100_000,
        description="An instance's memory past this size has its oldest notes folded into one.",
    )
    recordings_retention_days: int | None = Field(
        default=None,
        ge=1,
        description="Call recordings older than this many days are removed; unset keeps them.",
    )
    recordings_s3_bucket: str | None = Field(
        default=None,
        description="Keep call recordings in this S3-compatible bucket instead of data_dir "
        "(credentials from the AWS_* variables), so several processes share them.",
    )
    recordings_s3_endpoint_url: str | None = Field(
        default=None, description="The bucket's endpoint, for S3-compatible stores."
    )
    recordings_s3_region: str | None = None
    recordings_s3_prefix: str = Field(default="", description="Prefix of recording keys.")
    log_level: str = "info"

    drain_timeout_seconds: float = Field(
        default=600.0,
        ge=0,
        description="On SIGTERM/SIGINT, how long live calls may go on before they are ended.",
    )
    drain_message: str = Field(
        default="Sorry, we have to end this call now. Please call back in a moment. Goodbye.",
        min_length=1,
        max_length=500,
        description="What callers still on the line when the drain times out hear.",
    )
    spool_max_bytes: int = Field(
        default=64 * 1024 * 1024,
        ge=1024,
        description="Past this much spooled data (database outage) new calls are refused; "
        "records of live calls are still spooled.",
    )
    process_timeout_seconds: float = Field(
        default=30.0,
        ge=1.0,
        le=3600.0,
        description="A process that has not beaten for this long is dead: its live sessions "
        "are ended as server_crash. It beats every third of it.",
    )

    redis_url: str | None = Field(
        default=None,
        description="redis://host:port/db shared by the processes of a deployment: live "
        "events and call control across processes. Unset: this process alone (no Redis).",
    )
    redis_prefix: str = Field(
        default="voxline",
        min_length=1,
        max_length=100,
        description="Prefix of every Redis key and channel (several deployments, one Redis).",
    )
    live_history_events: int = Field(
        default=500,
        ge=10,
        le=100_000,
        description="Live events kept per session for replay (Last-Event-ID, late clients).",
    )
    otlp_endpoint: str | None = Field(
        default=None,
        description="OTLP/HTTP traces endpoint (http://collector:4318/v1/traces): a span per "
        "call, turn, STT, LLM and TTS. Needs the 'otel' extra.",
    )

    api_keys: dict[str, SecretStr] = Field(
        default_factory=dict,
        description="The server's vendor keys by credential name ('openai', 'deepgram', ...), "
        "each read from VOXLINE_<NAME>_API_KEY for the vendors of the provider catalog.",
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        env_file = (
            dotenv_settings.env_file if isinstance(dotenv_settings, DotEnvSettingsSource) else None
        )
        keys = _VendorKeys(settings_cls, env_file)
        return init_settings, keys, env_settings, dotenv_settings, file_secret_settings

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

    def public_websocket_base_url(self) -> str:
        """The public base URL with its scheme for WebSockets (https -> wss, http -> ws)."""
        base = self.resolved_public_base_url()
        if base.startswith("https://"):
            return "wss://" + base.removeprefix("https://")
        return "ws://" + base.removeprefix("http://")

    def stream_url(self) -> str:
        """The wss:// URL of the Twilio media-stream WebSocket, from the public base URL."""
        return f"{self.public_websocket_base_url()}/v1/sessions/twilio/stream"


class _VendorKeys(PydanticBaseSettingsSource):
    """`api_keys` from `VOXLINE_<NAME>_API_KEY` for each vendor credential the catalog knows
    (the environment first, then the .env file); empty values count as unset."""

    def __init__(self, settings_cls: type[BaseSettings], env_file: Any) -> None:
        super().__init__(settings_cls)
        self._env_file = env_file

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        from voxline.providers.catalog import CATALOG

        dotenv: dict[str, str | None] = {}
        if isinstance(self._env_file, str | Path) and Path(self._env_file).is_file():
            dotenv = dotenv_values(self._env_file)
        keys = {}
        for name, variable in CATALOG.env_vars().items():
            value = os.environ.get(variable) or dotenv.get(variable)
            if value:
                keys[name] = value
        return {"api_keys": keys} if keys else {}
