"""Chunkers turn a document into retrievable chunks; one module per strategy."""
