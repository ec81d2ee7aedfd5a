"""What one API process holds: settings, the shared heavy resources, the key ring, metrics and job runners.

Everything heavy is built on first use, not at import or app creation, so ``--help``, the OpenAPI schema and
``/healthz`` never wait for a model to load.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

from app.api.auth import KeyRing
from app.api.jobs import JobRunner
from app.api.metrics import Metrics
from app.query.pipeline import Pipeline
from app.resources import Resources
from app.settings import Settings
from retrieval.index import Index

log = logging.getLogger("ragline.api")
UNFINISHED_WRITE_S = 600.0
"""A pending document without a writer lease (written by a ragline from before leases) this old belongs to a write
that died; a younger one may still be in progress, so start-up leaves it alone. Pending documents with a writer are
rolled back exactly when that writer's lease is gone. Searches never return pending documents either way."""


class ServiceState:
    def __init__(self, settings: Settings, resources: Resources | None = None) -> None:
        self.settings = settings
        self.keys = KeyRing.load(settings.api_keys_file)
        self.metrics = Metrics()
        self._resources = resources
        self._pipelines: dict[int, Pipeline] = {}
        self._runners: dict[Path, JobRunner] = {}
        self._lock = threading.Lock()

    def resources(self) -> Resources:
        with self._lock:
            if self._resources is None:
                self._resources = Resources(self.settings)
                repair_unfinished_writes(self._resources.index)
            return self._resources

    def pipeline(self, resources: Resources) -> Pipeline:
        with self._lock:
            pipeline = self._pipelines.get(id(resources))
            if pipeline is None or pipeline.resources is not resources:
                pipeline = self._pipelines[id(resources)] = Pipeline(resources)
            return pipeline

    def jobs(self, resources: Resources) -> JobRunner:
        data_dir = resources.settings.data_dir.resolve()
        with self._lock:
            runner = self._runners.get(data_dir)
            if runner is None:
                runner = self._runners[data_dir] = JobRunner(resources)
            return runner

    def shutdown(self) -> None:
        for runner in self._runners.values():
            runner.shutdown()


def repair_unfinished_writes(index: Index, older_than_s: float = UNFINISHED_WRITE_S) -> dict[str, list[str]]:
    """Roll back documents whose writer is gone (its lease expired: it crashed), in every collection (the API does
    it when it first opens the index); a write another live process (an API replica, a worker) is doing is left
    alone. Pending rows without a writer count as gone after ``older_than_s``. Returns the rolled-back doc ids by
    collection, and logs them: the user re-uploads those files."""
    cutoff = time.time() - older_than_s
    repaired: dict[str, list[str]] = {}
    for collection in index.collections():
        if index.manifest.abandoned_documents(collection, unowned_before=cutoff):
            repaired[collection] = index.repair(collection, pending_before=cutoff, include_own=False)
            log.warning("rolled back %d unfinished document write(s) in %s", len(repaired[collection]), collection)
    return repaired
