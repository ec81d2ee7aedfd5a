"""Evaluation: datasets, retrieval and answer metrics, reports."""
