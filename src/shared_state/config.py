"""Typed configuration: every environment variable of the service contract, read once.

`Settings()` reads the environment and a `.env` file in the working directory (the
environment wins). Nothing reads it at import time: the composition root takes a
`Settings` as an argument, and tests construct one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AnyHttpUrl,
    Field,
    RedisDsn,
    SecretStr,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

ApiFlavour = Literal["native", "bizzy"]
"""Which API an upstream speaks: `native` (the real application's) or `bizzy` (the paths
of the BizzyPerson platform's design)."""

PropagateGroup = Literal["llm", "ui"]
"""A group of fields kept equal in both upstreams (contract §10)."""
ConflictPolicyName = Literal["anythingllm", "librechat", "manual"]

DEFAULT_SYNC_INTERVAL_S = 30.0
DEFAULT_MAX_BODY_BYTES = 64 * 1024


class Settings(BaseSettings):
    """The service's configuration (contract §3). Field aliases are the variable names."""

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        env_ignore_empty=True,
        extra="ignore",
        populate_by_name=True,
        frozen=True,
    )

    anythingllm_base_url: AnyHttpUrl | None = Field(None, alias="ANYTHINGLLM_BASE_URL")
    anythingllm_api_key: SecretStr | None = Field(None, alias="ANYTHINGLLM_API_KEY")
    anythingllm_api: ApiFlavour = Field("native", alias="ANYTHINGLLM_API")
    anythingllm_username: str | None = Field(None, alias="ANYTHINGLLM_USERNAME")
    anythingllm_password: SecretStr | None = Field(None, alias="ANYTHINGLLM_PASSWORD")

    librechat_base_url: AnyHttpUrl | None = Field(None, alias="LIBRECHAT_BASE_URL")
    librechat_token: SecretStr | None = Field(None, alias="LIBRECHAT_TOKEN")
    librechat_email: str | None = Field(None, alias="LIBRECHAT_EMAIL")
    librechat_password: SecretStr | None = Field(None, alias="LIBRECHAT_PASSWORD")
    librechat_api: ApiFlavour = Field("native", alias="LIBRECHAT_API")
    librechat_endpoint_providers: Annotated[dict[str, str], NoDecode] = Field(
        default_factory=dict, alias="LIBRECHAT_ENDPOINT_PROVIDERS"
    )
    librechat_max_conversations: int = Field(10_000, ge=1, alias="LIBRECHAT_MAX_CONVERSATIONS")
    librechat_full_scan_every: int = Field(20, ge=1, alias="LIBRECHAT_FULL_SCAN_EVERY")

    sync_interval_s: float = Field(
        DEFAULT_SYNC_INTERVAL_S, gt=0, le=86_400, alias="SHARED_STATE_SYNC_INTERVAL_S"
    )
    host: str = Field("127.0.0.1", min_length=1, alias="SHARED_STATE_HOST")
    port: int = Field(8080, ge=0, le=65_535, alias="SHARED_STATE_PORT")
    api_token: SecretStr | None = Field(None, alias="SHARED_STATE_API_TOKEN")
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list, alias="SHARED_STATE_CORS_ORIGINS"
    )
    snapshot_path: Path | None = Field(None, alias="SHARED_STATE_SNAPSHOT_PATH")
    request_timeout_s: float = Field(10.0, gt=0, le=600, alias="SHARED_STATE_REQUEST_TIMEOUT_S")
    max_body_bytes: int = Field(
        DEFAULT_MAX_BODY_BYTES, ge=1, le=100 * 1024 * 1024, alias="SHARED_STATE_MAX_BODY_BYTES"
    )
    """Largest request body accepted; a larger one is refused (413) before it is read."""
    allowed_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list, alias="SHARED_STATE_ALLOWED_HOSTS"
    )
    """`Host` names served (`*.example.com` wildcards); empty = any."""

    # The process: connections, shutdown, sync deadline.
    sync_timeout_s: float = Field(60.0, gt=0, le=3600, alias="SHARED_STATE_SYNC_TIMEOUT_S")
    """A whole sync's deadline; an upstream still reading then is marked stale."""
    shutdown_timeout_s: float = Field(10.0, gt=0, le=600, alias="SHARED_STATE_SHUTDOWN_TIMEOUT_S")
    client_timeout_s: float = Field(10.0, gt=0, le=600, alias="SHARED_STATE_CLIENT_TIMEOUT_S")
    """Longest a client may take to send a whole request (headers and body)."""
    max_connections: int = Field(1000, ge=1, alias="SHARED_STATE_MAX_CONNECTIONS")
    access_log: bool = Field(False, alias="SHARED_STATE_ACCESS_LOG")
    log_format: Literal["text", "json"] = Field("text", alias="SHARED_STATE_LOG_FORMAT")
    """`json`: every log line (ours and uvicorn's) one JSON object."""

    # The event stream (contract §8).
    replay_versions: int = Field(1000, ge=0, le=1_000_000, alias="SHARED_STATE_REPLAY_VERSIONS")
    """Versions kept for resuming event streams (`Last-Event-ID`); older cursors get a
    `snapshot`."""
    events_heartbeat_s: float = Field(10.0, gt=0, le=15, alias="SHARED_STATE_EVENTS_HEARTBEAT_S")
    """Seconds between comment lines on an idle event stream (proxies close quiet ones)."""

    # Keeping the two applications in step (contract §10).
    propagate: Annotated[list[PropagateGroup], NoDecode] = Field(
        default_factory=list, alias="SHARED_STATE_PROPAGATE"
    )
    """Field groups kept equal in both upstreams: `llm`, `ui`; empty = merge only."""
    conflict_policy: ConflictPolicyName = Field("anythingllm", alias="SHARED_STATE_CONFLICT_POLICY")
    """Who wins when both upstreams changed a propagated field: `anythingllm`,
    `librechat`, or `manual` (nothing is written until a write through the API)."""

    # Several replicas on one Redis (contract §11).
    redis_url: SecretStr | None = Field(None, alias="SHARED_STATE_REDIS_URL")
    """`redis://` or `rediss://` URL; unset = one process, everything in memory. A secret:
    it may hold a password (`shared_state.store.connection.redacted_url` shows it)."""
    redis_prefix: str = Field(
        "shared-state",
        pattern=r"^[A-Za-z0-9_.:-]{1,100}$",
        alias="SHARED_STATE_REDIS_PREFIX",
    )
    """Every Redis key starts with `<prefix>:`; deployments sharing a Redis differ here."""
    lease_ttl_s: float = Field(15.0, ge=1, le=3600, alias="SHARED_STATE_LEASE_TTL_S")
    """How long the syncing replica's lease lasts without renewal (renewed every third)."""

    legacy_sync_interval_ms: float | None = Field(None, gt=0, alias="STATE_SYNC_INTERVAL")
    """The BizzyPerson module's interval, in milliseconds; used when ours is unset."""

    @model_validator(mode="before")
    @classmethod
    def _honour_legacy_interval(cls, data: Any) -> Any:
        if not isinstance(data, dict) or {"SHARED_STATE_SYNC_INTERVAL_S", "sync_interval_s"} & set(
            data
        ):
            return data
        legacy = data.get("STATE_SYNC_INTERVAL", data.get("legacy_sync_interval_ms"))
        try:
            interval_s = float(str(legacy)) / 1000
        except (TypeError, ValueError):
            return data  # absent, or invalid: the field's own validation names it
        return {**data, "SHARED_STATE_SYNC_INTERVAL_S": interval_s}

    @field_validator("librechat_endpoint_providers", mode="before")
    @classmethod
    def _parse_endpoint_providers(cls, value: Any) -> Any:
        """`"Ollama=ollama, groq=groq"` → `{"Ollama": "ollama", "groq": "groq"}`."""
        if not isinstance(value, str):
            return value
        pairs = {}
        for item in filter(None, (part.strip() for part in value.split(","))):
            endpoint, equals, provider = item.partition("=")
            if not equals or not endpoint.strip() or not provider.strip():
                raise ValueError("expected comma-separated endpoint=provider pairs")
            pairs[endpoint.strip()] = provider.strip()
        return pairs

    @field_validator("redis_url", mode="before")
    @classmethod
    def _check_redis_url(cls, value: Any) -> Any:
        """A `redis://` / `rediss://` URL; the error never repeats it (it may hold a
        password)."""
        raw = value.get_secret_value() if isinstance(value, SecretStr) else value
        if isinstance(raw, str):
            try:
                _REDIS_URL.validate_python(raw)
            except ValidationError:
                raise ValueError(
                    "expected a redis:// or rediss:// URL, e.g. redis://redis:6379/0"
                ) from None
        return value

    @field_validator("propagate", mode="before")
    @classmethod
    def _split_groups(cls, value: Any) -> Any:
        """`"llm, ui"` → `["llm", "ui"]`; each group once."""
        if isinstance(value, str):
            value = [group.strip() for group in value.split(",") if group.strip()]
        if isinstance(value, list):
            unknown = [g for g in value if g not in ("llm", "ui")]
            if unknown:
                raise ValueError(f"unknown group {str(unknown[0])!r}: use empty, llm, ui or llm,ui")
            value = list(dict.fromkeys(value))
        return value

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [origin.strip() for origin in value.split(",") if origin.strip()]
        if isinstance(value, list) and "*" in value:
            # Any page on any site could then read the state with a visitor's browser.
            raise ValueError("'*' is not allowed: list the origins, e.g. https://app.example.com")
        return value

    @field_validator("allowed_hosts", mode="before")
    @classmethod
    def _split_hosts(cls, value: Any) -> Any:
        """`"api.example.com, *.internal"` → lower-case names; a `*` may only lead (`*.x`)."""
        if isinstance(value, str):
            value = [host.strip() for host in value.split(",") if host.strip()]
        if isinstance(value, list):
            value = [str(host).lower() for host in value]
            for host in value:
                if "*" in host[1:] or (host.startswith("*") and host != "*" and host[1] != "."):
                    raise ValueError(f"wildcards must look like '*.example.com', not {host!r}")
        return value

    @model_validator(mode="after")
    def _check_credentials(self) -> Settings:
        if (self.anythingllm_username is None) != (self.anythingllm_password is None):
            raise ValueError("ANYTHINGLLM_USERNAME and ANYTHINGLLM_PASSWORD go together")
        if (self.librechat_email is None) != (self.librechat_password is None):
            raise ValueError("LIBRECHAT_EMAIL and LIBRECHAT_PASSWORD go together")
        if (
            self.librechat_base_url is not None
            and self.librechat_api == "native"
            and self.librechat_email is None
            and self.librechat_token is None
        ):
            raise ValueError(
                "LIBRECHAT_BASE_URL with the native API needs LIBRECHAT_EMAIL and "
                "LIBRECHAT_PASSWORD (a service account) or LIBRECHAT_TOKEN"
            )
        return self


_REDIS_URL: TypeAdapter[RedisDsn] = TypeAdapter(RedisDsn)


def describe_invalid_settings(error: ValidationError) -> str:
    """One line naming the variable(s) at fault; never echoes the value (it may be a secret)."""
    parts = []
    for detail in error.errors(include_url=False, include_input=False):
        location = ".".join(str(part) for part in detail["loc"])
        name = _variable_name(location)
        message = detail["msg"].removeprefix("Value error, ")
        parts.append(f"{name}: {message}" if name else message)
    return "invalid configuration: " + "; ".join(parts)


def _variable_name(location: str) -> str:
    if not location:
        return ""
    head = location.split(".")[0]
    for name, field in Settings.model_fields.items():
        if head in (name, field.alias):
            return field.alias or name.upper()
    return head.upper()


__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "DEFAULT_SYNC_INTERVAL_S",
    "Settings",
    "describe_invalid_settings",
]
