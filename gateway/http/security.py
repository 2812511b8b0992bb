"""The door of the webhook endpoints: credentials → tenant, rate limits, IP allow-lists, body size.

Everything here is decided before a delivery is stored. Credentials are per (provider,
tenant); the tenant whose secret verifies a delivery's signature is the only tenant that
delivery may write (the pipeline enforces it on the commands, see `ingest(tenant=...)`).
"""

from __future__ import annotations

import base64
import ipaddress
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from posgate.gateway.adapters.base import Adapter, AdapterError, InboundRequest
from posgate.gateway.http.rate_limits import LocalRateLimiter, RateLimiter
from posgate.gateway.http.redis_rate_limits import RedisRateLimiter
from posgate.settings import Settings, WebhookCredential

log = logging.getLogger(__name__)

DEV_PROVIDER = "standard"
DEV_TENANT = "dev"
# Published in the README on purpose: it only exists in dev mode with nothing configured.
DEV_SECRET = "whsec_" + base64.b64encode(b"posgate-dev-secret").decode()


@dataclass(frozen=True, slots=True)
class TenantSecrets:
    """The secrets one tenant's account with a provider signs with (several while rotating)."""

    tenant: str
    secrets: tuple[bytes, ...]


def credentials_by_provider(settings: Settings) -> dict[str, tuple[TenantSecrets, ...]]:
    """`webhook_credentials` grouped by provider; the dev credential when dev mode has none."""
    configured: Sequence[WebhookCredential] = settings.webhook_credentials
    if settings.dev_mode and not configured:
        configured = [WebhookCredential.model_validate(dev_credential())]
    grouped: dict[str, list[TenantSecrets]] = {}
    for credential in configured:
        secrets = tuple(secret.get_secret_value().encode() for secret in credential.secrets)
        grouped.setdefault(credential.provider, []).append(TenantSecrets(credential.tenant, secrets))
    return {provider: tuple(entries) for provider, entries in grouped.items()}


def dev_credential() -> dict[str, object]:
    """The documented dev credential: provider `standard`, tenant `dev`, secret `DEV_SECRET`."""
    return {"provider": DEV_PROVIDER, "tenant": DEV_TENANT, "secrets": [DEV_SECRET]}


def signing_tenant(
    adapter: Adapter, request: InboundRequest, credentials: Sequence[TenantSecrets], now: datetime
) -> TenantSecrets | None:
    """The credential whose secrets verify `request`, or None when none does.

    Every credential is tried, so timing does not tell which tenant (if any) matched.
    """
    verified: list[TenantSecrets] = []
    for credential in credentials:
        try:
            adapter.verify_signature(request, credential.secrets, now)
        except AdapterError:
            continue
        verified.append(credential)
    if len(verified) > 1:
        # Two tenants sharing a secret is a configuration fault; writing for either would guess.
        log.error("webhook secret of %s verifies for several tenants; refusing", request.provider)
        return None
    return verified[0] if verified else None


def all_secrets(credentials: Sequence[TenantSecrets]) -> tuple[bytes, ...]:
    """Every secret of a provider: lets the adapter give its own verdict when no tenant verified."""
    return tuple(secret for credential in credentials for secret in credential.secrets)


def rate_limiter(settings: Settings, clock: Callable[[], float] = time.monotonic) -> RateLimiter:
    """The webhook limiter: shared through Redis when `webhook_rate_limit_redis_url` is set.

    Without it (the default, and the embedded set-up) each process keeps its own buckets.
    """
    local = LocalRateLimiter(settings.webhook_rate_per_s, settings.webhook_burst, clock)
    url = settings.webhook_rate_limit_redis_url.get_secret_value()
    if not url:
        return local
    return RedisRateLimiter.from_url(url, local, prefix=settings.webhook_rate_limit_key_prefix)


class IpAllowList:
    """Per-provider CIDR lists; a provider without a list is reachable from anywhere."""

    def __init__(self, networks: Mapping[str, Sequence[str]]) -> None:
        """Parse the CIDRs (`webhook_ip_allowlist`).

        Raises:
            ValueError: A CIDR is malformed (a startup error, never a silent open door).

        """
        self._networks = {
            provider: tuple(ipaddress.ip_network(cidr, strict=False) for cidr in cidrs)
            for provider, cidrs in networks.items()
        }

    def allows(self, provider: str, client: str) -> bool:
        """Whether `client` (an IP address) may post for `provider`."""
        networks = self._networks.get(provider)
        if networks is None:
            return True
        try:
            address = ipaddress.ip_address(client)
        except ValueError:
            return False
        return any(address in network for network in networks)


class BodyTooLarge(Exception):
    """The body exceeds the configured limit."""


async def read_limited(chunks: AsyncIterator[bytes], declared: str | None, limit: int) -> bytes:
    """The whole body, reading no more than `limit` + 1 bytes.

    Raises:
        BodyTooLarge: `Content-Length` or the streamed body exceeds `limit`.

    """
    if declared is not None and declared.strip().isdigit() and int(declared) > limit:
        raise BodyTooLarge
    body = bytearray()
    async for chunk in chunks:
        body.extend(chunk)
        if len(body) > limit:
            raise BodyTooLarge
    return bytes(body)


@dataclass(frozen=True)
class WebhookGuard:
    """The door's state for one app: credentials, limiter and allow-list built from settings."""

    credentials: Mapping[str, tuple[TenantSecrets, ...]]
    limiter: RateLimiter
    allow_list: IpAllowList
    max_body_bytes: int

    @classmethod
    def from_settings(cls, settings: Settings, clock: Callable[[], float] = time.monotonic) -> WebhookGuard:
        """Build from `webhook_*` settings; `clock` drives the in-process buckets (tests)."""
        return cls(
            credentials=credentials_by_provider(settings),
            limiter=rate_limiter(settings, clock),
            allow_list=IpAllowList(settings.webhook_ip_allowlist),
            max_body_bytes=settings.webhook_max_body_bytes,
        )
