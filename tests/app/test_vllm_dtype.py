"""The weights' dtype of a vLLM server ragline starts: bfloat16 only where the CPU computes in it natively."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from app.settings import Settings
from app.vllm_server import VLLMServer, cpu_flags, resolve_dtype

AVX2_ONLY = frozenset({"fpu", "sse4_2", "avx", "avx2", "fma"})


def test_auto_is_float32_without_native_bfloat16_and_bfloat16_with_it() -> None:
    assert resolve_dtype("auto", AVX2_ONLY) == "float32"
    assert resolve_dtype("auto", AVX2_ONLY | {"avx512f", "avx512_bf16"}) == "bfloat16"
    assert resolve_dtype("auto", AVX2_ONLY | {"amx_bf16", "amx_tile"}) == "bfloat16"
    assert resolve_dtype("auto", frozenset()) == "float32"  # no /proc/cpuinfo: the safe choice


def test_an_explicit_dtype_is_kept_and_an_unknown_one_is_refused() -> None:
    assert resolve_dtype("bfloat16", AVX2_ONLY) == "bfloat16"
    with pytest.raises(ValueError, match="auto, bfloat16, float32, float16"):
        resolve_dtype("int3", AVX2_ONLY)
    with pytest.raises(ValueError, match="vllm_dtype"):
        Settings(vllm_dtype="int3")  # type: ignore[arg-type]


def test_cpu_flags_are_read_from_cpuinfo(tmp_path: Path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nvendor_id\t: AuthenticAMD\nflags\t\t: fpu avx2 fma\n\nprocessor\t: 1\n")
    assert cpu_flags(cpuinfo) == frozenset({"fpu", "avx2", "fma"})
    assert cpu_flags(tmp_path / "missing") == frozenset()
    assert "fpu" in cpu_flags() or not Path("/proc/cpuinfo").exists()  # this machine's own file parses


def test_the_server_command_carries_the_resolved_dtype(tmp_path: Path) -> None:
    server = VLLMServer(tmp_path, "m", python=Path(sys.executable), dtype="float32", log_path=tmp_path / "v.log")
    command = server.command()
    assert command[command.index("--dtype") + 1] == "float32"
    auto = VLLMServer(tmp_path, "m", python=Path(sys.executable), log_path=tmp_path / "v.log")
    assert auto.dtype == resolve_dtype("auto", cpu_flags())
