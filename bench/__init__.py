"""Benchmarks of the durable runtime: ``python -m bench`` (see bench/README.md)."""
