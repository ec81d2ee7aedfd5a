"""Query-sized embeddings through onnxruntime: the same MiniLM weights, exported once from the local folder.

Why: one short query costs ~15 ms through ``SentenceTransformer.encode`` on one CPU thread and was the largest
share of retrieval latency. The same forward pass in onnxruntime (fp32) returns the same vector (cosine 1.0000)
in a fraction of that; dynamic int8 quantisation (per-channel, MatMul weights only) is faster again at a small,
measured cost in vector agreement. Batches (ingestion) stay on torch: see ``SentenceTransformerEmbedder``.
The export itself (hash-keyed, atomic, offline) lives in ``retrieval.onnx_export``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from retrieval.onnx_export import OnnxExportError, OnnxVariant, ensure_export


class OnnxQueryEncoder:
    """Mean-pooled, L2-normalised embeddings from the exported model: the sentence-transformers recipe."""

    def __init__(self, model_dir: Path, variant: OnnxVariant = "fp32", threads: int = 1) -> None:
        if variant not in ("fp32", "int8"):
            raise ValueError(f"variant must be fp32 or int8, got {variant!r}")
        if threads <= 0:
            raise ValueError(f"threads must be positive, got {threads}")
        _check_mean_pooling(model_dir)
        import onnxruntime as ort
        from tokenizers import Tokenizer

        export = ensure_export(model_dir, (variant,))
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self._session = ort.InferenceSession(str(export.path(variant)), options, providers=["CPUExecutionProvider"])
        self._tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        # tokenizer.json pads every input to 128 tokens; a query should cost its own length, as in transformers.
        self._tokenizer.enable_truncation(_max_seq_length(model_dir))
        self._tokenizer.enable_padding(pad_id=self._tokenizer.token_to_id("[PAD]") or 0, pad_token="[PAD]")
        self.variant, self.export = variant, export

    def embed(self, texts: list[str]) -> np.ndarray:
        encodings = self._tokenizer.encode_batch(list(texts))
        feeds = {
            "input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
            "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64),
            "token_type_ids": np.array([e.type_ids for e in encodings], dtype=np.int64),
        }
        tokens = self._session.run(None, feeds)[0]
        mask = feeds["attention_mask"][..., None].astype(np.float32)
        pooled = (tokens * mask).sum(axis=1) / np.clip(mask.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.where(norms == 0, 1, norms)).astype(np.float32)


def _max_seq_length(model_dir: Path) -> int:
    config = model_dir / "sentence_bert_config.json"
    if config.is_file():
        return int(json.loads(config.read_text()).get("max_seq_length", 256))
    return 256


def _check_mean_pooling(model_dir: Path) -> None:
    """The encoder re-implements mean pooling + normalise only: refuse a model configured otherwise."""
    pooling = model_dir / "1_Pooling" / "config.json"
    modules = model_dir / "modules.json"
    if not pooling.is_file() or not modules.is_file():
        raise OnnxExportError(f"{model_dir} is not a sentence-transformers folder with a pooling module")
    config = json.loads(pooling.read_text())
    kinds = [m.get("type", "").rsplit(".", 1)[-1] for m in json.loads(modules.read_text())]
    if not config.get("pooling_mode_mean_tokens") or kinds != ["Transformer", "Pooling", "Normalize"]:
        raise OnnxExportError(
            f"the ONNX query encoder supports Transformer → mean Pooling → Normalize models; {model_dir.name} is "
            f"{' → '.join(kinds)} (pooling {config}): set RAGLINE_EMBEDDER_BACKEND=torch"
        )
