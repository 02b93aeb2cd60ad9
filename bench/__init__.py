"""Benchmarks and their data builders; never imported by the package."""
