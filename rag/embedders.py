"""The embedding backends and the functions that pick one: sentence-transformers on torch or an
int8 ONNX Runtime graph (rag.onnx_embedding). For a new index's documents, the faster here whose
vectors agree with torch's (document_backend); for queries, the fastest that agrees with the
index's vectors (query_backend). rag.calibration measures both once per machine and model."""

from __future__ import annotations

from typing import Literal, get_args

from rag.embedding import Embedder

Backend = Literal["torch", "onnx-int8"]
BACKENDS: tuple[Backend, ...] = get_args(Backend)
EmbedBackend = Literal["auto", "torch", "onnx-int8"]
EMBED_BACKENDS: tuple[EmbedBackend, ...] = get_args(EmbedBackend)


def load_embedder(
    model: str, backend: str = "torch", batch_size: int = 32, precision: str = "auto"
) -> Embedder:
    """The embedder for a backend: `torch` (sentence-transformers), `onnx-int8`, or `auto`
    (document_backend's choice)."""
    if backend == "auto":
        backend = document_backend(model, backend, precision)
    if backend == "torch":
        return Embedder(model, batch_size=batch_size, precision=precision)
    if backend == "onnx-int8":
        try:
            import onnxruntime  # noqa: F401

            from rag.onnx_embedding import OnnxEmbedder
        except ImportError as err:
            raise ValueError("the onnx-int8 backend needs: pip install onnxruntime onnxscript") from err
        return OnnxEmbedder(model, batch_size=batch_size)
    raise ValueError(f"unknown embedding backend {backend!r}; choose one of {', '.join(EMBED_BACKENDS)}")


def document_backend(model: str, asked: str = "auto", precision: str = "auto") -> str:
    """The backend that embeds the chunks of a new index of `model`: `asked` unless it is "auto";
    torch where a precision is set (fp32 and bf16 are torch's); else the faster of torch (in its
    calibrated precision) and int8 ONNX, the latter only if its vectors agree with torch's,
    measured now or before (rag.calibration). An existing index keeps the kind it was made with."""
    from datetime import date

    from rag import calibration

    if asked not in EMBED_BACKENDS:
        raise ValueError(f"unknown embedding backend {asked!r}; choose one of {', '.join(EMBED_BACKENDS)}")
    if asked != "auto":
        return asked
    if precision != "auto":
        return "torch"
    found = calibration.recorded(model, "backend")
    if found is not None and found.get("choice") in BACKENDS:
        return found["choice"]
    reference = load_embedder(model, "torch", precision="auto")  # calibrates its precision first
    try:
        int8 = load_embedder(model, "onnx-int8")
    except Exception as err:  # noqa: BLE001 - a faster path must never stop ingest
        calibration.remember_backend(model, {
            "choice": "torch", "why": f"int8 ONNX unavailable: {err}"[:300], "measured": str(date.today()),
        })
        return "torch"
    return calibration.fastest_document_backend(model, reference, int8)


QueryBackend = Literal["auto", "torch", "onnx-int8"]
QUERY_BACKENDS: tuple[QueryBackend, ...] = get_args(QueryBackend)


def load_query_embedder(model: str, index_backend: str, asked: str = "auto") -> Embedder:
    """The embedder for the queries of an index whose vectors `index_backend` made: `asked`, or
    with "auto" the fastest compatible one as measured on this machine."""
    if asked not in QUERY_BACKENDS:
        raise ValueError(f"unknown query backend {asked!r}; choose one of {', '.join(QUERY_BACKENDS)}")
    backend, measured = _choose_query_backend(model, index_backend, asked)
    return measured.get(backend) or load_embedder(model, backend)  # measured: loaded once only


def query_backend(model: str, index_backend: str, asked: str = "auto") -> str:
    """The query embedder for an index whose vectors `index_backend` made: `asked` unless it is
    "auto"; the index's own for int8 vectors; else the fastest that agrees with torch's vectors,
    measured now or before (rag.calibration)."""
    return _choose_query_backend(model, index_backend, asked)[0]


def _choose_query_backend(model: str, index_backend: str, asked: str) -> tuple[str, dict[str, Embedder]]:
    """query_backend's choice, with the embedders it loaded to measure them (none when the
    choice was recorded or forced)."""
    from datetime import date

    from rag import calibration

    if asked != "auto":
        return asked, {}
    if index_backend != "torch":
        return index_backend, {}
    found = calibration.recorded(model, "queries")
    if found is not None and found.get("choice") in BACKENDS:
        return found["choice"], {}
    try:
        candidates = {backend: load_embedder(model, backend, precision="fp32") for backend in BACKENDS}
    except Exception as err:  # noqa: BLE001 - a faster query path must never stop search
        # no onnxruntime, a model the ONNX path cannot pool or export: remembered, not retried
        calibration.remember_queries(model, {
            "choice": "torch", "why": f"int8 ONNX unavailable: {err}"[:300], "measured": str(date.today()),
        })
        return "torch", {}
    return calibration.fastest_query_embedder(model, candidates, index_backend), candidates
