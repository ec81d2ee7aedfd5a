"""The query path: the pipeline, the stages it runs (``stages/``, one module each), how they are built from
settings (``build``) and checked (``wiring``), and what they share (``budget``, ``prompt``, ``citation_check``,
``outcome``)."""
