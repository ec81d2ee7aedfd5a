"""Benchmarks: measured, never asserted. Each bench takes its parts as arguments (never importing ``app``), times
them against baselines run in the same process, and returns a typed result that ``eval.bench.report`` renders."""
