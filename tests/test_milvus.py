"""The Milvus index backend beyond the cases every store test runs on both backends (test_ingest,
test_retrieval, test_crash): the milvus-lite file from the command line, moving an index between
backends without re-embedding, and a Milvus that cannot be reached."""

import json
from pathlib import Path

from conftest import free_port, rag_cli

from indexes import IndexStore, MilvusUnavailable, milvus
from rag.ingest import ingest
from rag.retrieval import Retriever
from rag.settings import Settings

QUESTIONS = ["Where do zebras migrate in July?", "salty ocean under ice", "sunlight into chemical energy"]


def ranked(index: Path, embedder, mode: str = "hybrid") -> list[list[str]]:
    retriever = Retriever(index, embedder, query_backend="torch")
    return [[r.chunk_id for r in retriever.search(q, k=5, mode=mode)] for q in QUESTIONS]


def test_milvus_lite_file_from_the_command_line(corpus: Path, tmp_path: Path) -> None:
    index = tmp_path / "index"
    done = rag_cli("ingest", str(corpus), "--index", str(index), "--backend", "milvus", "-q")
    assert done.returncode == 0, done.stderr
    assert (index / "milvus.db").exists()  # milvus-lite: no server, one file in the index
    status = json.loads(rag_cli("status", "--index", str(index), "--json").stdout)
    assert status["store_backend"] == "milvus" and status["milvus_uri"] == str(index.resolve() / "milvus.db")
    found = rag_cli("search", "salty ocean under ice", "--index", str(index), "--json", "-k", "2")
    assert found.returncode == 0, found.stderr
    assert json.loads(found.stdout)[0]["doc"] == "space.pdf"


def test_an_index_moves_between_backends_without_re_embedding(corpus, tmp_path, embedder, milvus_uri) -> None:
    settings = Settings(index=tmp_path / "index")
    ingest([corpus], settings, progress=False, embedder=embedder)
    local = {mode: ranked(settings.index, embedder, mode) for mode in ("dense", "bm25", "hybrid")}

    to_milvus = settings.model_copy(update={"index_backend": "milvus", "milvus_uri": milvus_uri})
    moved = ingest([corpus], to_milvus, progress=False, embedder=None)  # no model needed: vectors kept
    assert moved.chunks_embedded == 0 and moved.generation == "gen-000002"
    with IndexStore(settings.index).open() as snap:
        assert snap.manifest.store_backend == "milvus" and not (snap.path / "dense.faiss").exists()
    # the same words and vectors: the same rankings (Milvus's BM25 scores are on another scale)
    assert {mode: ranked(settings.index, embedder, mode) for mode in local} == local

    back = ingest([corpus], settings.model_copy(update={"index_backend": "local"}), progress=False)
    assert back.chunks_embedded == 0
    assert ranked(settings.index, embedder) == local["hybrid"]
    with IndexStore(settings.index).open() as snap:
        prefix = milvus.collection_prefix(settings.index)
    collections = milvus.client(milvus_uri).list_collections()
    # gen-000002 (Milvus) is kept for readers that opened it just before the swap
    assert [c for c in collections if c.startswith(prefix)] == [f"{prefix}_gen_000002"]


def test_an_unreachable_milvus_is_a_clear_error_and_loses_nothing(corpus, tmp_path, embedder) -> None:
    settings = Settings(index=tmp_path / "index")
    ingest([corpus], settings, progress=False, embedder=embedder)
    nowhere = f"http://127.0.0.1:{free_port()}"
    done = rag_cli("ingest", str(corpus), "--index", str(settings.index), "--backend", "milvus",
                   "--milvus-uri", nowhere, "-q", timeout=120)
    assert done.returncode == 2 and "cannot open Milvus at " + nowhere in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    assert IndexStore(settings.index).current_name() == "gen-000001"  # the local index as it was
    europa = {c.chunk_id for c in _chunks(settings.index, "space.pdf")}
    assert ranked(settings.index, embedder)[1][0] in europa
    try:
        milvus.client(nowhere)
    except MilvusUnavailable as err:
        assert "cannot open Milvus" in str(err)
    else:
        raise AssertionError("a Milvus URI with nothing behind it opened")


def _chunks(index: Path, doc: str):
    with IndexStore(index).open() as snap:
        return [c for c in snap.records.all_chunks() if c.doc == doc]
