"""Benchmarks: load generation, floors and the report (never part of the tests)."""
