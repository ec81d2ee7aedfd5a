"""``ragline bench ...``: latency and throughput against baselines."""

from __future__ import annotations

from app.bench_commands import bench_app as app

__all__ = ["app"]
