"""Server settings, read once from `VOXLINE_*` environment variables (and `.env`)."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

from dotenv import dotenv_values
from pydantic import Field, SecretStr
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    DotEnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

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
