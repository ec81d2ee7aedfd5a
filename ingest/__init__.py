"""Ingestion: loaders, chunkers and the incremental ingestion job."""
