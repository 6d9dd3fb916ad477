"""Exponential backoff with jitter, as the Java client uses for reconnects and retries.

``reconnect.backoff.ms`` / ``reconnect.backoff.max.ms`` and ``retry.backoff.ms`` /
``retry.backoff.max.ms`` (KIP-144, KIP-580) both follow the same curve:
``min(max, initial * 2**attempts)``, spread by ±20 % so that many clients cut off by the
same broker restart do not all come back in the same millisecond.  Sans-IO: the caller
keeps the attempt count and the clock; randomness is injectable for tests.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable

__all__ = ["ExponentialBackoff"]


class ExponentialBackoff:
    """Delay in milliseconds before attempt number ``attempts`` (0 = first retry)."""

    __slots__ = ("_exp_max", "_random", "initial_ms", "jitter", "max_ms", "multiplier")

    def __init__(self, initial_ms: float, max_ms: float, *, multiplier: float = 2.0,
                 jitter: float = 0.2, random_source: Callable[[], float] | None = None
                 ) -> None:
        if initial_ms < 0 or max_ms < 0:
            raise ValueError("backoff times must not be negative")
        if multiplier < 1:
            raise ValueError("multiplier must be at least 1")
        if not 0 <= jitter < 1:
            raise ValueError("jitter must be in [0, 1)")
        self.initial_ms = initial_ms
        self.max_ms = max_ms
        self.multiplier = multiplier
        self.jitter = jitter
        self._random = random.random if random_source is None else random_source
        # the attempt count after which the curve is flat: capping the exponent keeps
        # float overflow away however long a broker stays down
        if max_ms > initial_ms > 0 and multiplier > 1:
            self._exp_max = math.log(max_ms / initial_ms) / math.log(multiplier)
        else:
            self._exp_max = 0.0

    def delay_ms(self, attempts: int) -> float:
        if attempts < 0:
            raise ValueError("attempts must not be negative")
        if self.initial_ms >= self.max_ms:
            # a configuration where max <= initial means a constant backoff (as in Java)
            base = self.max_ms
        else:
            exponent = min(attempts, math.ceil(self._exp_max))
            base = min(self.max_ms, self.initial_ms * self.multiplier ** exponent)
        if self.jitter == 0 or base == 0:
            return base
        spread = self.jitter * (2 * self._random() - 1)
        return base * (1 + spread)
