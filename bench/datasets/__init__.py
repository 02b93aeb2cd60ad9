"""Benchmark data sets: real text corpora, encoded with the bundled model and cached on disk."""
