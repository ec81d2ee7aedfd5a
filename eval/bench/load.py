"""Load on the API: N concurrent clients asking for S seconds, counted by status, with latency percentiles.

What a load test must show is not a throughput figure but that every request ends, and how: 2xx, 4xx, 5xx by exact
status (503 for an LLM that is down, 504 for one past its deadline), client-side timeouts and connection errors.
Each client loops ``POST /v1/query`` over a fixed question mix, every fourth request streamed (SSE: the status
is read from the stream's ``error`` event when there is one; a 200 stream that ends without its ``answer`` event is
counted as ``stream_cut``). The API is any base URL; ``app.bench_wiring`` starts one in-process against a live, dead
or trickling LLM.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

QUESTIONS = (
    "How long do EU customers have to request a refund?",
    "What does ERR-4012 mean?",
    "Who approves expenses above the limit?",
    "How are refunds paid back?",
)

STREAM_ERROR_STATUS = {"service_unavailable": "503", "gateway_timeout": "504", "internal_error": "500"}
"""A stream's status line is sent before the answer: its outcome is the ``error`` event's type, as a status."""

TIMEOUT = "timeout"
"""No response within the client-side timeout."""
CONNECTION_ERROR = "connection_error"
"""The connection failed (refused, reset, closed mid-response)."""
STREAM_CUT = "stream_cut"
"""A 200 stream that ended with neither an ``answer`` nor an ``error`` event."""


def status_class(outcome: str) -> str:
    """``2xx``/``4xx``/``5xx`` for an HTTP status, the outcome itself otherwise (timeout, connection_error, ...)."""
    return f"{outcome[0]}xx" if outcome.isdigit() else outcome


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (``q`` in 0..1), rounded to 0.1; None for no values."""
    ordered = sorted(values)
    if not ordered:
        return None
    return round(ordered[max(0, math.ceil(q * len(ordered)) - 1)], 1)


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
        """2xx / 4xx / 5xx / timeout / connection_error / stream_cut counts."""
        out: Counter[str] = Counter()
        for status, count in self.statuses.items():
            out[status_class(status)] += count
        return dict(out)

    def summary(self) -> dict[str, Any]:
        by_class: dict[str, list[float]] = {}
        for status, values in self.latencies_ms.items():
            by_class.setdefault(status_class(status), []).extend(values)
        every = [v for values in self.latencies_ms.values() for v in values]

        def stats(groups: dict[str, list[float]]) -> dict[str, dict[str, float | None]]:
            return {
                key: {
                    "count": len(values),
                    "p50": percentile(values, 0.5),
                    "p90": percentile(values, 0.9),
                    "p99": percentile(values, 0.99),
                    "max": round(max(values), 1),
                }
                for key, values in sorted(groups.items())
                if values
            }

        return {
            "clients": self.clients,
            "seconds": self.seconds,
            "wall_s": round(self.wall_s, 1),
            "requests": self.requests,
            "requests_per_s": round(self.requests / self.wall_s, 2) if self.wall_s else None,
            "by_class": self.classes(),
            "by_status": dict(sorted(self.statuses.items())),
            "latency_ms": stats({**by_class, "all": every}),
            "latency_ms_by_status": stats(self.latencies_ms),
        }

    def lines(self) -> list[str]:
        summary = self.summary()
        rows = [
            f"{summary['clients']} clients x {summary['seconds']:g} s: {summary['requests']} requests "
            f"({summary['requests_per_s']}/s), wall {summary['wall_s']} s",
            "by class:  " + ", ".join(f"{k} {v}" for k, v in sorted(summary["by_class"].items())),
            "by status: " + ", ".join(f"{k} {v}" for k, v in sorted(summary["by_status"].items())),
            "",
            f"{'latency':16} {'count':>7} {'p50 ms':>10} {'p90 ms':>10} {'p99 ms':>10} {'max ms':>10}",
        ]
        groups = {**summary["latency_ms"], **summary["latency_ms_by_status"]}
        for key, stats in groups.items():
            rows.append(
                f"{key:16} {stats['count']:>7} {stats['p50']:>10} {stats['p90']:>10} {stats['p99']:>10} "
                f"{stats['max']:>10}"
            )
        return rows


def _one(client: httpx.Client, url: str, question: str, collection: str, stream: bool) -> str:
    """The request's outcome: its status (an SSE stream's ``error`` event status when it has one)."""
    body = {"question": question, "collection": collection, "stream": stream}
    if not stream:
        return str(client.post(url, json=body).status_code)
    with client.stream("POST", url, json=body) as response:
        status = str(response.status_code)
        event = None
        for line in response.iter_lines():
            if line.startswith("event: "):
                event = line[len("event: ") :]
            elif line.startswith("data: ") and event == "error":
                error = json.loads(line[len("data: ") :])["error"]
                if "status" in error:
                    return str(error["status"])
                return STREAM_ERROR_STATUS.get(error.get("type"), "5xx-stream")
            elif event == "answer" and line.startswith("data: "):
                return status
        return status if response.status_code != 200 else STREAM_CUT


def run_load(
    base_url: str | Sequence[str],
    *,
    clients: int,
    seconds: float,
    client_timeout_s: float,
    collection: str = "sample",
    questions: Sequence[str] = QUESTIONS,
    headers: dict[str, str] | None = None,
) -> LoadResult:
    """``clients`` threads loop requests to ``collection`` until ``seconds`` have passed; a request started before
    then finishes (or times out after ``client_timeout_s``). Several base URLs (API replicas) share the clients
    round-robin: client n always asks replica n mod len, as clients behind a connection-keeping balancer would."""
    result = LoadResult(clients, seconds)
    lock = threading.Lock()
    bases = [base_url] if isinstance(base_url, str) else list(base_url)
    if not bases:
        raise ValueError("run_load needs at least one base URL")
    stop_at = time.monotonic() + seconds

    def client_loop(number: int) -> None:
        url = f"{bases[number % len(bases)].rstrip('/')}/v1/query"
        with httpx.Client(timeout=client_timeout_s, headers=headers) as client:
            sent = 0
            while time.monotonic() < stop_at:
                question = questions[(number + sent) % len(questions)]
                started = time.perf_counter()
                try:
                    outcome = _one(client, url, question, collection, stream=sent % 4 == 3)
                except httpx.TimeoutException:
                    outcome = TIMEOUT
                except httpx.TransportError:
                    outcome = CONNECTION_ERROR
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
