"""One module per query stage. Each stage declares what it ``reads`` and ``writes``, takes the query state, records
one trace entry (hybrid search: two) and returns the state."""
