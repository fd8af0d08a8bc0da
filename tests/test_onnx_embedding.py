"""The int8 ONNX Runtime embedder: same vectors as torch within quantisation error, usable end to end."""

import pytest

from indexes import IndexStore
from rag.embedders import load_embedder
from rag.ingest import ModelMismatch, ingest
from rag.retrieval import Retriever
from rag.settings import Settings


@pytest.fixture(scope="module")
def onnx_embedder(tmp_path_factory):
    import os

    before = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("cache"))  # export from scratch
    try:
        return load_embedder("sentence-transformers/all-MiniLM-L6-v2", "onnx-int8")
    finally:
        if before is None:
            del os.environ["XDG_CACHE_HOME"]
        else:
            os.environ["XDG_CACHE_HOME"] = before


def test_onnx_vectors_agree_with_torch(onnx_embedder, embedder) -> None:
    texts = [
        "Zebras migrate across the Serengeti every July.",
        "Capital expenditure rose to $1.6 billion in fiscal 2018, driven by new plants. " * 6,
        "short",
    ]
    a, b = onnx_embedder.encode(texts), embedder.encode(texts)
    assert a.shape == b.shape == (3, 384)
    assert (a * b).sum(axis=1).min() >= 0.98


def test_onnx_backend_indexes_and_searches(onnx_embedder, corpus, tmp_path) -> None:
    settings = Settings(index=tmp_path / "idx", embed_backend="onnx-int8")
    ingest([corpus], settings, progress=False, embedder=onnx_embedder)
    with IndexStore(settings.index).open() as snap:
        assert snap.manifest.embed_backend == "onnx-int8"
    hit = Retriever(settings.index, onnx_embedder).search("salty ocean under the ice", k=1, mode="dense")[0]
    assert hit.doc == "space.pdf" and hit.page_end == 4
    with pytest.raises(ModelMismatch, match="embed_backend"):
        ingest([corpus], Settings(index=settings.index, embed_backend="torch"), progress=False)
