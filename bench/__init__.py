"""Benchmarks (scripts, not tests): see README.md."""
