"""Cross-encoder scores through onnxruntime: the reranker's own weights, exported once, fp32 or dynamic int8.

Why: reranking the top 20 is 20 forward passes of up to ``max_length`` tokens. On two idle CPU cores, a 3-layer
MiniLM at 128 tokens took 216 ms in torch fp32 and 129 ms with torch's dynamic int8; onnxruntime's int8 kernels
took 90 ms for the same pairs, and at 192 tokens 138 ms (``ragline reranker eval --backends ...`` measures every
engine side by side, quality and latency). Pairs are
tokenised exactly as sentence-transformers' ``CrossEncoder.predict`` does (pair encoding, longest-first
truncation to ``max_length``), and the model's activation (sigmoid for a one-logit reranker) is applied after, so
the fp32 export returns the torch scores (checked in a test).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from retrieval.onnx_export import INPUTS, OnnxExportError, OnnxVariant, ensure_export

_SIGMOID = {"torch.nn.modules.activation.Sigmoid", "torch.nn.Sigmoid"}
_IDENTITY = {"torch.nn.modules.linear.Identity", "torch.nn.Identity"}


def _activation(model_dir: Path) -> str:
    """ "sigmoid" or "identity": the activation sentence-transformers applies to this model's logit."""
    config = model_dir / "config_sentence_transformers.json"
    name = json.loads(config.read_text()).get("activation_fn") if config.is_file() else None
    if name is None or name in _SIGMOID:
        return "sigmoid"
    if name in _IDENTITY:
        return "identity"
    raise OnnxExportError(
        f"{model_dir.name} uses the activation {name}, which the ONNX reranker does not apply: "
        "set RAGLINE_RERANK_BACKEND=torch"
    )


class OnnxCrossEncoder:
    """One relevance score per (query, passage) pair from the ONNX export of a CrossEncoder folder."""

    def __init__(self, model_dir: Path, *, max_length: int, variant: OnnxVariant = "int8", threads: int = 2) -> None:
        if variant not in ("fp32", "int8"):
            raise ValueError(f"variant must be fp32 or int8, got {variant!r}")
        if threads <= 0 or max_length <= 0:
            raise ValueError(f"threads and max_length must be positive, got {threads}, {max_length}")
        import onnxruntime as ort
        from transformers import AutoTokenizer

        self.activation = _activation(model_dir)
        export = ensure_export(model_dir, (variant,), head="logits")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self._session = ort.InferenceSession(str(export.path(variant)), options, providers=["CPUExecutionProvider"])
        self._inputs = {i.name for i in self._session.get_inputs()}
        self._tokenizer = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
        self.max_length, self.variant, self.export = max_length, variant, export

    def predict(self, pairs: Sequence[tuple[str, str]], batch_size: int = 32) -> np.ndarray:
        """Scores in the order of ``pairs``, ``batch_size`` pairs per forward pass."""
        scores: list[np.ndarray] = []
        for start in range(0, len(pairs), batch_size):
            batch = pairs[start : start + batch_size]
            encoded = self._tokenizer(
                [query for query, _ in batch],
                [passage for _, passage in batch],
                padding=True,
                truncation=True,
                max_length=self.max_length,
                return_tensors="np",
            )
            feeds = {name: np.asarray(encoded[name], dtype=np.int64) for name in INPUTS if name in encoded}
            if "token_type_ids" in self._inputs and "token_type_ids" not in feeds:  # one-segment tokenizers
                feeds["token_type_ids"] = np.zeros_like(feeds["input_ids"])
            scores.append(self._session.run(None, feeds)[0].reshape(-1))
        logits = np.concatenate(scores).astype(np.float64) if scores else np.zeros(0)
        out = 1.0 / (1.0 + np.exp(-logits)) if self.activation == "sigmoid" else logits
        return out.astype(np.float32)
