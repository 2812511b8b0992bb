"""The webhook rate limit's port, and its in-process implementation.

A limiter answers one question per request: may this provider's delivery proceed, and if
not, how many seconds should the vendor wait (`Retry-After`)? `LocalRateLimiter` keeps its
buckets in this process (the embedded default, and the fallback of the shared limiter);
`posgate.gateway.http.redis_rate_limits.RedisRateLimiter` keeps them in Redis, so every
gateway process draws from one budget per provider.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol


class RateLimiter(Protocol):
    """A token bucket per provider: `rate` tokens per second up to `burst`, one per request."""

    async def retry_after(self, provider: str) -> int:
        """0 when the request may proceed, else whole seconds (at least 1) to wait."""
        ...

    async def close(self) -> None:
        """Release what the limiter holds (connections); called once, at shutdown."""
        ...


def whole_seconds(wait: float) -> int:
    """A wait in seconds as `Retry-After` states it: 0 for none, else rounded up, at least 1."""
    return 0 if wait <= 0 else max(1, math.ceil(wait))


@dataclass(slots=True)
class TokenBucket:
    """`rate` tokens per second up to `burst`; one token per request."""

    rate: float
    burst: int
    tokens: float
    updated: float

    def take(self, now: float) -> float:
        """Take a token; 0 when granted, else the seconds until one is available."""
        self.tokens = min(float(self.burst), self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate


@dataclass(slots=True)
class LocalRateLimiter:
    """A token bucket per provider in this process (each gateway process limits on its own)."""

    rate: float
    burst: int
    clock: Callable[[], float] = time.monotonic
    _buckets: dict[str, TokenBucket] = field(default_factory=dict)

    def take(self, provider: str) -> int:
        """The synchronous `retry_after`: 0 when granted, else whole seconds to wait."""
        now = self.clock()
        bucket = self._buckets.get(provider)
        if bucket is None:
            bucket = self._buckets[provider] = TokenBucket(self.rate, self.burst, float(self.burst), now)
        return whole_seconds(bucket.take(now))

    async def retry_after(self, provider: str) -> int:
        """0 when the request may proceed, else whole seconds (at least 1) to wait."""
        return self.take(provider)

    async def close(self) -> None:
        """Nothing to release."""
