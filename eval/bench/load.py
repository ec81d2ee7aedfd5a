"""Load on the API: N concurrent clients asking for S seconds, counted by status, with latency percentiles.

What a load test must show is not a throughput figure but that every request ends, and how: 2xx, 4xx, 5xx by exact
status (503 for an LLM that is down, 504 for one past its deadline), client-side timeouts and connection errors.
Each client loops ``POST /v1/query`` over a fixed question mix, every fourth request streamed (SSE: the status
is read from the stream's ``error`` event when there is one). The API is any base URL; ``app.bench_wiring``
starts one in-process against a live, dead or trickling LLM.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from statistics import median
from typing import Any

import httpx

QUESTIONS = (
    "How long do EU customers have to request a refund?",
    "What does ERR-4012 mean?",
    "Who approves expenses above the limit?",
    "How are refunds paid back?",
)


@dataclass
class LoadResult:
    clients: int
    seconds: float
    statuses: Counter[str] = field(default_factory=Counter)
    latencies_ms: dict[str, list[float]] = field(default_factory=dict)
    wall_s: float = 0.0

    @property
    def requests(self) -> int:
        return sum(self.statuses.values())

    def classes(self) -> dict[str, int]:
        """2xx / 4xx / 5xx / timeout / error counts."""
        out: Counter[str] = Counter()
        for status, count in self.statuses.items():
            out[f"{status[0]}xx" if status.isdigit() else status] += count
        return dict(out)

    def summary(self) -> dict[str, Any]:
        def pct(values: Sequence[float], q: float) -> float | None:
            ordered = sorted(values)
            return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1) if ordered else None

        every = [v for values in self.latencies_ms.values() for v in values]
        return {
            "clients": self.clients,
            "seconds": self.seconds,
            "wall_s": round(self.wall_s, 1),
            "requests": self.requests,
            "requests_per_s": round(self.requests / self.wall_s, 2) if self.wall_s else None,
            "by_class": self.classes(),
            "by_status": dict(self.statuses),
            "latency_ms": {
                key: {"p50": round(median(values), 1), "p99": pct(values, 0.99), "max": round(max(values), 1)}
                for key, values in sorted({**self.latencies_ms, "all": every}.items())
                if values
            },
        }

    def lines(self) -> list[str]:
        summary = self.summary()
        rows = [
            f"{summary['clients']} clients x {summary['seconds']:g} s: {summary['requests']} requests "
            f"({summary['requests_per_s']}/s), wall {summary['wall_s']} s",
            "by class:  " + ", ".join(f"{k} {v}" for k, v in sorted(summary["by_class"].items())),
            "by status: " + ", ".join(f"{k} {v}" for k, v in sorted(summary["by_status"].items())),
            f"{'':10} {'p50 ms':>10} {'p99 ms':>10} {'max ms':>10}",
        ]
        for key, stats in summary["latency_ms"].items():
            rows.append(f"{key:10} {stats['p50']:>10} {stats['p99']:>10} {stats['max']:>10}")
        return rows


def _one(client: httpx.Client, url: str, body: dict[str, Any]) -> str:
    """The request's outcome: its status, or for a stream (whose status line is sent before the answer) the status
    its ``error`` event carries when it has one."""
    stream = bool(body["stream"])
    if not stream:
        return str(client.post(url, json=body).status_code)
    with client.stream("POST", url, json=body) as response:
        status = str(response.status_code)
        event = None
        for line in response.iter_lines():
            if line.startswith("event: "):
                event = line[len("event: ") :]
            elif line.startswith("data: ") and event == "error":
                return str(json.loads(line[len("data: ") :])["error"]["status"])
        return status


def run_load(
    base_url: str,
    *,
    clients: int,
    seconds: float,
    client_timeout_s: float,
    collection: str = "sample",
    questions: Sequence[str] = QUESTIONS,
    headers: dict[str, str] | None = None,
) -> LoadResult:
    """``clients`` threads loop requests until ``seconds`` have passed; a request started before then finishes."""
    result = LoadResult(clients, seconds)
    lock = threading.Lock()
    url = f"{base_url.rstrip('/')}/v1/query"
    stop_at = time.monotonic() + seconds

    def client_loop(number: int) -> None:
        with httpx.Client(timeout=client_timeout_s, headers=headers) as client:
            sent = 0
            while time.monotonic() < stop_at:
                question = questions[(number + sent) % len(questions)]
                started = time.perf_counter()
                try:
                    body = {"question": question, "collection": collection, "stream": sent % 4 == 3}
                    outcome = _one(client, url, body)
                except httpx.TimeoutException:
                    outcome = "timeout"
                except httpx.TransportError:
                    outcome = "error"
                elapsed = (time.perf_counter() - started) * 1000
                with lock:
                    result.statuses[outcome] += 1
                    result.latencies_ms.setdefault(outcome, []).append(elapsed)
                sent += 1

    started = time.perf_counter()
    threads = [threading.Thread(target=client_loop, args=(n,), daemon=True) for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    result.wall_s = time.perf_counter() - started
    return result
