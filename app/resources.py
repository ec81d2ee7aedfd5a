"""Process-wide heavy objects (embedder, index, generator), built once from settings.

Models take seconds to load; the API, the UI and the CLI all share these so a process loads each model once.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

from app.llm import OpenAICompatibleGenerator
from app.model_registry import MODELS, ModelRole
from app.provisioning import is_installed
from app.settings import Settings
from retrieval.bm25 import BM25Config
from retrieval.embedder import SentenceTransformerEmbedder
from retrieval.index import Index
from retrieval.long_rerank import LongContextReranker
from retrieval.rerank import CrossEncoderReranker
from retrieval.tokenize import TokenizerConfig


class ModelMissingError(FileNotFoundError):
    """A model the configuration names is not provisioned."""


def resolve_model_dir(settings: Settings, name: str, role: ModelRole) -> Path:
    """A registry name resolves under the models dir; anything else is taken as a folder path."""
    spec = MODELS.get(name)
    if spec is None:
        path = Path(name)
        if not path.is_dir():
            raise ModelMissingError(f"{role.value} {name!r} is neither a known model nor a folder")
        return path
    if not is_installed(spec, settings.resolved_models_dir):
        quality = " --quality" if spec.quality_only else ""
        raise ModelMissingError(
            f"the {role.value} model {name!r} is not installed in {settings.resolved_models_dir}: "
            f"run `ragline models install{quality}`"
        )
    return spec.folder(settings.resolved_models_dir)


def resolve_reranker(settings: Settings, name: str) -> str | Path:
    """A registry name, a model trained into the models dir (``ragline reranker train``), a folder or a hub id."""
    if name in MODELS:
        return resolve_model_dir(settings, name, MODELS[name].role)
    trained = settings.resolved_models_dir / name
    if not Path(name).exists() and trained.is_dir():
        return trained
    return name


class Resources:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._rerankers: dict[tuple[str, int, int, str], CrossEncoderReranker] = {}
        self._long_rerankers: dict[tuple[str, int, int, str], LongContextReranker] = {}

    @cached_property
    def reranker(self) -> CrossEncoderReranker | None:
        """The configured cross-encoder, loaded and checked now (a bad folder fails at start-up), or None."""
        return self.reranker_for(self.settings)

    def reranker_for(self, settings: Settings) -> CrossEncoderReranker | None:
        """The reranker ``settings`` name (per-request options may name another); each one loads once."""
        if settings.reranker is None:
            return None
        key = (settings.reranker, settings.rerank_max_length, settings.rerank_batch_size, settings.rerank_backend)
        if key not in self._rerankers:
            self._rerankers[key] = CrossEncoderReranker(
                resolve_reranker(self.settings, settings.reranker),
                max_length=settings.rerank_max_length,
                batch_size=settings.rerank_batch_size,
                backend=settings.rerank_backend,
            )
        return self._rerankers[key]

    def long_context_reranker_for(self, settings: Settings) -> LongContextReranker | None:
        """The reranker of ``settings`` loaded at ``rerank_context_tokens`` for joint passages, or None; each
        loads once."""
        if settings.reranker is None:
            return None
        joint = settings.model_copy(update={"rerank_max_length": settings.rerank_context_tokens})
        key = (settings.reranker, settings.rerank_context_tokens, settings.rerank_batch_size, settings.rerank_backend)
        if key not in self._long_rerankers:
            reranker = self.reranker_for(joint)
            assert reranker is not None
            self._long_rerankers[key] = LongContextReranker(reranker)
        return self._long_rerankers[key]

    @cached_property
    def embedder(self) -> SentenceTransformerEmbedder:
        return SentenceTransformerEmbedder(
            resolve_model_dir(self.settings, self.settings.embedder, ModelRole.EMBEDDER),
            query_backend=self.settings.embedder_backend,
        )

    @cached_property
    def generator_dir(self) -> Path:
        return resolve_model_dir(self.settings, self.settings.generator, ModelRole.GENERATOR)

    @cached_property
    def index(self) -> Index:
        return Index(
            self.settings.data_dir,
            self.embedder,
            chroma_url=self.settings.chroma_url,
            bm25_config=bm25_config(self.settings),
            database_url=self.settings.database_url,
            lease_s=self.settings.writer_lease_s,
            version_check_ms=self.settings.index_version_check_ms,
        )

    @cached_property
    def generator(self) -> OpenAICompatibleGenerator:
        return OpenAICompatibleGenerator(
            self.settings.llm_base_url,
            model=served_model_name(self.settings),
            api_key=self.settings.llm_api_key,
            timeout_s=self.settings.llm_timeout_s,
            retries=self.settings.llm_retries,
            replicas=self.settings.llm_replicas,
        )


def bm25_config(settings: Settings) -> BM25Config:
    tokenizer = TokenizerConfig(
        lowercase=settings.bm25_lowercase,
        stopwords="en" if settings.bm25_stopwords else None,
        stemmer=settings.bm25_stemmer or None,
    )
    return BM25Config(method=settings.bm25_method, k1=settings.bm25_k1, b=settings.bm25_b, tokenizer=tokenizer)


def served_model_name(settings: Settings) -> str:
    """vLLM serves the generator under its registry name (or the folder's name)."""
    return Path(settings.generator).name
