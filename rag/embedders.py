"""The embedding backends and the one function that picks one: sentence-transformers on torch
(the default) or an int8 ONNX Runtime graph (rag.onnx_embedding)."""

from __future__ import annotations

from typing import Literal, get_args

from rag.embedding import Embedder

Backend = Literal["torch", "onnx-int8"]
BACKENDS: tuple[Backend, ...] = get_args(Backend)


def load_embedder(
    model: str, backend: str = "torch", batch_size: int = 32, precision: str = "auto"
) -> Embedder:
    """The embedder for a backend: `torch` (sentence-transformers) or `onnx-int8`."""
    if backend == "torch":
        return Embedder(model, batch_size=batch_size, precision=precision)
    if backend == "onnx-int8":
        try:
            import onnxruntime  # noqa: F401

            from rag.onnx_embedding import OnnxEmbedder
        except ImportError as err:
            raise ValueError("the onnx-int8 backend needs: pip install 'ragstack[onnx]'") from err
        return OnnxEmbedder(model, batch_size=batch_size)
    raise ValueError(f"unknown embedding backend {backend!r}; choose one of {', '.join(BACKENDS)}")
