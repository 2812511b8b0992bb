"""The webhook rate limit shared through a real Redis by several gateway processes.

Each `RedisRateLimiter` (or app) stands in for one gateway process; they share a Redis and
a key prefix unique to the test. No assertion depends on a wait being short: waits are read
back from `Retry-After`, and refills are only ever waited for, never raced.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator, Callable

import pytest
from redis.asyncio import Redis

from posgate.gateway.http.rate_limits import LocalRateLimiter
from posgate.gateway.http.redis_rate_limits import SKIP_REDIS_S, RedisRateLimiter
from posgate.gateway.http.security import WebhookGuard
from tests.integration.gateway.conftest import MAPPED, load_mappings
from tests.integration.gateway_http.conftest import STANDARD_URL
from tests.unit.gateway.adapters.standard.cases import CASES, NOW, SECRET

pytestmark = pytest.mark.redis

LOGGER = "posgate.gateway.http.redis_rate_limits"

MakeLimiter = Callable[..., RedisRateLimiter]


@pytest.fixture
def prefix(unique_name: str) -> str:
    return f"posgate:test:{unique_name}:"


@pytest.fixture
async def make_limiter(redis_url: str, prefix: str) -> AsyncIterator[MakeLimiter]:
    made: list[RedisRateLimiter] = []

    def make(rate: float, burst: int, url: str = redis_url, **kwargs: object) -> RedisRateLimiter:
        limiter = RedisRateLimiter.from_url(url, LocalRateLimiter(rate, burst), prefix=prefix, **kwargs)
        made.append(limiter)
        return limiter

    yield make
    for limiter in made:
        await limiter.close()


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_two_processes_share_one_burst_then_wait(make_limiter: MakeLimiter, redis_url, prefix) -> None:
    first, second = make_limiter(0.5, 4), make_limiter(0.5, 4)

    answers = [await (first, second)[n % 2].retry_after("square") for n in range(6)]

    assert answers[:4] == [0, 0, 0, 0]
    # Empty bucket at 0.5 tokens/s: the next token is (just under) 2 s away.
    assert all(1 <= wait <= 2 for wait in answers[4:])
    redis = Redis.from_url(redis_url)
    try:
        ttl_ms = await redis.pttl(f"{prefix}square")
    finally:
        await redis.aclose()
    # The bucket key vanishes once it would be full again (4 tokens at 0.5/s = 8 s, plus 1 s).
    assert 0 < ttl_ms <= 9000


async def test_tokens_refill_at_the_rate_for_every_process(make_limiter: MakeLimiter) -> None:
    slow = make_limiter(0.25, 1)
    assert await slow.retry_after("toast") == 0
    assert 3 <= await slow.retry_after("toast") <= 4  # one token per 4 s

    first, second = make_limiter(20.0, 1), make_limiter(20.0, 1)
    assert await first.retry_after("square") == 0
    assert await second.retry_after("square") == 1  # 50 ms away, rounded up to a whole second
    await asyncio.sleep(0.1)  # at least two tokens' worth of time, capped at the burst of 1
    assert await second.retry_after("square") == 0
    assert await first.retry_after("square") == 1


async def test_each_provider_has_its_own_bucket(make_limiter: MakeLimiter) -> None:
    first, second = make_limiter(0.5, 1), make_limiter(0.5, 1)

    assert await first.retry_after("square") == 0
    assert await second.retry_after("shopify") == 0
    assert await second.retry_after("square") >= 1
    assert await first.retry_after("shopify") >= 1
    assert await first.retry_after("zettle") == 0


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_unreachable_redis_falls_back_to_the_local_bucket_and_warns_once(
    make_limiter: MakeLimiter, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock()
    url = f"redis://:hunter2@127.0.0.1:{closed_port()}/0"
    limiter = make_limiter(0.5, 3, url, clock=clock)

    with caplog.at_level(logging.INFO, logger=LOGGER):
        answers = [await limiter.retry_after("square") for _ in range(3)]
        clock.now += SKIP_REDIS_S + 0.1  # Redis is tried (and fails) again
        answers += [await limiter.retry_after("square") for _ in range(2)]

    # Nothing refused for the store's sake: the local bucket admits its burst, then limits.
    assert answers[:3] == [0, 0, 0]
    assert all(wait >= 1 for wait in answers[3:])
    warnings = [record for record in caplog.records if record.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "Redis unavailable" in warnings[0].getMessage()
    assert "hunter2" not in caplog.text


async def test_two_apps_share_one_budget_and_answer_429(make_gateway, sessions, redis_url, prefix) -> None:
    await load_mappings(sessions, MAPPED)
    shared = {
        "webhook_rate_limit_redis_url": redis_url,
        "webhook_rate_limit_key_prefix": prefix,
        "webhook_rate_per_s": 0.5,
        "webhook_burst": 2,
    }
    gateways = [make_gateway(**shared), make_gateway(**shared)]
    for gateway in gateways:
        gateway.app.state.webhook_guard = WebhookGuard.from_settings(gateway.app.state.ctx.settings)
    body = CASES.body("inventory_counts.json")
    headers = dict(CASES.sign(body, SECRET, NOW))
    try:
        answers = []
        for n in range(4):
            async with gateways[n % 2].client() as client:
                answers.append(await client.post(STANDARD_URL, content=body, headers=headers))
    finally:
        for gateway in gateways:
            await gateway.app.state.webhook_guard.limiter.close()

    assert [answer.status_code for answer in answers] == [202, 200, 429, 429]
    assert all(answer.headers["retry-after"] in {"1", "2"} for answer in answers[2:])
    assert answers[3].json() == {"error": "rate_limited", "reason": "rate_limited"}
    assert [(row.status, row.reason) for row in await gateways[0].audit_rows()] == [(429, "rate_limited")] * 2
