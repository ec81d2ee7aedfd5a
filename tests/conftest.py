"""Shared fixtures: real models from the provisioned models folder, a real index, a real vLLM server.

Models are provisioned by `./run test` (`ragline models install`) before pytest starts; a missing model fails
the fixture with the command to run, never a skip that would hide it.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from app.model_registry import MODELS
from app.provisioning import is_installed
from app.resources import Resources
from app.settings import Settings
from app.vllm_server import VLLMServer, VLLMStartError, free_port
from ingest.samples import sample_corpus_dir
from retrieval.rerank import CrossEncoderReranker
from retrieval.store.leases import release_process_leases

REPO = Path(__file__).resolve().parent.parent
MODELS_DIR = Path(os.environ.get("RAGLINE_MODELS_DIR", REPO / ".ragline" / "models"))
TEST_GENERATOR = os.environ.get("RAGLINE_TEST_GENERATOR", "qwen2.5-coder-0.5b")

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def require_model(name: str) -> Path:
    spec = MODELS[name]
    if not is_installed(spec, MODELS_DIR):
        pytest.fail(f"model {name} is not provisioned in {MODELS_DIR}: run `ragline models install`")
    return spec.folder(MODELS_DIR)


def make_settings(data_dir: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {"data_dir": data_dir, "models_dir": MODELS_DIR, "generator": TEST_GENERATOR}
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


EnvFactory = Callable[..., dict[str, str]]


@pytest.fixture(scope="session")
def settings_for() -> Callable[..., Settings]:
    """Settings for a data dir, with the provisioned models and the test generator."""
    return make_settings


@pytest.fixture(scope="session")
def models_env() -> EnvFactory:
    """Environment for a `ragline` subprocess: a given data dir, the provisioned models, the test generator."""

    def build(data_dir: Path, **extra: str) -> dict[str, str]:
        return {
            **os.environ,
            "RAGLINE_DATA_DIR": str(data_dir),
            "RAGLINE_MODELS_DIR": str(MODELS_DIR),
            "RAGLINE_GENERATOR": TEST_GENERATOR,
            **extra,
        }

    return build


@pytest.fixture(scope="session")
def models_dir() -> Path:
    """The provisioned models folder the tests read."""
    return MODELS_DIR


@pytest.fixture(scope="session")
def model_dir() -> Callable[[str], Path]:
    """``model_dir(name)``: a provisioned model's folder, or a failure that says how to provision it."""
    return require_model


@pytest.fixture(scope="session")
def embedder_dir() -> Path:
    return require_model("minilm-l6-v2")


@pytest.fixture(scope="session")
def generator_dir() -> Path:
    return require_model(TEST_GENERATOR)


@pytest.fixture(scope="module")
def cross_encoder_dir(tmp_path_factory: pytest.TempPathFactory, embedder_dir: Path) -> Path:
    """A real CrossEncoder folder: the MiniLM encoder with a freshly initialised (seeded) one-logit head.

    Its scores carry no relevance, but they are real model outputs, which is what the rerank stage's contract
    (order by the model's score, record it) and the engine comparisons (onnx against torch) need."""
    import torch
    from sentence_transformers.cross_encoder import CrossEncoder

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("cross-encoder")
    CrossEncoder(str(embedder_dir), num_labels=1, device="cpu", local_files_only=True).save_pretrained(str(folder))
    return folder


@pytest.fixture(scope="module")
def reranker(cross_encoder_dir: Path) -> CrossEncoderReranker:
    """The rerank engine over ``cross_encoder_dir`` (torch, 128-token pairs)."""
    return CrossEncoderReranker(cross_encoder_dir, max_length=128, batch_size=4)


@pytest.fixture(scope="session")
def sample_resources(tmp_path_factory: pytest.TempPathFactory, embedder_dir: Path, generator_dir: Path) -> Resources:
    """The sample corpus ingested once into a fresh data dir (real Chroma, real BM25, real embedder)."""
    from app.ingestion import run_ingest

    settings = make_settings(tmp_path_factory.mktemp("sample-data"))
    summary = run_ingest(settings, sample_corpus_dir(), "sample", prune=False, meta={}, chunker="fixed")
    assert not summary.failed, summary.failed
    return Resources(settings)


def _test_vllm(log_dir: Path) -> VLLMServer:
    return VLLMServer(
        MODELS[TEST_GENERATOR].folder(MODELS_DIR),
        served_name=TEST_GENERATOR,
        python=REPO / ".venv-vllm" / "bin" / "python",
        port=int(os.environ.get("RAGLINE_TEST_VLLM_PORT") or free_port()),
        max_model_len=4096,
        kvcache_gib=1,
        log_path=log_dir / "vllm.log",
    )


_EARLY_VLLM: list[VLLMServer] = []
"""The session's vLLM when ``pytest_collection_finish`` launched it ahead of the first test that needs it."""


def _xdist_controller(config: pytest.Config) -> bool:
    """True in the controller of a pytest-xdist run (``-n N``): it hands tests to worker processes and runs none."""
    return getattr(config.option, "dist", "no") != "no" and not hasattr(config, "workerinput")


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist, one vLLM serves every worker: the controller launches it, without waiting, before the
    workers start, and hands them its port in RAGLINE_TEST_VLLM_PORT (the variable that makes ``vllm_server``
    reuse a running server). A server per worker would double the two CPU minutes of start-up and the memory.
    ``pytest_sessionfinish`` stops it when the run ends."""
    if not _xdist_controller(config) or os.environ.get("RAGLINE_TEST_VLLM_PORT"):
        return
    if server := _launch_early_vllm():
        os.environ["RAGLINE_TEST_VLLM_PORT"] = str(server.port)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Modules holding a test marked ``long(seconds)`` run first, longest first, each in its own order: under
    pytest-xdist a worker then ends on short tests, not alone on a four-minute test while the other one waits
    (``./run test`` passes ``--no-loadscope-reorder``, else xdist sends the modules with the most tests first)."""
    seconds: dict[Path, float] = {}
    for item in items:
        if marker := item.get_closest_marker("long"):
            seconds[item.path] = max(seconds.get(item.path, 0.0), float(marker.args[0]))
    items.sort(key=lambda item: -seconds.get(item.path, 0.0))


def pytest_collection_finish(session: pytest.Session) -> None:
    """Launch the session's vLLM as soon as the collected tests show that one needs it, without waiting: its
    start-up (model load and compilation, about two minutes on a CPU) then overlaps the tests that run before the
    first one that uses it. Anything missing is left to the ``vllm_server`` fixture, which fails with the fix."""
    if session.config.option.collectonly or os.environ.get("RAGLINE_TEST_VLLM_PORT"):
        return
    if any("vllm_server" in getattr(item, "fixturenames", ()) for item in session.items):
        _launch_early_vllm()


def _launch_early_vllm() -> VLLMServer | None:
    """Start the test vLLM without waiting and keep it in ``_EARLY_VLLM``; None when the generator is not installed
    or will not start (each test that needs it then fails through ``vllm_server`` with the fix)."""
    if not is_installed(MODELS[TEST_GENERATOR], MODELS_DIR):
        return None
    server = _test_vllm(Path(tempfile.mkdtemp(prefix="ragline-test-vllm-")))
    try:
        server.start(wait=False)
    except VLLMStartError:
        return None
    _EARLY_VLLM.append(server)
    return server


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Stop an early vLLM that no test ended up using (a run stopped by ``-x`` before the first live test), and the
    one an xdist controller shared with its workers."""
    for server in _EARLY_VLLM:
        server.stop()


@pytest.fixture(scope="session")
def vllm_server(tmp_path_factory: pytest.TempPathFactory, generator_dir: Path) -> Iterator[VLLMServer]:
    """A real vLLM server on a free 127.0.0.1 port, serving the test generator; stopped after the session. Usually
    already launched by ``pytest_collection_finish``; this waits for it to answer."""
    if os.environ.get("RAGLINE_TEST_VLLM_PORT"):  # reuse a server already serving the test generator
        server = _test_vllm(tmp_path_factory.mktemp("vllm"))
        server.wait_ready(timeout_s=600)
        yield server
        return
    if _EARLY_VLLM:
        server = _EARLY_VLLM[0]
        server.wait_ready(timeout_s=600)
    else:
        server = _test_vllm(tmp_path_factory.mktemp("vllm"))
        server.start(timeout_s=600)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def live_resources(sample_resources: Resources, vllm_server: VLLMServer) -> Resources:
    """Sample index plus a generator client pointed at the session's vLLM server."""
    settings = sample_resources.settings.model_copy(update={"llm_base_url": vllm_server.base_url})
    resources = Resources(settings)
    resources.__dict__["index"] = sample_resources.index
    resources.__dict__["embedder"] = sample_resources.embedder
    return resources


@pytest.fixture(scope="session")
def memory_resources(request: pytest.FixtureRequest, sample_resources: Resources) -> Resources:
    """The live sample resources, or the same over an already running vLLM: ``RAGLINE_TEST_LLM_BASE_URL`` points
    the memory and sessions tests at one (for example the one a benchmark is using) instead of starting a second
    server on a machine that has room for one."""
    url = os.environ.get("RAGLINE_TEST_LLM_BASE_URL")
    if not url:
        return request.getfixturevalue("live_resources")
    resources = Resources(sample_resources.settings.model_copy(update={"llm_base_url": url}))
    resources.__dict__["index"] = sample_resources.index
    resources.__dict__["embedder"] = sample_resources.embedder
    return resources


# ---- a real PostgreSQL server for the store tests ---------------------------------------------------------------
POSTGRES_INSTALL = "apt-get install -y postgresql (./run test does it when initdb is missing)"


def _postgres_bindir() -> Path:
    """The folder of ``initdb``/``pg_ctl``: on PATH, or Debian's versioned /usr/lib/postgresql/<major>/bin."""
    found = shutil.which("initdb")
    candidates = [found] if found else sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
    if not candidates:
        pytest.fail(
            f"PostgreSQL is not installed (no initdb on PATH or under /usr/lib/postgresql/*/bin): {POSTGRES_INSTALL}"
        )
    return Path(candidates[0]).parent


def _as_postgres_user(root: Path) -> list[str]:
    """PostgreSQL refuses to run as root: as root, hand ``root`` to the ``postgres`` system user and run as it."""
    if os.geteuid() != 0:
        return []
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "postgres"], check=True)
    shutil.chown(root, "postgres", "postgres")
    return ["runuser", "-u", "postgres", "--"]


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """A throwaway PostgreSQL cluster on 127.0.0.1 and a free port (trust auth, no fsync); yields its admin URL."""
    bindir = _postgres_bindir()
    root = Path(tempfile.mkdtemp(prefix="ragline-pg-"))  # not under pytest's root-only tmp: postgres must enter it
    as_user = _as_postgres_user(root)
    data, port = root / "data", free_port()

    def run(*args: str) -> None:
        subprocess.run([*as_user, *args], check=True, capture_output=True, text=True)

    try:
        run(str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync")
        options = f"-h 127.0.0.1 -p {port} -k {root} -F -c max_connections=200"
        run(str(bindir / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(root / "log"), "-w", "start")
    except subprocess.CalledProcessError as exc:
        log = (root / "log").read_text() if (root / "log").exists() else ""
        shutil.rmtree(root, ignore_errors=True)
        pytest.fail(f"could not start PostgreSQL from {bindir}: {exc.stderr}{exc.stdout}{log}")
    url = f"postgresql+psycopg://postgres@127.0.0.1:{port}"
    try:
        yield url
    finally:
        release_process_leases(url)  # else their heartbeats keep calling the stopped server until the session ends
        subprocess.run([*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"], check=False)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server: str) -> str:
    """A new, empty database on the test server, so every test starts from nothing."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = postgres_server.replace("postgresql+psycopg://", "postgresql://") + "/postgres"
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f"CREATE DATABASE {name}")
    return f"{postgres_server}/{name}"


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest) -> str | None:
    """Each store test once per engine: None is the embedded SQLite file, else a fresh PostgreSQL database."""
    return None if request.param == "sqlite" else request.getfixturevalue("postgres_url")
