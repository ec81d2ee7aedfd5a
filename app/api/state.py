"""What one API process holds: settings, the shared heavy resources, the key ring, metrics and job runners.

Everything heavy is built on first use, not at import or app creation, so ``--help``, the OpenAPI schema and
``/healthz`` never wait for a model to load.
"""

from __future__ import annotations

import threading
from pathlib import Path

from app.api.auth import KeyRing
from app.api.jobs import JobRunner
from app.api.metrics import Metrics
from app.query.pipeline import Pipeline
from app.resources import Resources
from app.settings import Settings


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
