"""Reference retrieval pipelines that ragline's retriever is benchmarked against."""
