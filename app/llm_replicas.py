"""Which LLM replica a request goes to: the same one for the same conversation, and never one that just failed.

ragline can be pointed at several OpenAI-compatible servers serving the same model (``llm_base_url`` plus
``llm_replicas``), or at one router in front of them (then this list has one entry and the router chooses).

- **Affinity.** vLLM's prefix cache only pays when a conversation's next turn lands on the server that holds its
  history. A request made inside ``retrieval.llm_affinity.llm_affinity(key)`` (the memory service sets the
  session's key) is routed by rendezvous hashing of that key: the same key picks the same replica while it is
  up, and when a replica is added or removed only the keys that hashed to it move. A request without a key goes
  round-robin.
- **Failover.** A replica that refused a connection or answered 5xx is skipped for ``cooldown_s``; the request
  moves to the next one in its order. After the cool-down it is tried again (its first request is the probe).
"""

from __future__ import annotations

import hashlib
import itertools
import threading
import time
from collections.abc import Sequence

COOLDOWN_S = 10.0


def _weight(key: str, url: str) -> int:
    return int.from_bytes(hashlib.blake2b(f"{key}\x00{url}".encode(), digest_size=8).digest(), "big")


class ReplicaSet:
    """Base URLs of interchangeable servers, with the time until which each is skipped after a failure."""

    def __init__(self, urls: Sequence[str], cooldown_s: float = COOLDOWN_S) -> None:
        cleaned = list(dict.fromkeys(url.rstrip("/") for url in urls if url.strip()))
        if not cleaned:
            raise ValueError("an LLM replica set needs at least one base URL")
        if cooldown_s < 0:
            raise ValueError(f"cooldown_s must be 0 or more, got {cooldown_s}")
        self.urls = tuple(cleaned)
        self.cooldown_s = cooldown_s
        self._down_until: dict[str, float] = {}
        self._round_robin = itertools.count()
        self._lock = threading.Lock()

    def order(self, key: str | None = None) -> list[str]:
        """Every replica, in the order one request should try them: by affinity (or round-robin), those in
        their cool-down last (still tried, so that a set whose replicas all failed recently is not refused)."""
        if key is None:
            start = next(self._round_robin) % len(self.urls)
            ranked = list(self.urls[start:] + self.urls[:start])
        else:
            ranked = sorted(self.urls, key=lambda url: _weight(key, url), reverse=True)
        now = time.monotonic()
        with self._lock:
            down = {url for url, until in self._down_until.items() if until > now}
        return [url for url in ranked if url not in down] + [url for url in ranked if url in down]

    def mark_down(self, url: str) -> None:
        with self._lock:
            self._down_until[url] = time.monotonic() + self.cooldown_s

    def mark_up(self, url: str) -> None:
        with self._lock:
            self._down_until.pop(url, None)

    def is_down(self, url: str) -> bool:
        with self._lock:
            return self._down_until.get(url, 0.0) > time.monotonic()
