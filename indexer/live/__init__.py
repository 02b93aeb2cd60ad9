"""Writes: the write-ahead log, the in-memory segment, and the live collection that serves both."""
