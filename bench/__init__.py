"""Benchmarks. Each module here has a `main()`; `make bench` runs them all in one go."""
