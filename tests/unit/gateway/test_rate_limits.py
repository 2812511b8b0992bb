"""The webhook limiter: the in-process bucket, and which limiter the settings choose."""

from __future__ import annotations

from posgate.gateway.http.rate_limits import LocalRateLimiter
from posgate.gateway.http.redis_rate_limits import RedisRateLimiter
from posgate.gateway.http.security import rate_limiter
from posgate.settings import Settings


class Clock:
    def __init__(self) -> None:
        self.now = 50.0

    def __call__(self) -> float:
        return self.now


async def test_local_bucket_allows_the_burst_then_refills_at_the_rate() -> None:
    clock = Clock()
    limiter = LocalRateLimiter(rate=0.5, burst=2, clock=clock)

    answers = [await limiter.retry_after("square") for _ in range(3)]
    clock.now += 2
    refilled = await limiter.retry_after("square")

    assert answers == [0, 0, 2]
    assert refilled == 0
    assert await limiter.retry_after("toast") == 0  # its own bucket


async def test_the_embedded_default_needs_no_redis() -> None:
    limiter = rate_limiter(Settings())
    assert isinstance(limiter, LocalRateLimiter)
    await limiter.close()


async def test_a_redis_url_selects_the_shared_limiter_without_connecting() -> None:
    settings = Settings(webhook_rate_limit_redis_url="redis://:hunter2@127.0.0.1:1/0")
    limiter = rate_limiter(settings)
    assert isinstance(limiter, RedisRateLimiter)
    await limiter.close()
