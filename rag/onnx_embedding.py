"""An int8 ONNX Runtime path for the embedder: about 1.4x torch on this CPU (avx512_vnni).

The transformer is exported once with torch's exporter, quantised with onnxruntime's dynamic
int8 quantisation, and cached next to the user's other caches; pooling and normalisation are
done here in numpy, as sentence-transformers does them. Only mean or CLS pooling is supported.
`sentence-transformers[onnx]` is deliberately not used: it pins older sentence-transformers
and transformers releases (see ../shared/STACK.md).
"""

from __future__ import annotations

import json
import logging
import os
import sys
import warnings
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from rag.embedding import Embedder
from rag.paths import cache_dir


@contextmanager
def _quiet():
    """torch's exporter and onnxruntime's quantiser warn about things a user cannot act on
    (torchvision missing, axis names, pre-processing); one line says what is happening instead."""
    loggers = [logging.getLogger(), logging.getLogger("torch.onnx")]
    levels = [logger.level for logger in loggers]
    try:
        for logger in loggers:
            logger.setLevel(logging.ERROR)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


class OnnxEmbedder(Embedder):
    """Embedder whose transformer runs as an int8 ONNX Runtime graph; same interface."""

    backend = "onnx-int8"

    def __init__(self, model: str, batch_size: int = 64, device: str | None = "cpu"):
        super().__init__(model, device="cpu", batch_size=batch_size, precision="fp32")  # no calibration
        import onnxruntime as ort

        pooling = self._pooling_mode()
        self.pooling = pooling
        path = self._quantised_model()
        options = ort.SessionOptions()
        options.intra_op_num_threads = os.cpu_count() or 1
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.input_names = {i.name for i in self.session.get_inputs()}

    def _pooling_mode(self) -> str:
        pooling = next((m for m in self.model if type(m).__name__ == "Pooling"), None)
        if pooling is None:
            raise ValueError("the onnx-int8 backend needs a sentence-transformers model with Pooling")
        config = pooling.get_config_dict()
        mode = config.get("pooling_mode")  # sentence-transformers >= 6; older ones use flags
        if mode == "mean" or config.get("pooling_mode_mean_tokens"):
            return "mean"
        if mode == "cls" or config.get("pooling_mode_cls_token"):
            return "cls"
        raise ValueError(f"the onnx-int8 backend supports mean or CLS pooling, not {config}")

    def _quantised_model(self) -> Path:
        import torch
        from onnxruntime.quantization import QuantType, quantize_dynamic

        slug = self.name.strip("/").replace("/", "_")
        folder = cache_dir("onnx") / slug
        final = folder / "model-int8.onnx"
        if final.is_file():
            return final
        folder.mkdir(parents=True, exist_ok=True)
        print(f"exporting {Path(self.name).name} to int8 ONNX (once) ...", file=sys.stderr, flush=True)
        with _quiet():
            transformer = self.model[0].auto_model.eval()
            # batch of 2 with padding: a batch of 1 would make torch.export fix the batch size
            sample = self.tokenizer(
                ["an example", "a longer example sentence"], padding=True, return_tensors="pt"
            )
            names = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in sample]
            fp32 = folder / "model-fp32.onnx"

            class Wrapped(torch.nn.Module):
                def forward(self, input_ids, attention_mask, token_type_ids=None):
                    extra = {} if token_type_ids is None else {"token_type_ids": token_type_ids}
                    out = transformer(input_ids=input_ids, attention_mask=attention_mask, **extra)
                    return out.last_hidden_state

            # torch's dynamo exporter: the older TorchScript one bakes the padding mask of the
            # sample into transformers-5 BERT graphs, which gave wrong outputs for padded batches
            batch, tokens = torch.export.Dim("batch"), torch.export.Dim("tokens", max=512)
            with torch.no_grad():
                torch.onnx.export(
                    Wrapped().eval(), tuple(sample[n] for n in names), str(fp32),
                    input_names=names, output_names=["last_hidden_state"],
                    dynamic_shapes={n: {0: batch, 1: tokens} for n in names}, dynamo=True,
                    verbose=False,
                )
            tmp = folder / "model-int8.tmp.onnx"
            # per-channel weights keep cosine to the torch vectors >= 0.99 (per-tensor gave 0.93)
            quantize_dynamic(str(fp32), str(tmp), per_channel=True, op_types_to_quantize=["MatMul"],
                             weight_type=QuantType.QUInt8)
        tmp.rename(final)
        for leftover in folder.glob("model-fp32.onnx*"):
            leftover.unlink()
        (folder / "source.json").write_text(json.dumps({"model": self.name}))
        return final

    def encode(self, texts: list[str], progress: bool = False, prompt: str = "") -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        texts = [prompt + t for t in texts] if prompt else texts
        order = np.argsort([-len(t) for t in texts])  # similar lengths share a batch: less padding
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        limit = self.model.max_seq_length
        for start in range(0, len(texts), self.batch_size):
            batch = order[start : start + self.batch_size]
            encoded = self.tokenizer([texts[i] for i in batch], padding=True, truncation=True,
                                     max_length=limit, return_tensors="np")
            feeds = {k: v.astype(np.int64) for k, v in encoded.items() if k in self.input_names}
            hidden = self.session.run(None, feeds)[0]
            if self.pooling == "cls":
                pooled = hidden[:, 0]
            else:
                mask = encoded["attention_mask"][..., None].astype(np.float32)
                pooled = (hidden * mask).sum(1) / np.clip(mask.sum(1), 1e-9, None)
            out[batch] = pooled / np.linalg.norm(pooled, axis=1, keepdims=True)
        return out
