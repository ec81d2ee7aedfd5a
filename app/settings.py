"""One settings object for the whole service.

Values come, in order of precedence, from keyword arguments, ``RAGLINE_*`` environment variables, an optional
``ragline.toml`` (path in ``RAGLINE_CONFIG``, default ``./ragline.toml``) and the defaults below. ``Settings.origins``
tells where each effective value came from, which ``ragline config show`` prints: a user debugging a deployment
needs to know *why* a value is what it is, not only what it is.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)
from sqlalchemy import make_url
from sqlalchemy.exc import ArgumentError

from app.profiles import PROFILES, fill_from_profile, profile_reranker, profile_reranker_or_none, with_options

ENV_PREFIX = "RAGLINE_"
# Upper bounds of the settings a request may set (API ``options``): each keeps one request's work, memory and
# allocations to a size the service is built for, far above any value that improves answers.
MAX_CANDIDATES = 1000


def config_file_path() -> Path:
    """The TOML file settings are read from (it need not exist)."""
    return Path(os.environ.get("RAGLINE_CONFIG", "ragline.toml"))


class Settings(BaseSettings):
    """Effective configuration of a ragline process."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid", validate_default=True)

    profile: Literal["default", "enterprise", "research", "code"] = Field(
        "default",
        description="Application profile: a named set of defaults for the settings below (app/profiles.py, "
        "docs/profiles.md); anything set explicitly still wins over it.",
    )

    # Storage
    data_dir: Path = Field(Path(".ragline"), description="Embedded Chroma, the SQLite manifest and reports live here.")
    models_dir: Path | None = Field(None, description="Converted models; default <data_dir>/models.")
    chroma_url: str | None = Field(None, description="Chroma server URL (http://host:port); unset = embedded.")
    database_url: str | None = Field(
        None,
        description="Shared database for the manifest, jobs and memory (postgresql+psycopg://user:password@host:5432/"
        "ragline); unset = SQLite files in data_dir.",
    )
    index_version_check_ms: int = Field(
        0,
        ge=0,
        le=60_000,
        description="How often a search reads its collection's version (one row) to refresh this process's BM25 "
        "and chunk cache: 0 = every search; N = a write committed elsewhere is served at most N ms late.",
    )

    @field_validator("database_url", mode="before")
    @classmethod
    def _database_url_is_one_ragline_speaks(cls, value: Any) -> Any:
        """Fail at start-up, not on the first request: an empty value means unset, anything else must be a
        PostgreSQL or SQLite URL (the error shows it without its password)."""
        if not isinstance(value, str) or not value.strip():
            return None if isinstance(value, str) else value
        try:
            url = make_url(value.strip())
        except ArgumentError:
            raise ValueError("not a database URL; expected postgresql+psycopg://user:password@host:5432/db") from None
        if url.get_backend_name() not in ("postgresql", "sqlite"):
            shown = url.render_as_string(hide_password=True)
            raise ValueError(f"{shown!r}: ragline stores its state in PostgreSQL (postgresql+psycopg://…) or SQLite")
        return value.strip()

    # Models
    embedder: str = Field("minilm-l6-v2", description="Registry name or folder of a sentence-transformers model.")
    embedder_backend: Literal["torch", "onnx", "onnx-int8"] = Field(
        "onnx", description="Engine for query embeddings (batches use torch): onnx = same vectors, faster than torch."
    )
    generator: str = Field("qwen2.5-coder-0.5b", description="Registry name of the model vLLM serves.")

    # Generator service (vLLM, OpenAI-compatible)
    llm_base_url: str = Field("http://127.0.0.1:8000/v1", description="OpenAI-compatible base URL of vLLM.")
    llm_replicas: list[str] = Field(
        default_factory=list,
        description="More OpenAI-compatible base URLs serving the same model as `llm_base_url`, as JSON "
        '(`["http://10.0.0.2:8000/v1"]`): a conversation stays on one replica (prefix cache), other requests go '
        "round-robin, and a request fails over to the next on connection errors and 5xx; unset with a router.",
    )
    llm_api_key: str = Field("not-needed", description="Bearer key sent to the LLM service.")
    llm_timeout_s: float = Field(
        180.0,
        gt=0,
        description="Deadline of one LLM generation, first byte to last, streamed or not; past it the API answers "
        "504 and the request to vLLM is aborted.",
    )
    llm_retries: int = Field(
        2,
        ge=0,
        le=10,
        description="Retries of an LLM request that failed before generating anything (connection refused or "
        "reset, 502, 503), with backoff from 0.5 s, within `llm_timeout_s`. Timeouts and 4xx are never retried.",
    )
    vllm_python: Path = Field(Path(".venv-vllm/bin/python"), description="Python of the separate vLLM env.")
    vllm_kvcache_gib: int = Field(1, ge=1, description="VLLM_CPU_KVCACHE_SPACE for a CPU vLLM server.")
    vllm_dtype: Literal["auto", "bfloat16", "float32", "float16"] = Field(
        "auto",
        description="Weights' dtype of a vLLM server ragline starts: `auto` is bfloat16 on CPUs with AVX512-BF16 "
        "or AMX and float32 elsewhere, where bfloat16 prefill is about 4x slower (docs/results/llm-dtype.md).",
    )
    vllm_max_model_len: int = Field(
        8192,
        ge=512,
        le=1_048_576,
        description="Context length vLLM allocates for; token budgets and the answer length must fit in it.",
    )
    vllm_start_timeout_s: float = Field(600.0, gt=0, description="Seconds to wait for vLLM to answer.")

    # Services
    api_host: str = Field("127.0.0.1", description="REST API bind address.")
    api_port: int = Field(8080, ge=1, le=65535, description="REST API port.")
    ui_port: int = Field(8501, ge=1, le=65535, description="Streamlit UI port.")

    # Service (REST API)
    api_keys_file: Path | None = Field(
        None, description="TOML/JSON file mapping API keys (or 'sha256:<hex>') to tenants; unset = open local mode."
    )
    max_upload_mb: float = Field(25.0, gt=0, description="Largest upload body POST /v1/documents accepts.")
    max_request_kb: float = Field(256.0, gt=0, description="Largest JSON request body any other route accepts.")

    @field_validator("api_keys_file", mode="before")
    @classmethod
    def _empty_keys_file_is_unset(cls, value: Any) -> Any:
        """``RAGLINE_API_KEYS_FILE=`` (as compose passes an unset variable) means no keys file, not ``.``."""
        return None if isinstance(value, str) and not value.strip() else value

    # Ingestion
    chunker: Literal["fixed", "semantic", "semantic-cluster", "raptor", "sentence-window"] = Field(
        "fixed", description="Chunker of an ingestion that names none (CLI `--chunker`, the upload form's field)."
    )
    chunk_size: int = Field(256, ge=16, description="Fixed chunker: chunk size in generator tokens.")
    sentence_window: int = Field(
        2,
        ge=0,
        le=10,
        description="Sentence-window chunker: sentences (or blocks) each side of an indexed sentence in the window "
        "the model reads instead of it.",
    )
    chunk_overlap: int = Field(32, ge=0, description="Fixed chunker: overlap in generator tokens.")
    ingest_batch_documents: int = Field(
        512,
        ge=1,
        description="Documents embedded and written per batch. The embedder sorts by length only within a call, so "
        "small batches pad more: on SciFact 128 documents cost 11% more padded tokens than one sorted pass, 512 2%.",
    )
    max_file_mb: float = Field(50.0, gt=0, description="Files above this size are skipped with a reason.")
    ingest_workers_in_process: bool | None = Field(
        None,
        description="Run upload jobs in the API process that accepted them (true) or only enqueue them for "
        "`ragline worker` processes (false). Unset: true with the embedded SQLite store, false with a shared "
        "`database_url` (docs/scale-out.md).",
    )
    writer_lease_s: float = Field(
        30.0,
        ge=2,
        le=3600,
        description="Lease of a process writing the index, renewed every third of it: a worker killed mid-job has "
        "its job retried by another this long after its last heartbeat.",
    )
    worker_poll_s: float = Field(
        1.0, gt=0, le=60, description="`ragline worker`: seconds between looks at an empty queue (and first backoff)."
    )
    job_max_attempts: int = Field(
        3, ge=1, le=100, description="Starts of an ingestion job by workers before one whose workers keep dying fails."
    )

    # Query
    max_question_chars: int = Field(4000, ge=10, description="Longer questions are refused with a clear error.")
    bm25_top_k: int = Field(20, ge=1, le=MAX_CANDIDATES, description="Candidates from BM25.")
    dense_top_k: int = Field(20, ge=1, le=MAX_CANDIDATES, description="Candidates from the dense search.")
    # Defaults tuned on SciFact train with `ragline eval retrieval`: convex α=0.5 nDCG@10 0.7225, RRF 0.7039,
    # BM25 (English stemming) 0.6762, dense 0.6714.
    fusion: Literal["rrf", "convex"] = Field("convex", description="Score fusion of BM25 and dense: rrf or convex.")
    rrf_k: int = Field(60, ge=1, le=10_000, description="Reciprocal rank fusion constant.")
    fusion_alpha: float = Field(0.5, ge=0, le=1, description="Convex fusion: weight of the dense score.")
    bm25_method: Literal["lucene", "robertson", "atire", "bm25l", "bm25+"] = Field(
        "lucene", description="BM25 variant."
    )
    bm25_k1: float = Field(1.2, ge=0, le=10, description="BM25 term-frequency saturation.")
    bm25_b: float = Field(0.75, ge=0, le=1, description="BM25 length normalisation.")
    bm25_stemmer: str | None = Field("english", description="Snowball stemmer language for BM25, or none.")
    bm25_stopwords: bool = Field(True, description="Drop English stopwords from BM25 terms.")
    bm25_lowercase: bool = Field(True, description="Lowercase BM25 terms.")
    dedup_threshold: float = Field(0.95, gt=0, le=1, description="Cosine above which candidates are duplicates.")
    context_top_k: int = Field(4, ge=1, le=100, description="Chunks placed in the prompt.")
    max_answer_tokens: int = Field(
        384, ge=1, description="Output tokens reserved for the answer; below vllm_max_model_len."
    )
    temperature: float = Field(0.0, ge=0, le=2, description="Sampling temperature of the generator.")

    # Context assembly (token budget, positioning, compression, abstention)
    context_budget_tokens: int = Field(
        3072,
        ge=256,
        description="Tokens for prompt plus answer, at most vllm_max_model_len; the prompt gets this less "
        "max_answer_tokens.",
    )
    # relevance by default: the default generator scores lower with edge order (docs/results/context-positioning.md)
    positioning: Literal["edge", "edge-last", "relevance", "document"] = Field(
        "relevance",
        description="Evidence order: by relevance (best first), best first and second-best last (edge), mirrored "
        "(edge-last), or document order.",
    )
    compression: Literal["off", "auto", "llmlingua", "longllmlingua", "llmlingua2"] = Field(
        "off",
        description="Evidence compression; auto compresses when evidence exceeds its budget share, or when "
        "<data_dir>/calibration.json (`ragline eval compression --calibrate`) predicts the prefill time saved beats "
        "the compression time.",
    )
    compression_model: str = Field("smollm2-135m", description="Registry name or folder of the compression LM.")
    compression_rate: float = Field(0.5, gt=0, le=1, description="Target share of evidence tokens kept by compression.")
    # 0.27 from `ragline eval abstention --scores-only` (all-MiniLM-L6-v2): no answerable question scores below it
    # (lowest: 0.338 of 27 sample-QA questions, 0.343 of 160 NQ dev questions with their gold passage), every
    # off-topic sample question does (highest 0.212 of 15); it catches only 6% of NQ questions whose gold passage is
    # withheld (on-topic but unanswered questions need the model's own "I don't know").
    abstain_threshold: float = Field(
        0.27,
        ge=-1,
        le=1,
        description="Best dense cosine below which the answer abstains (0 = never abstain). The default refuses none "
        "of the answerable questions measured and every off-topic one; recalibrate for another embedder with "
        "`ragline eval abstention --scores-only`.",
    )
    abstain_thresholds: dict[str, float] = Field(
        default_factory=dict,
        description="Per-collection cuts that replace `abstain_threshold` for that collection, as JSON "
        '(`{"nq-open-oracle": 0.5}`). Cosine scales differ between corpora and question styles: on NQ a cut of '
        "0.5 refuses 84% of questions whose gold passage is withheld, where the global default refuses 6%. "
        "`ragline eval abstention` prints the balanced cut for its NQ collection.",
    )
    answerability_check: bool = Field(
        False,
        description="After assembly, ask the generator whether the evidence answers the question (one decoding "
        "step, mostly a prefix-cache hit) and abstain below `answerability_threshold`. Catches on-topic questions "
        "whose answer is missing, which the cosine gate cannot; calibrate with `ragline eval abstention --llm-check`.",
    )
    answerability_threshold: float = Field(
        0.5,
        ge=0,
        le=1,
        description="P(yes) below which the answerability check abstains (0 = record the judgement, never abstain).",
    )
    injection_screen: bool = Field(
        True,
        description="Screen retrieved chunks for instructions aimed at the model (prompt injection): remove those "
        "sentences, keep the facts, rank the chunk lower, and list it in the trace (`screen` stage). "
        "Measured with `ragline eval injection`.",
    )
    ungrounded_answers: Literal["flag", "abstain"] = Field(
        "flag",
        description="An answer in which no sentence carries a valid citation: `flag` returns it with "
        "`grounded: false` and a warning (CLI, API and UI show it); `abstain` replaces it with the abstention text "
        "and the closest sources. Flag is the default because the support check is lexical and a paraphrased "
        "right answer may find no marker.",
    )
    hyde: bool = Field(False, description="Search with a generated hypothetical answer (HyDE) besides the question.")

    # Rerank
    reranker: str | None = Field(
        None, description="Registry name or folder of a CrossEncoder (`ragline reranker train`); unset = no rerank."
    )
    rerank_top_n: int = Field(
        30, ge=1, le=MAX_CANDIDATES, description="Fused, deduplicated candidates the cross-encoder rescores."
    )
    # retrieval.rerank.DEFAULT_MAX_LENGTH, where the measurement behind it is written down.
    rerank_max_length: int = Field(
        192, ge=16, le=512, description="Cross-encoder input tokens (query + passage) per pair."
    )
    rerank_batch_size: int = Field(32, ge=1, le=1024, description="Pairs scored per cross-encoder forward pass.")
    rerank_backend: Literal["torch", "torch-int8", "onnx", "onnx-int8"] = Field(
        "onnx-int8",
        description="Cross-encoder engine: onnx-int8 is the fastest on CPU (2.4x torch fp32 at 128 tokens), same nDCG.",
    )
    rerank_mode: Literal["isolated", "long-context"] = Field(
        "isolated",
        description="How the cross-encoder reads a candidate: `isolated` (the chunk alone) or `long-context` (the "
        "chunk with its retrieved neighbours of the same document, in document order, up to rerank_context_tokens). "
        "Measured in docs/results/sentence-window.md.",
    )
    rerank_context_tokens: int = Field(
        512,
        ge=32,
        le=512,
        description="Long-context rerank: cross-encoder input tokens (query + joint passage); 512 is MiniLM's context.",
    )
    # 0.4: chosen on `choose` for the default recipe's model and for the 31-negative one (docs/results/reranker.md).
    rerank_weight: float = Field(
        0.4, ge=0, le=1, description="Cross-encoder share of the final score, blended with fusion (1 = reranker only)."
    )

    # Conversation memory (active turns, session summary, persistent per-user memory)
    memory: bool = Field(True, description="Sessions remember: summary, recent turns and recalled facts in the prompt.")
    memory_active_turns: int = Field(3, ge=1, le=20, description="Recent exchanges kept verbatim (the active tier).")
    memory_summary_tokens: int = Field(
        512,
        ge=64,
        description="Longest session summary, in generator tokens (at most vllm_max_model_len); longer ones are "
        "archived and compressed.",
    )
    memory_budget_tokens: int = Field(
        1024,
        ge=128,
        description="Generator tokens for the whole memory context (the H term of the prompt budget), at most "
        "vllm_max_model_len.",
    )
    memory_pressure: float = Field(
        0.7, gt=0, le=1, description="Share of a memory budget at which content is evicted to the next tier."
    )

    @field_validator("chunk_overlap")
    @classmethod
    def _overlap_below_size(cls, overlap: int, info: Any) -> int:
        size = info.data.get("chunk_size")
        if size is not None and overlap >= size:
            raise ValueError(f"chunk_overlap ({overlap}) must be smaller than chunk_size ({size})")
        return overlap

    @field_validator("abstain_thresholds")
    @classmethod
    def _cuts_are_cosines(cls, cuts: dict[str, float]) -> dict[str, float]:
        bad = {name: cut for name, cut in cuts.items() if not -1 <= cut <= 1}
        if bad:
            raise ValueError(f"abstain_thresholds are cosines in [-1, 1]; out of range: {bad}")
        return cuts

    @field_validator("context_budget_tokens")
    @classmethod
    def _budget_above_reserve(cls, budget: int, info: Any) -> int:
        reserve = info.data.get("max_answer_tokens")
        if reserve is not None and budget <= reserve + 128:
            raise ValueError(
                f"context_budget_tokens ({budget}) must exceed max_answer_tokens ({reserve}) by at least 128 tokens"
            )
        return budget

    @field_validator("max_answer_tokens", "context_budget_tokens", "memory_summary_tokens", "memory_budget_tokens")
    @classmethod
    def _fits_the_served_context(cls, tokens: int, info: Any) -> int:
        """Token counts the served model could never hold are refused here, not by vLLM in the middle of a request.
        The answer needs at least one prompt token beside it, so it must stay below the context length."""
        context = info.data.get("vllm_max_model_len")
        if context is None:
            return tokens
        if info.field_name == "max_answer_tokens" and tokens >= context:
            raise ValueError(f"max_answer_tokens ({tokens}) must be below vllm_max_model_len ({context})")
        if tokens > context:
            raise ValueError(f"{info.field_name} ({tokens}) must be at most vllm_max_model_len ({context})")
        return tokens

    @property
    def runs_jobs_in_process(self) -> bool:
        """Whether the API runs upload jobs itself: ``ingest_workers_in_process``, or by default only with the
        embedded SQLite store (a shared database means workers run them)."""
        if self.ingest_workers_in_process is not None:
            return self.ingest_workers_in_process
        return self.database_url is None or make_url(self.database_url).get_backend_name() == "sqlite"

    @model_validator(mode="before")
    @classmethod
    def _profile_defaults(cls, data: Any) -> Any:
        """The profile's values for every setting not given explicitly."""
        return fill_from_profile(data) if isinstance(data, dict) else data

    @model_validator(mode="after")
    def _profile_reranker(self) -> Settings:
        """A profile that promises a rerank stage gets the demo reranker when none is configured, or fails."""
        if PROFILES[self.profile].needs_reranker and self.reranker is None:
            self.reranker = profile_reranker(self.resolved_models_dir)
        return self

    def with_options(self, options: Mapping[str, Any]) -> Settings:
        """These settings with one request's ``options`` (a ``profile`` among them) applied and validated."""
        current = self.model_dump()
        switching = options.get("profile") not in (None, self.profile)
        chosen_by_profile = PROFILES[self.profile].needs_reranker and current["reranker"] == profile_reranker_or_none(
            self.resolved_models_dir
        )
        if switching and chosen_by_profile:  # the reranker the old profile chose goes with it
            current["reranker"] = None
        defaults = {name: info.default for name, info in type(self).model_fields.items()}
        return type(self).model_validate(with_options(current, options, defaults))

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml = TomlConfigSettingsSource(settings_cls, toml_file=config_file_path())
        return (init_settings, env_settings, toml)

    @property
    def resolved_models_dir(self) -> Path:
        return self.models_dir if self.models_dir is not None else self.data_dir / "models"

    @property
    def reports_dir(self) -> Path:
        return self.data_dir / "reports"

    def as_env(self) -> dict[str, str]:
        """``RAGLINE_*`` variables that make a child process (a ``ragline serve`` replica, a worker) read these
        settings: every field that differs from its default, in the form the environment source parses (JSON for
        lists and objects, ``true``/``false`` for flags)."""
        values = self.model_dump(mode="json")
        env: dict[str, str] = {}
        for name, field in type(self).model_fields.items():
            value = values[name]
            default = field.get_default(call_default_factory=True)
            if value == (str(default) if isinstance(default, Path) else default):
                continue
            if isinstance(value, bool):
                text = "true" if value else "false"
            elif isinstance(value, (list, dict)):
                text = json.dumps(value)
            else:
                text = "" if value is None else str(value)
            env[f"{ENV_PREFIX}{name.upper()}"] = text
        return env

    def origins(self) -> dict[str, str]:
        """Where each field's value came from: ``env RAGLINE_X``, ``ragline.toml`` or ``default``."""
        toml_keys = set(TomlConfigSettingsSource(type(self), toml_file=config_file_path())().keys())
        explicit = self.model_fields_set
        origins: dict[str, str] = {}
        for name in type(self).model_fields:
            env_name = f"{ENV_PREFIX}{name.upper()}"
            if env_name in os.environ:
                origins[name] = f"env {env_name}"
            elif name in toml_keys:
                origins[name] = str(config_file_path())
            elif name in PROFILES[self.profile].values and getattr(self, name) == PROFILES[self.profile].values[name]:
                origins[name] = f"profile {self.profile}"
            elif name in explicit:
                origins[name] = "argument"
            else:
                origins[name] = "default"
        return origins


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Process-wide settings, read once."""
    return Settings()
