"""Incremental ingest, generations, locking and settings checks, on real PDFs and the real model."""

import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from pdfs import lorem, make_pdf

from indexes import IndexLocked, IndexStore
from rag.embedding import DEFAULT_MODEL, resolve_model
from rag.ingest import ModelMismatch, ingest, remove_documents
from rag.reindex import reindex
from rag.retrieval import Retriever
from rag.settings import Settings


@pytest.fixture
def settings(store_settings) -> Settings:
    """Every test here runs against both index backends (local files and Milvus)."""
    return store_settings


def chunk_ids(index: Path, doc: str) -> list[str]:
    with IndexStore(index).open() as snap:
        return [c.chunk_id for c in snap.records.all_chunks() if c.doc == doc]


def index_kind(snap) -> str:
    """The built search structure as its engine names it: a FAISS class, or Milvus's index type."""
    return getattr(snap.dense, "index_type", None) or type(snap.dense).__name__


def doc_names(index: Path) -> set[str]:
    with IndexStore(index).open() as snap:
        return {d.name for d in snap.documents()}


def test_ingest_indexes_every_good_file_with_pages(corpus, settings, embedder) -> None:
    report = ingest([corpus], settings, progress=False, embedder=embedder)
    assert sorted(f.name for f in report.files if f.status == "added") == [
        "plants.pdf", "space.pdf", "zoo.pdf"
    ]
    with IndexStore(settings.index).open() as snap:
        docs = {d.name: d for d in snap.documents()}
        europa = [c for c in snap.records.all_chunks() if "Europa" in c.text]
        assert snap.vectors.shape == (snap.n_chunks, 384) and snap.dense.ntotal == snap.n_chunks
    assert docs["space.pdf"].pages == 4 and docs["zoo.pdf"].pages == 3
    assert europa and all(c.doc == "space.pdf" and c.page_end == 4 for c in europa)


def test_reingest_does_no_work(corpus, settings, embedder) -> None:
    first = ingest([corpus], settings, progress=False, embedder=embedder)
    again = ingest([corpus], settings, progress=False, embedder=None)  # no model needed
    assert again.chunks_embedded == 0 and again.count("unchanged") == 3
    assert again.generation == first.generation  # nothing published


def test_changed_file_replaces_exactly_its_chunks(corpus, settings, embedder) -> None:
    ingest([corpus], settings, progress=False, embedder=embedder)
    zoo_before, plants_before = chunk_ids(settings.index, "zoo.pdf"), chunk_ids(settings.index, "plants.pdf")
    make_pdf(corpus / "zoo.pdf", [
        lorem("zoo", 20),
        "Penguins huddle together through the Antarctic winter.",
        lorem("zoo", 40),
    ])
    report = ingest([corpus], settings, progress=False, embedder=embedder)
    assert [f.name for f in report.files if f.status == "updated"] == ["zoo.pdf"]
    assert report.count("unchanged") == 2
    assert 0 < report.chunks_embedded and report.chunks_reused > 0  # page-1 text kept its vectors
    assert chunk_ids(settings.index, "plants.pdf") == plants_before
    zoo_after = chunk_ids(settings.index, "zoo.pdf")
    assert zoo_after != zoo_before
    retriever = Retriever(settings.index, embedder)
    hit = retriever.search("penguins in Antarctica", k=1)[0]
    assert hit.doc == "zoo.pdf" and hit.page_start <= 2 <= hit.page_end
    assert not any("Zebras" in r.text for r in retriever.search("zebras Serengeti", k=10, mode="bm25"))


def test_prune_deletes_removed_files(corpus, settings, embedder) -> None:
    ingest([corpus], settings, progress=False, embedder=embedder)
    (corpus / "space.pdf").unlink()
    kept = ingest([corpus], settings, progress=False, embedder=embedder)
    assert "space.pdf" in doc_names(settings.index)
    assert kept.count("removed") == 0
    pruned = ingest([corpus], settings, prune=True, progress=False, embedder=embedder)
    assert [f.name for f in pruned.files if f.status == "removed"] == ["space.pdf"]
    assert doc_names(settings.index) == {"plants.pdf", "zoo.pdf"}
    assert chunk_ids(settings.index, "space.pdf") == []
    assert Retriever(settings.index, embedder).search("Europa ocean", k=3, docs=["space.pdf"]) == []


def test_remove_document_by_name(corpus, settings, embedder) -> None:
    ingest([corpus], settings, progress=False, embedder=embedder)
    remove_documents(["plants.pdf"], settings)
    assert doc_names(settings.index) == {"space.pdf", "zoo.pdf"}
    with pytest.raises(KeyError, match="no document named"):
        remove_documents(["nope.pdf"], settings)


def test_bad_files_are_reported_while_good_ones_are_ingested(corpus, settings, embedder) -> None:
    (corpus / "empty.pdf").write_bytes(b"")
    (corpus / "fake.pdf").write_text("hello")
    make_pdf(corpus / "locked.pdf", ["secret"], password="pw")
    report = ingest([corpus], settings, progress=False, embedder=embedder)
    kinds = {f.name: f.error_kind for f in report.failed}
    assert kinds == {"empty.pdf": "empty", "fake.pdf": "not-a-pdf", "locked.pdf": "encrypted"}
    assert report.count("added") == 3


def test_changed_file_that_breaks_keeps_its_previous_version(corpus, settings, embedder) -> None:
    ingest([corpus], settings, progress=False, embedder=embedder)
    (corpus / "plants.pdf").write_bytes(b"%PDF-1.4\ntruncated")
    report = ingest([corpus], settings, progress=False, embedder=embedder)
    assert [f.name for f in report.failed] == ["plants.pdf"]
    hit = Retriever(settings.index, embedder).search("photosynthesis chloroplasts", k=1)[0]
    assert hit.doc == "plants.pdf"


def test_second_writer_is_refused(corpus, settings, embedder) -> None:
    store = IndexStore(settings.index)
    with store.writer():
        with pytest.raises(IndexLocked, match="locked"):
            ingest([corpus], settings, progress=False, embedder=embedder)
    ingest([corpus], settings, progress=False, embedder=embedder)  # free again afterwards


def test_mixing_models_or_chunking_is_refused(corpus, settings, embedder, tmp_path) -> None:
    ingest([corpus], settings, progress=False, embedder=embedder)
    other = Settings(index=settings.index, model=str(tmp_path / "some-other-model"))
    with pytest.raises(ModelMismatch, match="new index directory"):
        ingest([corpus], other, progress=False)
    with pytest.raises(ModelMismatch, match="chunk_size"):
        ingest([corpus], Settings(index=settings.index, chunk_size=100), progress=False)


def test_index_type_is_a_factory_string_and_can_change(corpus, settings, embedder) -> None:
    ingest([corpus], settings, progress=False, embedder=embedder)
    with IndexStore(settings.index).open() as snap:
        assert snap.manifest.index_factory == "Flat"
    hnsw = Settings(index=settings.index, index_type="HNSW32")
    report = ingest([corpus], hnsw, progress=False, embedder=embedder)
    assert report.chunks_embedded == 0  # rebuilt from the kept vectors
    with IndexStore(settings.index).open() as snap:
        assert snap.manifest.index_factory == "HNSW32" and "HNSW" in index_kind(snap)
    hit = Retriever(settings.index, embedder).search("Europa salty ocean", k=1, mode="dense")[0]
    assert hit.doc == "space.pdf"
    # deleting from an HNSW index works: the structure is rebuilt from the vectors
    remove_documents(["space.pdf"], settings)
    with IndexStore(settings.index).open() as snap:
        assert snap.dense.ntotal == snap.n_chunks and "HNSW" in index_kind(snap)
    with pytest.raises(ValueError, match="needs at least 1024 chunks"):
        ingest([corpus], Settings(index=settings.index, index_type="IVF1024,Flat"), progress=False,
               embedder=embedder)
    with pytest.raises(ValueError, match="factory string"):
        ingest([corpus], Settings(index=settings.index, index_type="NotAnIndex"), progress=False,
               embedder=embedder)


def test_old_generations_are_collected(corpus, settings, embedder) -> None:
    ingest([corpus], settings, progress=False, embedder=embedder)
    for name in ("plants.pdf", "zoo.pdf"):
        remove_documents([name], settings)
    generations = sorted(p.name for p in (settings.index / "generations").iterdir())
    assert generations == ["gen-000002", "gen-000003"]
    assert (settings.index / "CURRENT").read_text().strip() == "gen-000003"


@contextmanager
def searching_all_along(retriever: Retriever, query: str, doc: str) -> Iterator[dict]:
    """A thread searching `query` until the block ends; every search must rank `doc` first.
    Yields the tally: "searches" done, "errors" met."""
    tally: dict = {"searches": 0, "errors": []}
    stop = threading.Event()

    def keep_searching() -> None:
        while not stop.is_set():
            try:
                results = retriever.search(query, k=3)
                assert results and results[0].doc == doc
                tally["searches"] += 1
            except Exception as err:  # noqa: BLE001 - any failure is what these tests look for
                tally["errors"].append(err)

    reader = threading.Thread(target=keep_searching)
    reader.start()
    try:
        yield tally
    finally:
        stop.set()
        reader.join()


def test_readers_keep_working_while_a_writer_publishes(corpus, settings, embedder) -> None:
    ingest([corpus], settings, progress=False, embedder=embedder)
    retriever = Retriever(settings.index, embedder)
    with searching_all_along(retriever, "photosynthesis chloroplasts", "plants.pdf") as tally:
        for _ in range(3):
            remove_documents(["zoo.pdf"], settings)
            ingest([corpus], settings, progress=False, embedder=embedder)
    assert not tally["errors"] and tally["searches"] > 0
    assert IndexStore(settings.index).current_name() == "gen-000007"


# explicit: "auto" would calibrate (and remember) a model that lives in a temporary directory
REINDEX_AS = {"embed_backend": "torch", "embed_precision": "fp32"}


def test_reindex_with_another_model_while_a_thread_searches(corpus, settings, embedder, tmp_path) -> None:
    ingest([corpus], settings, progress=False, embedder=embedder)
    # "another model": the bundled weights under another name, so the plumbing, not the model, is tested
    other = shutil.copytree(resolve_model(DEFAULT_MODEL), tmp_path / "tuned-minilm")
    retriever = Retriever(settings.index, embedder, query_backend="torch")
    with searching_all_along(retriever, "Jupiter moon Europa ocean", "space.pdf") as tally:
        report = reindex(settings.model_copy(update=REINDEX_AS), str(other), progress=False)
        before = tally["searches"]
        deadline = time.monotonic() + 60
        while tally["searches"] < before + 3 and time.monotonic() < deadline:  # on the new generation
            time.sleep(0.05)
    assert not tally["errors"] and tally["searches"] >= before + 3
    assert report.model == str(other) and report.previous_model == DEFAULT_MODEL
    assert retriever.snapshot().manifest.model == str(other) and retriever.embedder.name == str(other)
