"""Ingest on a Ray cluster: a real local Ray instance started here (2 CPUs, so 2 parser and up
to 2 embedder actors), compared with the single-process ingest of the same PDFs."""

import numpy as np
import pytest
from pdfs import lorem, make_pdf

from indexes import IndexStore
from rag.ingest import ingest
from rag.retrieval import Retriever
from rag.settings import Settings


@pytest.fixture(scope="module")
def ray_cluster():
    ray = pytest.importorskip("ray", reason="Ray is in the [scale] extra, which the test install has")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def rows(index) -> tuple[list[str], np.ndarray]:
    with IndexStore(index).open() as snap:
        return [c.chunk_id for c in snap.records.all_chunks()], np.asarray(snap.vectors).copy()


def test_ray_ingest_gives_the_single_process_chunks_and_vectors(
    ray_cluster, corpus, tmp_path, embedder
) -> None:
    for i in range(3):  # more files than workers, and a few hundred chunks
        make_pdf(corpus / f"minutes_{i}.pdf", [lorem(f"meeting{i}", 80), lorem(f"agenda{i}", 80)])
    alone = ingest([corpus], Settings(index=tmp_path / "alone"), progress=False, embedder=embedder)
    # the same kind of vectors as `alone`: "auto" picks the faster backend by timing it, and on a
    # busy host int8 can win there (cosine 0.99 to torch's), which is not what this test is about
    on_ray_settings = Settings(index=tmp_path / "ray", ray_address="local", embed_backend=embedder.backend)
    on_ray = ingest([corpus], on_ray_settings, progress=False)
    assert sorted((f.name, f.status, f.chunks) for f in on_ray.files) == sorted(
        (f.name, f.status, f.chunks) for f in alone.files
    )
    assert on_ray.chunks_embedded == alone.chunks_embedded > 0
    ids, vectors = rows(tmp_path / "ray")
    expected_ids, expected = rows(tmp_path / "alone")
    assert ids == expected_ids
    assert float((vectors * expected).sum(axis=1).min()) >= 0.9999  # cosine: both are normalised

    # incremental on Ray too: one changed file, only its chunks embedded again
    make_pdf(corpus / "zoo.pdf", [lorem("zoo", 20), "Penguins huddle through the Antarctic winter."])
    again = ingest([corpus], Settings(index=tmp_path / "ray", ray_address="local"), progress=False)
    assert [f.name for f in again.files if f.status == "updated"] == ["zoo.pdf"]
    assert 0 < again.chunks_embedded < on_ray.chunks_embedded and again.count("unchanged") == 5
    hit = Retriever(tmp_path / "ray", embedder).search("penguins in winter", k=1)[0]
    assert hit.doc == "zoo.pdf" and "Penguins" in hit.text


def test_ray_ingest_writes_to_milvus(ray_cluster, corpus, tmp_path, embedder, milvus_uri) -> None:
    settings = Settings(
        index=tmp_path / "index", ray_address="local", index_backend="milvus", milvus_uri=milvus_uri
    )
    report = ingest([corpus], settings, progress=False)
    assert report.count("added") == 3 and not report.failed
    hit = Retriever(settings.index, embedder).search("Where do zebras migrate in July?", k=1)[0]
    assert hit.doc == "zoo.pdf" and "Zebras migrate" in hit.text
