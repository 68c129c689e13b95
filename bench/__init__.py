"""Benchmarks of mexc-paper: `python -m bench` (see docs/benchmarks.md)."""
