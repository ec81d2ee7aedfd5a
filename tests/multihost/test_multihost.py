"""ragline on several hosts: PostgreSQL, a Chroma server, two API replicas, ingestion workers and two LLM replicas
behind vllm-router, each host a network namespace inside a namespace of the test's own (``unshare --net``), so no
packet can leave the machine. The checks themselves are in ``cluster_checks.py``, run by a pytest inside that
namespace; this test starts it and reports what it printed.

The LLM replicas reach the session's real vLLM server through a Unix-socket relay (``relay.py``): the one file-system
path through which the lab meets the machine.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.vllm_server import VLLMServer
from tests.conftest import MODELS_DIR, TEST_GENERATOR

pytestmark = pytest.mark.vllm
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def vllm_socket(vllm_server: VLLMServer) -> Iterator[Path]:
    """The session's vLLM behind a Unix socket (short path: sockets are limited to 108 bytes)."""
    folder = Path(tempfile.mkdtemp(prefix="rl-"))
    socket = folder / "vllm.sock"
    relay = subprocess.Popen(
        [sys.executable, "-m", "tests.multihost.relay", "unix-listen", str(socket), vllm_server.host,
         str(vllm_server.port)],
        cwd=REPO,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while not socket.exists():
            assert relay.poll() is None and time.monotonic() < deadline, "the vLLM socket relay did not start"
            time.sleep(0.1)
        yield socket
    finally:
        relay.kill()
        relay.wait()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.timeout(2400)
@pytest.mark.long(240)  # seconds under two xdist workers, 2026-12-04
def test_a_deployment_on_several_hosts_survives_kills(vllm_socket: Path) -> None:
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        pytest.fail("the multi-host test needs `unshare` (util-linux) and `ip` (iproute2): apt-get install them")
    env = {
        **os.environ,
        "RAGLINE_LAB_VLLM_SOCKET": str(vllm_socket),
        "RAGLINE_GENERATOR": TEST_GENERATOR,
        "RAGLINE_MODELS_DIR": str(MODELS_DIR),
    }
    result = subprocess.run(
        ["unshare", "--net", "--mount", "--propagation", "private", sys.executable, "-m", "pytest", "-q", "-s",
         "-p", "no:cacheprovider", "-o", "addopts=-ra", "--durations=10",
         str(REPO / "tests" / "multihost" / "cluster_checks.py")],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=2400,
    )  # fmt: skip
    output = result.stdout + result.stderr
    print(output[-6000:])
    assert result.returncode == 0, output[-12000:]
    assert " passed" in output and "failed" not in output.splitlines()[-1], output[-3000:]
