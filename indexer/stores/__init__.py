"""Stores: searchable structures over codes (dense blocks, binary, sparse postings)."""
