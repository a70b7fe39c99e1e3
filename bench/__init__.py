"""Benchmark harness for ``GET /api/car_driver/parking_sessions/current`` (see bench/README.md)."""
