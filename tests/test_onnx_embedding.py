"""The int8 ONNX Runtime embedder: same vectors as torch within quantisation error, usable end to end."""

import pytest

from indexes import IndexStore, contextual_text
from rag.embedders import load_embedder
from rag.ingest import ModelMismatch, ingest
from rag.retrieval import Retriever
from rag.settings import Settings


@pytest.fixture(scope="module")
def onnx_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def onnx_embedder(onnx_cache):
    import os

    before = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(onnx_cache)  # export from scratch
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


def test_queries_use_the_fastest_embedder_that_agrees(
    onnx_embedder, onnx_cache, embedder, corpus, tmp_path, monkeypatch
) -> None:
    """RAG_QUERY_BACKEND=auto over torch vectors: torch and int8 ONNX query embeddings are
    measured once on this machine, the faster of those that agree with torch's vectors is used,
    `rag status` says which and why; the int8 one never writes into a torch index."""
    import json

    from conftest import rag_cli

    from rag import calibration
    from rag.calibration import recorded

    monkeypatch.setenv("XDG_CACHE_HOME", str(onnx_cache))  # the exported graph, no calibration yet
    settings = Settings(index=tmp_path / "idx")
    ingest([corpus], settings, progress=False, embedder=embedder)
    assert recorded(embedder.name, "queries") is None
    retriever = Retriever(settings.index)
    found = recorded(embedder.name, "queries")
    assert set(found["ms_per_query"]) == {"torch", "onnx-int8"} and min(found["ms_per_query"].values()) > 0
    assert found["agreement"]["onnx-int8"] >= calibration.AGREEMENT
    assert found["choice"] == min(found["ms_per_query"], key=found["ms_per_query"].get)
    assert retriever.embedder.backend == found["choice"]
    plain = Retriever(settings.index, embedder)
    for query in ("salty ocean under the ice", "capital expenditure", "photosynthesis"):
        assert [(h.doc, h.page_start) for h in retriever.search(query, k=1)] == [
            (h.doc, h.page_start) for h in plain.search(query, k=1)
        ]

    monkeypatch.setattr(calibration, "_ms_per_query", lambda *_: pytest.fail("measured twice"))
    assert Retriever(settings.index).embedder.backend == found["choice"]
    assert Retriever(settings.index, query_backend="torch").embedder.backend == "torch"
    done = rag_cli("status", "--index", str(settings.index), "--json",
                   env={"XDG_CACHE_HOME": str(onnx_cache)}, timeout=120)
    assert done.returncode == 0, done.stderr
    status = json.loads(done.stdout)
    assert status["query_backend"] == found["choice"] and "ms a query" in status["query_backend_why"]

    # a query embedder handed to ingest is not used for a torch index's vectors
    from pdfs import make_pdf

    text = "Glacier tongues calve icebergs into the fjord every spring."
    make_pdf(corpus / "glaciers.pdf", [text])
    ingest([corpus], settings, progress=False, embedder=onnx_embedder)
    with IndexStore(settings.index).open() as snap:
        assert snap.manifest.embed_backend == "torch"
        chunks = snap.records.chunks(range(snap.n_chunks))
        row = next(i for i, c in enumerate(chunks) if c.doc == "glaciers.pdf")
        header = next(d.header for d in snap.documents() if d.name == "glaciers.pdf")
        stored = snap.vectors[row]
    embedded = contextual_text(header, chunks[row].text)
    assert float(stored @ embedder.encode([embedded])[0]) > 0.9999  # torch's vector, not int8's
    assert float(stored @ onnx_embedder.encode([embedded])[0]) < 0.9999


def test_a_query_embedder_that_disagrees_is_not_chosen(embedder, onnx_cache, monkeypatch) -> None:
    from rag import calibration
    from rag.embedders import query_backend

    monkeypatch.setenv("XDG_CACHE_HOME", str(onnx_cache))  # the exported graph
    monkeypatch.setattr(calibration, "AGREEMENT", 1.01)  # no other embedder can agree that well
    monkeypatch.setattr(calibration, "cache_dir", lambda kind: onnx_cache / "strict" / kind)
    assert query_backend(embedder.name, "torch") == "torch"
    assert calibration.recorded(embedder.name, "queries")["choice"] == "torch"
    assert query_backend(embedder.name, "onnx-int8") == "onnx-int8"  # the index's own


def test_a_query_embedder_that_cannot_load_leaves_torch(embedder, tmp_path, monkeypatch) -> None:
    """A model the int8 path cannot export: searches use torch, and the reason is remembered
    (not retried on every start) for `rag status`."""
    from rag import calibration, embedders

    _int8_cannot_load(monkeypatch)
    monkeypatch.setattr(calibration, "cache_dir", lambda kind: tmp_path / kind)
    assert embedders.query_backend(embedder.name, "torch") == "torch"
    found = calibration.recorded(embedder.name, "queries")
    assert found["choice"] == "torch" and "exporter failed" in found["why"]
    monkeypatch.setattr(embedders, "load_embedder", lambda *_: pytest.fail("tried again"))
    assert embedders.query_backend(embedder.name, "torch") == "torch"


def test_a_new_index_embeds_with_the_faster_backend_that_agrees(
    onnx_embedder, onnx_cache, corpus, tmp_path, monkeypatch
) -> None:
    """RAG_EMBED_BACKEND=auto (the default): a new index's chunks are embedded by the faster here
    of torch (in its calibrated precision) and int8 ONNX, int8 only where its vectors agree with
    torch's; measured once per machine and model, shown by `rag status`; an index keeps its kind."""
    import json

    from conftest import rag_cli

    from rag import calibration
    from rag.embedders import document_backend

    monkeypatch.setenv("XDG_CACHE_HOME", str(onnx_cache))  # the exported graph, no calibration yet
    settings = Settings(index=tmp_path / "idx")
    assert calibration.recorded(settings.model, "backend") is None
    ingest([corpus], settings, progress=False)
    found = calibration.recorded(settings.model, "backend")
    speeds = found["texts_per_s"]
    assert len(speeds) == 2 and "onnx-int8" in speeds and min(speeds.values()) > 0
    assert found["agreement"] >= calibration.AGREEMENT  # MiniLM's int8 chunks: 0.99+ cosine
    assert found["choice"] == ("onnx-int8" if max(speeds, key=speeds.get) == "onnx-int8" else "torch")
    with IndexStore(settings.index).open() as snap:
        assert snap.manifest.embed_backend == found["choice"]
    assert Retriever(settings.index).search("salty ocean under the ice", k=1)[0].doc == "space.pdf"

    monkeypatch.setattr(calibration, "_texts_per_second", lambda *_: pytest.fail("measured twice"))
    assert document_backend(settings.model) == found["choice"]
    assert document_backend(settings.model, precision="fp32") == "torch"  # a precision is torch's
    done = rag_cli("status", "--index", str(settings.index), "--json",
                   env={"XDG_CACHE_HOME": str(onnx_cache)}, timeout=120)
    assert done.returncode == 0, done.stderr
    status = json.loads(done.stdout)
    assert status["embed_backend"] == found["choice"] and "texts/s" in status["embed_backend_why"]

    # the index keeps its kind whatever this machine would choose now
    other = "torch" if found["choice"] == "onnx-int8" else "onnx-int8"
    calibration.remember_backend(settings.model, {**found, "choice": other})
    from pdfs import make_pdf

    make_pdf(corpus / "glaciers.pdf", ["Glacier tongues calve icebergs into the fjord every spring."])
    ingest([corpus], settings, progress=False)
    with IndexStore(settings.index).open() as snap:
        assert snap.manifest.embed_backend == found["choice"]
        assert "glaciers.pdf" in {d.name for d in snap.documents()}


def test_an_int8_embedder_that_disagrees_or_cannot_load_leaves_torch(
    embedder, onnx_cache, monkeypatch
) -> None:
    from rag import calibration, embedders

    monkeypatch.setenv("XDG_CACHE_HOME", str(onnx_cache))  # the exported graph
    monkeypatch.setattr(calibration, "AGREEMENT", 1.01)  # no other embedder can agree that well
    monkeypatch.setattr(calibration, "cache_dir", lambda kind: onnx_cache / "strict-docs" / kind)
    assert embedders.document_backend(embedder.name) == "torch"
    assert calibration.recorded(embedder.name, "backend")["agreement"] < 1.01

    _int8_cannot_load(monkeypatch)
    monkeypatch.setattr(calibration, "cache_dir", lambda kind: onnx_cache / "no-onnx" / kind)
    assert embedders.document_backend(embedder.name) == "torch"
    found = calibration.recorded(embedder.name, "backend")
    assert found["choice"] == "torch" and "exporter failed" in found["why"]


def _int8_cannot_load(monkeypatch) -> None:
    """As where the exporter fails for a model: loading its int8 graph raises."""
    from rag import embedders

    real = embedders.load_embedder

    def no_onnx(model, backend="torch", *args, **kwargs):
        if backend == "onnx-int8":
            raise RuntimeError("exporter failed")
        return real(model, backend, *args, **kwargs)

    monkeypatch.setattr(embedders, "load_embedder", no_onnx)
