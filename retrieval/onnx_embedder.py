"""Query-sized embeddings through onnxruntime: the same MiniLM weights, exported once from the local folder.

Why: one short query costs ~15 ms through ``SentenceTransformer.encode`` on one CPU thread and was the largest
share of retrieval latency. The same forward pass in onnxruntime (fp32) returns the same vector (cosine 1.0000)
in a fraction of that; dynamic int8 quantisation (per-channel, MatMul weights only) is faster again at a small,
measured cost in vector agreement. Batches (ingestion) stay on torch: see ``SentenceTransformerEmbedder``.

The export is written next to the model, under ``ragline-onnx/<hash of the weights>/``, so a changed model gets
a new export instead of a stale one, and each file is written under a temporary name and renamed into place, so
two processes exporting at once (or an interrupted export) never leave a half-written model behind. Nothing is
downloaded: the export reads the local folder only.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

log = logging.getLogger(__name__)

OnnxVariant = Literal["fp32", "int8"]
EXPORT_DIR = "ragline-onnx"
_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
_OPSET = 17


class OnnxExportError(RuntimeError):
    """The ONNX export of an embedder could not be made or loaded; the message names the fix."""


@dataclass(frozen=True)
class OnnxExport:
    """The exported files of one model version."""

    folder: Path
    weights_sha256: str

    def path(self, variant: OnnxVariant) -> Path:
        return self.folder / ("model.onnx" if variant == "fp32" else "model-int8.onnx")


def weights_sha256(model_dir: Path) -> str:
    """sha256 of the model's weight file: the key of its export (a changed model re-exports)."""
    for name in _WEIGHT_FILES:
        weights = model_dir / name
        if weights.is_file():
            with weights.open("rb") as stream:
                return hashlib.file_digest(stream, "sha256").hexdigest()
    raise OnnxExportError(f"no weights ({' or '.join(_WEIGHT_FILES)}) in {model_dir}: run `ragline models install`")


def export_folder(model_dir: Path, sha256: str) -> Path:
    return model_dir / EXPORT_DIR / sha256[:16]


def ensure_export(model_dir: Path, variants: tuple[OnnxVariant, ...] = ("fp32", "int8")) -> OnnxExport:
    """The export of ``model_dir``'s current weights, made now (once, ~10 s) when missing or stale."""
    sha256 = weights_sha256(model_dir)
    export = OnnxExport(export_folder(model_dir, sha256), sha256)
    missing = [v for v in variants if not export.path(v).is_file()]
    if not missing:
        return export
    stale = [p for p in (model_dir / EXPORT_DIR).glob("*") if p.is_dir() and p != export.folder]
    reason = f"stale export(s) {', '.join(p.name for p in stale)} for other weights" if stale else "no export yet"
    log.warning("exporting %s to ONNX (%s; %s): once, about 10 s", model_dir.name, ", ".join(missing), reason)
    started = time.perf_counter()
    export.folder.mkdir(parents=True, exist_ok=True)
    if not export.path("fp32").is_file():
        _atomic_write(export.path("fp32"), lambda tmp: _export_fp32(model_dir, tmp))
    if "int8" in variants and not export.path("int8").is_file():
        _atomic_write(export.path("int8"), lambda tmp: _quantize_int8(export.path("fp32"), tmp))
    (export.folder / "export.json").write_text(
        json.dumps(
            {"weights_sha256": sha256, "opset": _OPSET, "files": sorted(p.name for p in export.folder.glob("*.onnx"))}
        )
    )
    for old in stale:
        shutil.rmtree(old, ignore_errors=True)
    log.warning("ONNX export of %s ready in %.1f s: %s", model_dir.name, time.perf_counter() - started, export.folder)
    return export


def _atomic_write(target: Path, write: Callable[[Path], None]) -> None:
    """Write through ``write(tmp_path)`` and rename into place: readers see a whole file or none."""
    handle, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(handle)
    tmp = Path(name)
    try:
        write(tmp)
        tmp.chmod(0o644)  # mkstemp creates 0600; the models folder is read by every user of the install
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def _export_fp32(model_dir: Path, out: Path) -> None:
    """Trace the transformer (token embeddings out; pooling and normalising stay in numpy) to ONNX.

    Eager attention traces to plain MatMul/Softmax nodes that onnxruntime fuses and quantises; the SDPA kernel
    would not. The TorchScript exporter needs only ``onnx``; the dynamo exporter would also need onnxscript."""
    try:
        import onnx  # noqa: F401  (the exporter imports it; fail here with the package to install)
    except ImportError as exc:
        raise OnnxExportError(
            "exporting the embedder to ONNX needs the `onnx` package: pip install -r requirements/app.txt "
            "(or set RAGLINE_EMBEDDER_BACKEND=torch)"
        ) from exc
    import torch
    from transformers import AutoModel, AutoTokenizer

    model = AutoModel.from_pretrained(str(model_dir), local_files_only=True, attn_implementation="eager").eval()
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
    sample = tokenizer(["an example query", "a second, longer example passage"], padding=True, return_tensors="pt")

    class TokenEmbeddings(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(
            self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor
        ) -> torch.Tensor:
            return self.inner(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state

    axes = {name: {0: "batch", 1: "tokens"} for name in (*_INPUTS, "token_embeddings")}
    with torch.no_grad():
        torch.onnx.export(
            TokenEmbeddings(model),
            tuple(sample[name] for name in _INPUTS),
            str(out),
            input_names=list(_INPUTS),
            output_names=["token_embeddings"],
            dynamic_axes=axes,
            opset_version=_OPSET,
            dynamo=False,
        )


def _quantize_int8(fp32: Path, out: Path) -> None:
    """Dynamic int8: per-channel weights, MatMul only. Per-tensor weights (the default) or quantised embedding
    Gathers drop the query-vector cosine to torch from 0.994 to 0.96 on SciFact queries for little more speed."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(
        str(fp32), str(out), weight_type=QuantType.QInt8, per_channel=True, op_types_to_quantize=["MatMul"]
    )


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
