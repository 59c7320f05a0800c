"""API-key checks and per-key rate limits (in memory: each process limits alone, with its
share of the rate)."""

from __future__ import annotations

import hashlib
import hmac
import threading
import time

from .config import SCOPES, ApiKey, RateLimit

ANONYMOUS = ApiKey("anonymous", "sha256:" + "0" * 64, SCOPES)


class KeyRing:
    """Looks a presented key up by its hash, in constant time per stored key."""

    def __init__(self, keys: list[ApiKey]) -> None:
        self._keys = list(keys)

    def __len__(self) -> int:
        return len(self._keys)

    def find(self, presented: str) -> ApiKey | None:
        digest = "sha256:" + hashlib.sha256(presented.encode("utf-8")).hexdigest()
        found = None
        for key in self._keys:  # no early exit: timing says nothing about which key matched
            if hmac.compare_digest(digest, key.key_hash):
                found = key
        return found


class RateLimiter:
    """One token bucket per key name."""

    def __init__(self, default: RateLimit, *, share: float = 1.0, clock=time.monotonic) -> None:
        self.default = default
        self.share = share
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # name -> (tokens, last refill)
        self._lock = threading.Lock()

    def acquire(self, key: ApiKey) -> float:
        """Take one token; returns 0 when allowed, else the seconds until a token is free."""
        limit = key.rate_limit or self.default
        rate, burst = limit.per_second * self.share, max(1.0, limit.burst * self.share)
        now = self._clock()
        with self._lock:
            tokens, last = self._buckets.get(key.name, (burst, now))
            tokens = min(burst, tokens + (now - last) * rate)
            if tokens >= 1.0:
                self._buckets[key.name] = (tokens - 1.0, now)
                return 0.0
            self._buckets[key.name] = (tokens, now)
            return (1.0 - tokens) / rate
