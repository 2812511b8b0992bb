"""How the bus waits between retries and describes failures without leaking secrets."""

from __future__ import annotations

import random
import re

_URL_CREDENTIALS = re.compile(r"(\w+://[^:/@\s]*):[^@\s]*@")


def describe_error(error: BaseException) -> str:
    """`Type: message` for logs and dead letters, with any URL password masked."""
    return _URL_CREDENTIALS.sub(r"\1:******@", f"{type(error).__name__}: {error}")


class Backoff:
    """Exponential backoff with "equal jitter", so many relays do not retry in lockstep."""

    def __init__(self, base_s: float = 0.1, cap_s: float = 10.0, rng: random.Random | None = None) -> None:
        """Delays grow as `base_s * 2**failures`, capped at `cap_s`, then jittered down."""
        self._base_s = base_s
        self._cap_s = cap_s
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography

    def delay(self, failures: int) -> float:
        """Seconds to wait after the given number of consecutive failures (>= 1)."""
        ceiling = min(self._cap_s, self._base_s * 2 ** min(failures - 1, 32))
        # Keep a floor of half the ceiling so a retry storm still backs off.
        return self._rng.uniform(ceiling / 2, ceiling)
