"""The webhook rate limit shared by every gateway process, its buckets kept in Redis.

One Lua script per request (EVALSHA; redis-py's registered script loads it again on
NOSCRIPT) refills and takes from the provider's bucket atomically, on Redis's clock
(`TIME`), so neither the processes' clocks nor their number matter: N gateways behind a load
balancer admit a provider `rate` per second and `burst` at once, in total. Keys are
`<prefix><provider>` and expire once the bucket would be full again, so idle buckets vanish.

When Redis is unreachable or fails, the request is decided by this process's own bucket
(`LocalRateLimiter`, same rate and burst), and a warning is logged at most once a minute: a
gateway must never refuse, or lose, a sale because its limiter's store is down. During such
an outage each process limits on its own again (N processes admit up to N times the rate).
For a second after a failure Redis is not asked at all, so a dead or hanging Redis does not
add its timeout to every request.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from posgate.bus.retry import describe_error
from posgate.gateway.http.rate_limits import LocalRateLimiter, whole_seconds

log = logging.getLogger(__name__)

DEFAULT_PREFIX = "posgate:ratelimit:"
# A webhook waits at most this long for the limiter before the local bucket decides.
REDIS_TIMEOUT_S = 0.5
# After a failure, requests skip Redis for this long (then one tries it again).
SKIP_REDIS_S = 1.0
WARN_EVERY_S = 60.0

# KEYS[1]: the provider's bucket (hash: tokens, updated); ARGV: rate per second, burst.
# Returns the seconds to wait as a string (Redis would truncate a Lua number): "0" = granted.
BUCKET_SCRIPT = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'updated')
local tokens = tonumber(state[1]) or burst
local updated = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - updated) * rate)
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
else
  wait = (1 - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'updated', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return tostring(wait)
"""


class RedisRateLimiter:
    """Token buckets in Redis, one per provider, shared by every process using the same keys."""

    def __init__(
        self,
        client: Redis,
        fallback: LocalRateLimiter,
        *,
        prefix: str = DEFAULT_PREFIX,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Limit at `fallback`'s rate and burst in `client`'s Redis; `fallback` decides when it fails."""
        self._client = client
        self._script = client.register_script(BUCKET_SCRIPT)
        self._fallback = fallback
        self._prefix = prefix
        self._clock = clock
        self._args = (repr(float(fallback.rate)), fallback.burst)
        self._skip_until = -math.inf
        self._warned_at = -math.inf
        self._unreported = 0
        self._announced_outage = False

    @classmethod
    def from_url(
        cls,
        url: str,
        fallback: LocalRateLimiter,
        *,
        prefix: str = DEFAULT_PREFIX,
        clock: Callable[[], float] = time.monotonic,
    ) -> RedisRateLimiter:
        """A limiter on the Redis at `url` (`redis://`, `rediss://`, `unix://`); connects on first use.

        `clock` (monotonic seconds) times the outage handling: skipping Redis, throttled warnings.

        Raises:
            ValueError: The URL is malformed (a startup error; the URL itself is not repeated).

        """
        client = Redis.from_url(
            url,
            socket_timeout=REDIS_TIMEOUT_S,
            socket_connect_timeout=REDIS_TIMEOUT_S,
            # One immediate retry covers a pooled connection Redis closed; longer outages
            # are the fallback's business, not worth making a vendor wait for.
            retry=Retry(NoBackoff(), 1),
        )
        # The URL may hold a password: only the key prefix is logged.
        log.info("webhook rate limit shared through Redis, keys %s<provider>", prefix)
        return cls(client, fallback, prefix=prefix, clock=clock)

    async def retry_after(self, provider: str) -> int:
        """0 when the request may proceed, else whole seconds (at least 1) to wait."""
        now = self._clock()
        if now < self._skip_until:
            return self._fall_back(provider, now, None)
        try:
            wait = await self._script(keys=[self._prefix + provider], args=self._args)
            seconds = whole_seconds(float(wait))
        except Exception as error:
            # Whatever went wrong with the store, the sale must not be refused or lost for it.
            self._skip_until = now + SKIP_REDIS_S
            return self._fall_back(provider, now, error)
        if self._announced_outage:
            self._announced_outage = False
            log.info("webhook rate limit: Redis reachable again; buckets shared again")
        return seconds

    async def close(self) -> None:
        """Close the connections to Redis."""
        await self._client.aclose()

    def _fall_back(self, provider: str, now: float, error: Exception | None) -> int:
        """Decide with the local bucket; warn about the outage at most once per `WARN_EVERY_S`."""
        self._unreported += 1
        if error is not None and now - self._warned_at >= WARN_EVERY_S:
            log.warning(
                "webhook rate limit: Redis unavailable (%s); limiting in this process alone "
                "(%d requests decided here since the last warning)",
                describe_error(error),
                self._unreported,
            )
            self._warned_at = now
            self._unreported = 0
            self._announced_outage = True
        return self._fallback.take(provider)
