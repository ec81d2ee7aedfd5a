"""Training and evaluating ragline's own cross-encoder reranker (no pretrained reranker installs offline)."""
