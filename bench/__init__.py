"""Benchmarks: timing goals live here, never as assertions in tests."""
