"""Cross-encoder reranking: fused, deduplicated candidates rescored by a model that reads query and passage together.

Bi-encoder (dense) and BM25 scores are computed without ever looking at query and passage side by side; a
cross-encoder does, which is why it reorders the top of a hybrid list well, and why it is run over a few dozen
candidates only. The model is a sentence-transformers ``CrossEncoder`` folder (``ragline reranker train`` makes one
offline) or, for users with a model hub, a hub id. The folder is checked when the reranker is built, so a wrong
path or a bi-encoder folder fails at start-up and not at the first question.
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np

from retrieval.types import Hit

RerankBackend = Literal["torch", "torch-int8", "onnx", "onnx-int8"]
"""The engine that runs the cross-encoder: torch (fp32, or Linear layers dynamically quantised to int8) or
onnxruntime on an export of the same weights (fp32, or dynamic int8 MatMuls)."""
RERANK_BACKENDS: tuple[str, ...] = get_args(RerankBackend)
DEFAULT_MAX_LENGTH = 192
"""Tokens per (query, passage) pair: the length the 3-layer SciFact rerankers (trained on 128-token pairs) chose on
`choose` under the fit/choose/report protocol; longer passages than a model saw in training can still help it. The
default training recipe's 2-layer models are measured at 128 tokens, and `ragline reranker train`/`eval` print the
length each model was measured at (docs/results/reranker.md)."""
_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")


class RerankerError(ValueError):
    """A reranker that cannot be used; the message says what is wrong and how to get a usable one."""


def check_cross_encoder_folder(folder: Path) -> None:
    """Raise ``RerankerError`` unless ``folder`` holds a single-score sentence-transformers CrossEncoder.

    sentence-transformers silently *converts* a bi-encoder folder into a CrossEncoder with a random head, which
    would rerank by noise; so the folder's own metadata decides, before anything is loaded.
    """
    train_hint = "train one with `ragline reranker train` or point RAGLINE_RERANKER at a CrossEncoder folder"
    if not folder.is_dir():
        raise RerankerError(f"reranker folder {folder} does not exist: {train_hint}")
    st_config = folder / "config_sentence_transformers.json"
    hf_config = folder / "config.json"
    if not hf_config.is_file():
        raise RerankerError(f"{folder} is not a model folder (no config.json): {train_hint}")
    try:
        config = json.loads(hf_config.read_text())
        model_type = json.loads(st_config.read_text()).get("model_type") if st_config.is_file() else None
    except (OSError, json.JSONDecodeError) as exc:
        raise RerankerError(f"{folder}: unreadable model configuration ({exc})") from exc
    architectures = config.get("architectures") or []
    modules = folder / "modules.json"
    if model_type is None and modules.is_file() and "Pooling" in modules.read_text():
        model_type = "SentenceTransformer"
    if model_type is not None and model_type != "CrossEncoder":
        raise RerankerError(f"{folder} holds a {model_type} (a bi-encoder), not a cross-encoder: {train_hint}")
    if model_type is None and not any(str(a).endswith("ForSequenceClassification") for a in architectures):
        raise RerankerError(f"{folder} is not a cross-encoder (architectures {architectures}): {train_hint}")
    labels = config.get("num_labels") or len(config.get("id2label") or {}) or 1
    if labels != 1:
        raise RerankerError(f"{folder} is a {labels}-label classifier; a reranker must output one score")


class CrossEncoderReranker:
    """Scores (query, passage) pairs with a CrossEncoder; loads once, validates first, thread-safe to call.

    ``backend`` picks the engine (see ``RerankBackend``). On two idle CPU cores, top-20 pairs of 128 tokens through
    a 3-layer MiniLM took 216 ms in torch fp32, 129 ms in torch int8, 186 ms in onnxruntime fp32 and 90 ms in
    onnxruntime int8, at the same held-out nDCG within 0.1 point (``ragline reranker eval --backends`` measures it).
    The onnx engines export a local folder's weights once; a hub id runs on the torch engines only.
    """

    def __init__(
        self,
        source: str | Path,
        *,
        max_length: int = DEFAULT_MAX_LENGTH,
        batch_size: int = 32,
        backend: RerankBackend = "torch",
        threads: int | None = None,
    ) -> None:
        if max_length <= 0 or batch_size <= 0:
            raise ValueError(f"max_length and batch_size must be positive, got {max_length}, {batch_size}")
        if backend not in RERANK_BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(RERANK_BACKENDS)}, got {backend!r}")
        path = Path(source)
        is_hub_id = not path.exists() and not str(source).startswith((".", "/", "~")) and _HUB_ID.fullmatch(str(source))
        if is_hub_id and backend.startswith("onnx"):
            raise RerankerError(
                f"the {backend} engine exports a local CrossEncoder folder, and {source!r} is a hub id: save the model "
                "to a folder and name that, or set RAGLINE_RERANK_BACKEND=torch"
            )
        if not is_hub_id:
            check_cross_encoder_folder(path)
        self._lock = threading.Lock()
        self._model: Any = None
        self._onnx: Any = None
        if backend.startswith("onnx"):
            from retrieval.onnx_cross_encoder import OnnxCrossEncoder
            from retrieval.onnx_export import OnnxExportError

            try:
                self._onnx = OnnxCrossEncoder(
                    path,
                    max_length=max_length,
                    variant="int8" if backend == "onnx-int8" else "fp32",
                    threads=threads or _cpu_threads(),
                )
            except (OSError, OnnxExportError) as exc:
                raise RerankerError(f"could not load the reranker {source!r} with onnxruntime: {exc}") from exc
        else:
            self._model = _load_torch(source, max_length, bool(is_hub_id), int8=backend == "torch-int8")
        self.source = str(source)
        self.max_length = max_length
        self.batch_size = batch_size
        self.backend: RerankBackend = backend

    @property
    def name(self) -> str:
        return Path(self.source).name + ("" if self.backend == "torch" else f" ({self.backend})")

    def score(self, query: str, passages: Sequence[str]) -> np.ndarray:
        """Relevance of each passage to ``query`` (sigmoid of the logit, 0..1), in the order given."""
        if not passages:
            return np.zeros(0, dtype=np.float32)
        pairs = [(query, passage) for passage in passages]
        with self._lock:
            if self._onnx is not None:
                scores = self._onnx.predict(pairs, batch_size=self.batch_size)
            else:
                scores = self._model.predict(
                    pairs, batch_size=self.batch_size, show_progress_bar=False, convert_to_numpy=True
                )
        return np.asarray(scores, dtype=np.float32).reshape(-1)

    def rerank(self, query: str, hits: Sequence[Hit], weight: float = 1.0) -> list[Hit]:
        """``hits`` rescored and sorted best first (ties keep the incoming order).

        ``weight`` < 1 blends the cross-encoder with the score the hits arrive with: both are min-max normalised
        over the list (the cross-encoder as a logit) and mixed ``(1 - weight) * incoming + weight * reranker``.
        A reranker trained on a few hundred queries is a weaker ranker alone than hybrid retrieval, but it carries
        evidence fusion lacks; the blend keeps both (SciFact held-out nDCG@10: hybrid 0.681, reranker alone
        0.626, blend at 0.4 0.732).
        """
        if not 0.0 <= weight <= 1.0:
            raise ValueError(f"weight must be within [0, 1], got {weight}")
        return blend_and_sort(hits, self.score(query, [hit.chunk.text for hit in hits]), weight)


def blend_and_sort(hits: Sequence[Hit], scores: np.ndarray, weight: float) -> list[Hit]:
    """``hits`` with cross-encoder ``scores`` (0..1, one per hit) blended into their incoming scores at ``weight``
    (``blend``), best first, ties in the incoming order. Shared by every rerank mode, so isolated and long-context
    scores are blended by the same rule."""
    if len(scores) != len(hits):
        raise ValueError(f"{len(scores)} scores for {len(hits)} hits")
    scores = np.asarray(scores, dtype=np.float32)
    if weight < 1.0 and len(hits) > 1:
        scores = blend(np.asarray([hit.score for hit in hits], dtype=np.float64), scores, weight)
    elif not 0.0 <= weight <= 1.0:
        raise ValueError(f"weight must be within [0, 1], got {weight}")
    order = np.argsort(-scores, kind="stable")
    return [Hit(hits[i].chunk, float(scores[i]), "rerank") for i in order]


def logits(probabilities: np.ndarray) -> np.ndarray:
    """The cross-encoder's logit back from its sigmoid score (clipped, so 0 and 1 stay finite)."""
    clipped = np.clip(np.asarray(probabilities, dtype=np.float64), 1e-7, 1 - 1e-7)
    return np.log(clipped / (1 - clipped))


def blend(incoming: np.ndarray, probabilities: np.ndarray, weight: float) -> np.ndarray:
    """``(1 - weight) * incoming + weight * logit``, each min-max normalised over the list: what ``rerank`` ranks by.

    A function of its own so the evaluation can score many weights from one pass of the model and rank exactly as
    the query pipeline does."""
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"weight must be within [0, 1], got {weight}")
    mixed = (1 - weight) * _min_max(np.asarray(incoming, dtype=np.float64)) + weight * _min_max(logits(probabilities))
    return mixed.astype(np.float32)


def _cpu_threads() -> int:
    """onnxruntime threads: the cores this process may use, capped at 4 so one rerank does not take a large
    server's every core."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return max(1, min(4, cores))


def _load_torch(source: str | Path, max_length: int, is_hub_id: bool, int8: bool) -> Any:
    """A sentence-transformers CrossEncoder on CPU, its Linear layers quantised to int8 if asked."""
    from sentence_transformers.cross_encoder import CrossEncoder

    try:
        model = CrossEncoder(str(source), max_length=max_length, device="cpu", local_files_only=not is_hub_id)
    except OSError as exc:
        raise RerankerError(f"could not load the reranker {source!r}: {exc}") from exc
    if model.num_labels != 1:
        raise RerankerError(f"{source} outputs {model.num_labels} labels; a reranker must output one score")
    if int8:
        import torch

        torch.ao.quantization.quantize_dynamic(model.model, {torch.nn.Linear}, dtype=torch.qint8, inplace=True)
    return model


def _min_max(values: np.ndarray) -> np.ndarray:
    spread = float(values.max() - values.min())
    return (values - values.min()) / spread if spread > 0 else np.zeros_like(values)
