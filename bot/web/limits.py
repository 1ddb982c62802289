"""Rate limits for the web chat: a sliding window per key, in memory."""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable


class RateLimiter:
    """At most ``limit`` events per ``window`` seconds for each key."""

    def __init__(self, limit: int, window: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.window = window
        self.clock = clock
        self.events: dict[str, deque[float]] = {}

    def check(self, key: str) -> int:
        """Record an event for ``key``; 0 if allowed, else seconds to wait (for Retry-After)."""
        now = self.clock()
        events = self.events.setdefault(key, deque())
        while events and events[0] <= now - self.window:
            events.popleft()
        if len(events) >= self.limit:
            return max(1, math.ceil(events[0] + self.window - now))
        events.append(now)
        if len(self.events) > 10_000:
            self._forget(now)
        return 0

    def _forget(self, now: float) -> None:
        for key in [k for k, v in self.events.items() if not v or v[-1] <= now - self.window]:
            del self.events[key]
