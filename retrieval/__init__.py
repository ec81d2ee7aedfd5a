"""Retrieval: the index (Chroma + BM25 + manifest), searchers, fusion and the query stages."""
