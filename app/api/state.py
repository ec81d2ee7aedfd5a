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
"""A document pending this long belongs to a write that died (a write is pending for the seconds its vectors take
to store); a younger one may be another process's write in progress, so start-up leaves it alone. Searches never
return pending documents either way."""


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
    """Roll back documents a crashed writer left pending for over ``older_than_s``, in every collection (the API
    does it when it first opens the index); returns the rolled-back doc ids by collection, and logs them: the user
    re-uploads those files."""
    cutoff = time.time() - older_than_s
    repaired: dict[str, list[str]] = {}
    for collection in index.collections():
        if index.manifest.pending_documents(collection, updated_before=cutoff):
            repaired[collection] = index.repair(collection, pending_before=cutoff)
            log.warning("rolled back %d unfinished document write(s) in %s", len(repaired[collection]), collection)
    return repaired
