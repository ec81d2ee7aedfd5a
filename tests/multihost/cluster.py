"""A ragline deployment on lab hosts: PostgreSQL, a Chroma server, two LLM replicas behind vllm-router, two API
replicas and ingestion workers, each on its own network namespace (see ``lab.py``).

Every part is the real program a team would run: ``postgres``, ``chroma run``, ``vllm-router``, ``ragline serve``,
``ragline worker``. The two LLM replicas are two hosts whose port leads, through a relay, to the test session's
one real vLLM server (two CPU vLLMs do not fit on two cores); killing a replica's relay makes its port refuse, as a
crashed server's would.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg

from tests.multihost.lab import Host, Lab, LabError, Process, http_ok, tail, wait_until

PYTHON = sys.executable
VENV_BIN = Path(sys.executable).parent
DB_NAME = "ragline"
API_PORT = 8080
LLM_PORT = 8000


@dataclass
class Api:
    """One ``ragline serve`` replica on its own host, with its own data dir (its BM25 cache)."""

    host: Host
    data_dir: Path
    process: Process | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host.address}:{API_PORT}"

    def client(self, timeout: float = 600) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=timeout)


@dataclass
class Cluster:
    lab: Lab
    root: Path
    env: dict[str, str]
    db: Host
    chroma: Host
    router: Host
    llm: list[Host]
    llm_relays: list[Process] = field(default_factory=list)
    apis: dict[str, Api] = field(default_factory=dict)
    workers: list[Process] = field(default_factory=list)

    def start_api(self, name: str, *, wait: bool = True) -> Api:
        """Start replica ``name``; with ``wait=False`` return at once (``wait_api`` later), so that several
        replicas and other set-up overlap their start-up."""
        api = self.apis[name]
        env = {**self.env, "RAGLINE_DATA_DIR": str(api.data_dir)}
        api.process = api.host.run(
            [PYTHON, "-m", "app.cli", "serve", "--host", api.host.address, "--port", str(API_PORT)],
            name="serve",
            env=env,
        )
        if wait:
            self.wait_api(name)
        return api

    def wait_api(self, name: str) -> None:
        api = self.apis[name]
        assert api.process is not None, f"API {name} was never started"
        wait_until(http_ok(f"{api.url}/readyz"), what=f"API {name}", timeout_s=240, process=api.process)

    def start_worker(self, host: Host, *extra: str, env: dict[str, str] | None = None) -> Process:
        env = {**self.env, "RAGLINE_DATA_DIR": str(self.root / f"{host.name}-data-{len(self.workers)}"), **(env or {})}
        process = host.run([PYTHON, "-m", "app.cli", "worker", *extra], name=f"worker{len(self.workers)}", env=env)
        self.workers.append(process)
        return process

    def logs(self) -> str:
        """The tail of every process's log: what a failing assertion prints."""
        parts = []
        for host in self.lab.hosts.values():
            for process in host.processes:
                parts.append(f"--- {host.name}/{process.name} (alive={process.alive()})\n{tail(process.log, 15)}")
        return "\n".join(parts)


def _start_postgres(lab: Lab, db: Host, root: Path) -> str:
    from tests.conftest import _as_postgres_user, _postgres_bindir

    bindir, home = _postgres_bindir(), root / "pg"
    home.mkdir()
    as_user = _as_postgres_user(home)
    data = home / "data"
    db.call([*as_user, str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust", "--no-sync"])
    with (data / "pg_hba.conf").open("a") as hba:
        hba.write("host all all 10.77.0.0/24 trust\n")  # the lab's hosts; the lab has no other network
    options = f"-h {db.address} -p 5432 -k {home} -F -c max_connections=200"
    db.call([*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(home / "log"), "-w", "start"])
    stop = [*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]
    lab.cleanups.append(lambda: db.call(stop))  # pg_ctl's postmaster is a daemon no Process tracks
    with psycopg.connect(f"postgresql://postgres@{db.address}:5432/postgres", autocommit=True) as connection:
        connection.execute(f"CREATE DATABASE {DB_NAME}")
    return f"postgresql+psycopg://postgres@{db.address}:5432/{DB_NAME}"


def _start_router(router: Host, llm: list[Host]) -> Process:
    binary = VENV_BIN / "vllm-router"
    if not binary.exists():
        raise LabError(f"{binary} is missing: install requirements/test.txt (vllm-router ships the router binary)")
    workers = [f"http://{host.address}:{LLM_PORT}" for host in llm]
    process = router.run(
        [str(binary), "--host", router.address, "--port", str(LLM_PORT), "--prometheus-host", "127.0.0.1",
         "--prometheus-port", "29000", "--policy", "round_robin", "--worker-urls", *workers],
        name="router",
    )  # fmt: skip
    wait_until(
        http_ok(f"http://{router.address}:{LLM_PORT}/v1/models"), what="vllm-router", timeout_s=60, process=process
    )
    return process


def start_cluster(lab: Lab, root: Path, *, vllm_socket: Path, generator: str, models_dir: Path) -> Cluster:
    """Build the hosts and start the shared services and both API replicas (workers are started by the tests).

    The replicas are started, not awaited: the caller overlaps their start-up with its own set-up and calls
    ``Cluster.wait_api`` for each."""
    db, chroma, router = lab.add_host("db", 2), lab.add_host("chroma", 3), lab.add_host("router", 6)
    llm = [lab.add_host("llm1", 4), lab.add_host("llm2", 5)]
    database_url = _start_postgres(lab, db, root)
    chroma_process = chroma.run(
        [str(VENV_BIN / "chroma"), "run", "--host", chroma.address, "--port", "8000", "--path", str(root / "chroma")],
        name="chroma", env={"ANONYMIZED_TELEMETRY": "False"},
    )  # fmt: skip
    relays = [
        host.run([PYTHON, "-m", "tests.multihost.relay", "tcp-listen", host.address, str(LLM_PORT), str(vllm_socket)],
                 name="relay")
        for host in llm
    ]  # fmt: skip
    for host, relay in zip(llm, relays, strict=True):
        wait_until(http_ok(f"http://{host.address}:{LLM_PORT}/v1/models"), what=f"{host.name}", timeout_s=60,
                   process=relay)  # fmt: skip
    wait_until(http_ok(f"http://{chroma.address}:8000/api/v2/heartbeat"), what="chroma", timeout_s=120,
               process=chroma_process)  # fmt: skip
    _start_router(router, llm)
    env = {
        "RAGLINE_DATABASE_URL": database_url,
        "RAGLINE_CHROMA_URL": f"http://{chroma.address}:8000",
        "RAGLINE_LLM_BASE_URL": f"http://{router.address}:{LLM_PORT}/v1",
        "RAGLINE_MODELS_DIR": str(models_dir),
        "RAGLINE_GENERATOR": generator,
        "RAGLINE_LLM_TIMEOUT_S": "600",
        "RAGLINE_WRITER_LEASE_S": "10",  # a killed worker's job is taken over after 10 s, not 30
        "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[2]), os.environ.get("PYTHONPATH", "")]),
    }
    cluster = Cluster(lab, root, env, db, chroma, router, llm, relays)
    for name, number in (("api-a", 11), ("api-b", 12)):
        host = lab.add_host(name, number)
        cluster.apis[name] = Api(host, root / f"{name}-data")
    for name in cluster.apis:
        cluster.start_api(name, wait=False)
    return cluster


def query(api: Api, question: str, **body: Any) -> dict[str, Any]:
    with api.client() as client:
        response = client.post("/v1/query", json={"question": question, **body})
    if response.status_code != 200:
        raise AssertionError(f"{api.host.name} answered {response.status_code}: {response.text[:500]}")
    return response.json()


def run_quietly(argv: list[str]) -> str:
    return subprocess.run(argv, capture_output=True, text=True, check=True).stdout
