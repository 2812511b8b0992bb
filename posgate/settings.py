"""Process settings: one `Settings` object per process, read from `POSGATE_*` variables."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class EventTransport(StrEnum):
    """How events leave the outbox."""

    INPROCESS = "inprocess"
    RABBITMQ = "rabbitmq"


class EventLoop(StrEnum):
    """Which asyncio event loop a process runs on."""

    UVLOOP = "uvloop"
    ASYNCIO = "asyncio"


class WebhookCredential(BaseModel):
    """Secrets one tenant's account with a provider signs webhooks with (several: rotation)."""

    provider: str
    tenant: str
    secrets: list[SecretStr]


class Settings(BaseSettings):
    """Every setting posgate reads; each is documented in the README's configuration table."""

    model_config = SettingsConfigDict(env_prefix="POSGATE_", extra="ignore")

    dev_mode: bool = Field(False, description="Embedded mode: no caller auth, SQLite, in-process events.")
    database_url: str = Field(
        "sqlite+aiosqlite:///./posgate.db",
        description="SQLAlchemy async URL (sqlite+aiosqlite:///path or postgresql+asyncpg://...).",
    )
    database_pool_size: int = Field(10, ge=1, description="Connections kept per process (PostgreSQL).")
    event_transport: EventTransport = Field(EventTransport.INPROCESS, description="inprocess or rabbitmq.")
    amqp_url: SecretStr = Field(
        SecretStr("amqp://guest:guest@127.0.0.1:5672/"), description="RabbitMQ URL (may hold a password)."
    )
    events_exchange: str = Field("posgate.events", description="Topic exchange that carries domain events.")
    dead_letter_exchange: str = Field("posgate.dlx", description="Exchange poison messages are sent to.")
    consumer_prefetch: int = Field(32, ge=1, le=10_000, description="Unacked messages per consumer.")
    consumer_max_attempts: int = Field(5, ge=1, description="Deliveries before a message is dead-lettered.")
    relay_batch_size: int = Field(256, ge=1, description="Outbox rows the relay publishes per round.")
    relay_poll_interval_s: float = Field(0.2, gt=0, description="Relay sleep when the outbox is empty.")
    outbox_retention_s: float = Field(
        24 * 3600.0, ge=0, description="How long published outbox rows are kept; 0: forever."
    )
    inbox_retention_s: float = Field(
        7 * 24 * 3600.0,
        ge=0,
        description="How long consumers' de-duplication (inbox) rows are kept; 0: forever.",
    )
    bus_prune_interval_s: float = Field(
        600.0, gt=0, description="How often a process running the outbox relay applies the two retentions."
    )
    reservation_sweep_interval_s: float = Field(
        1.0, gt=0, description="How often expired stock reservations are released."
    )
    inventory_change_retention_s: float = Field(
        7 * 24 * 3600.0,
        gt=0,
        description="How long WatchStock's change log keeps changes (beyond the replay window).",
    )
    grpc_host: str = Field("127.0.0.1", description="Interface the gRPC servers bind to.")
    gateway_port: int = Field(50050, ge=0, le=65535, description="gRPC port of the gateway (0 picks one).")
    inventory_port: int = Field(50051, ge=0, le=65535, description="gRPC port of the inventory service.")
    inventory_commit_lanes: int = Field(
        2,
        ge=1,
        le=16,
        description="Group-commit lanes of the inventory on PostgreSQL (large calls split by store).",
    )
    inventory_stream_port: int | None = Field(
        None,
        ge=0,
        le=65535,
        description="Port of the inventory's stream edge (WatchStock without grpc.aio); unset: off.",
    )
    routing_port: int = Field(50052, ge=0, le=65535, description="gRPC port of the routing service.")
    returns_port: int = Field(50053, ge=0, le=65535, description="gRPC port of the returns service.")
    auth_tokens: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list,
        description=(
            "Comma-separated bearer tokens internal callers may present (required outside dev): "
            "`<secret>` acts for every tenant, `<secret>@<tenant>|<tenant>` only for those."
        ),
    )
    tls_cert_file: str | None = Field(None, description="Server certificate (PEM); enables TLS.")
    tls_key_file: str | None = Field(None, description="Server private key (PEM).")
    tls_client_ca_file: str | None = Field(None, description="CA for client certificates; enables mTLS.")
    shutdown_grace_s: float = Field(5.0, ge=0, description="Seconds in-flight RPCs get on SIGTERM.")
    health_probe_interval_s: float = Field(1.0, gt=0, description="How often dependency health is probed.")
    log_level: str = Field("INFO", description="Python logging level.")
    event_loop: EventLoop = Field(
        EventLoop.UVLOOP, description="uvloop (faster sockets) or asyncio (the standard library's loop)."
    )
    gateway_http_host: str = Field("127.0.0.1", description="Interface the gateway's HTTP server binds to.")
    gateway_http_port: int = Field(
        8080, ge=0, le=65535, description="HTTP port of the gateway (webhooks, admin)."
    )
    gateway_http_reuse_port: bool = Field(
        False,
        description="Bind the HTTP port with SO_REUSEPORT: gateway processes on one host share it.",
    )
    webhook_credentials: list[WebhookCredential] = Field(
        default_factory=list,
        description="JSON list of {provider, tenant, secrets}: who may post webhooks for which tenant.",
    )
    admin_tokens: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list, description="Comma-separated bearer tokens for the gateway's admin API."
    )
    webhook_max_body_bytes: int = Field(
        1_048_576, ge=1024, description="Largest webhook body accepted (413 above)."
    )
    webhook_rate_per_s: float = Field(1000.0, gt=0, description="Sustained webhooks per second per provider.")
    webhook_burst: int = Field(
        2000, ge=1, description="Webhooks a provider may send in a burst above the rate."
    )
    webhook_rate_limit_redis_url: SecretStr = Field(
        SecretStr(""),
        description="Redis URL (may hold a password) gateways share rate limits through; empty: per process.",
    )
    webhook_rate_limit_key_prefix: str = Field(
        "posgate:ratelimit:", description="Prefix of the rate-limit bucket keys in Redis."
    )
    webhook_ip_allowlist: dict[str, list[str]] = Field(
        default_factory=dict,
        description="JSON {provider: [CIDR, ...]}; a provider listed only from those networks.",
    )
    inventory_target: str = Field(
        "127.0.0.1:50051", description="host:port the gateway sends inventory commands to."
    )
    internal_token: SecretStr | None = Field(
        None, description="Bearer token the gateway presents to services."
    )
    dispatch_max_attempts: int = Field(
        40, ge=1, description="Sends of a command before it is dead-lettered (40: about 9-17 minutes)."
    )
    gateway_retention_s: float = Field(
        30 * 24 * 3600.0,
        ge=0,
        description="How long finished commands, resolved failures and raw payloads are kept; 0: forever.",
    )
    gateway_audit_retention_s: float = Field(
        90 * 24 * 3600.0, ge=0, description="How long gateway audit rows are kept; 0: forever."
    )
    gateway_prune_interval_s: float = Field(
        600.0, gt=0, description="How often the gateway deletes what its retention allows."
    )
    square_api_base: str = Field(
        "https://connect.squareup.com", description="Base URL of Square's API (order and catalog fetches)."
    )
    square_access_tokens: dict[str, SecretStr] = Field(
        default_factory=dict,
        description="JSON {merchant_id: access token}: Square tokens for reading orders and catalogs.",
    )
    square_fetch_max_attempts: int = Field(
        40, ge=1, description="Tries of a Square order or catalog fetch before its command is dead-lettered."
    )

    @field_validator("auth_tokens", "admin_tokens", mode="before")
    @classmethod
    def _split_tokens(cls, raw: object) -> object:
        if isinstance(raw, str):
            return [token.strip() for token in raw.split(",") if token.strip()]
        return raw
