"""The embedding backends and the functions that pick one: sentence-transformers on torch (the
default for documents) or an int8 ONNX Runtime graph (rag.onnx_embedding); for queries, the
fastest that agrees with the index's vectors (rag.calibration.query_backend)."""

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


QueryBackend = Literal["auto", "torch", "onnx-int8"]
QUERY_BACKENDS: tuple[QueryBackend, ...] = get_args(QueryBackend)


def load_query_embedder(model: str, index_backend: str, asked: str = "auto") -> Embedder:
    """The embedder for the queries of an index whose vectors `index_backend` made: `asked`, or
    with "auto" the fastest compatible one as measured on this machine."""
    from rag.calibration import query_backend

    if asked not in QUERY_BACKENDS:
        raise ValueError(f"unknown query backend {asked!r}; choose one of {', '.join(QUERY_BACKENDS)}")
    return load_embedder(model, query_backend(model, index_backend, asked))
