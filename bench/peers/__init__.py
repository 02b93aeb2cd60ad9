"""Helpers of bench/peers_bench.py: the peer systems, their timing and RAM probes, the report."""
