"""Ingestion jobs: the job table and its queue (``store``), running one job (``execute``), and ``ragline worker``
(``worker``). The API accepts uploads and either runs their jobs in its own process (the embedded default) or only
enqueues them for workers (``ingest_workers_in_process``)."""
