"""The local index backend (FAISS + bm25s) against Milvus, on the same vectors, in one run.

A BEIR corpus is indexed once (the eval cache's index, embedded only the first time); each backend
then builds its search structures from those kept vectors in a copy of it, and every query of the
split is searched in each mode: nDCG@10 side by side, the build time and the search latency of
one query at a time (query embedding included, the same embedder for both).

    python bench/backends.py ../shared/data/scifact [--split test] [--milvus-uri URI] [--sample N]

Without --milvus-uri, Milvus is milvus-lite: a file in the index directory, in this process.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from eval.beir import sample_corpus  # noqa: E402
from eval.cached_index import cache_index  # noqa: E402
from eval.datasets import index_corpus, load_beir  # noqa: E402
from eval.metrics import ranking_metrics  # noqa: E402
from indexes import IndexStore  # noqa: E402
from rag.calibration import cpu_model  # noqa: E402
from rag.embedders import load_query_embedder  # noqa: E402
from rag.ingest import store_fields  # noqa: E402
from rag.retrieval import Retriever  # noqa: E402
from rag.settings import Settings  # noqa: E402

MODES = ("dense", "bm25", "hybrid")
LATENCY_QUERIES = 200


def rebuild(index: Path, backend: str, uri: str | None) -> float:
    """Publish the index's current records and vectors again on `backend`; seconds taken."""
    settings = Settings(index=index, index_backend=backend, milvus_uri=uri)
    store = IndexStore(index)
    with store.writer() as writer:
        current = writer.current
        manifest = current.manifest
        manifest.__dict__.update(store_fields(settings))  # as `rag ingest --backend` does
        started = time.perf_counter()
        chunks, vectors = current.records.all_chunks(), np.asarray(current.vectors)
        writer.publish(manifest, current.documents(), chunks, vectors)
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("beir", type=Path)
    parser.add_argument("--split", default="test")
    parser.add_argument("--milvus-uri", default=None)
    parser.add_argument("--sample", type=int, default=None, help="index only a corpus sample")
    args = parser.parse_args()

    corpus, queries, qrels = load_beir(args.beir, args.split)
    if args.sample:
        corpus = sample_corpus(corpus, qrels, args.sample)
    settings = Settings()
    kind = "retrieval" if args.sample is None else f"retrieval-sample{args.sample}"
    cached = cache_index(kind, args.beir, settings)
    index_corpus(args.beir.name, corpus, settings.model_copy(update={"index": cached}))
    with IndexStore(cached).open() as snap:
        manifest, n_chunks = snap.manifest, snap.n_chunks
    embedder = load_query_embedder(manifest.model, manifest.embed_backend, "auto")

    ids = list(queries)
    rows, scores = [], {}
    with tempfile.TemporaryDirectory(prefix="rag-backends-") as tmp:
        for backend in ("local", "milvus"):
            index = Path(tmp) / backend / "index"
            shutil.copytree(cached, index, ignore=shutil.ignore_patterns("LOCK", "staging", "milvus.db"))
            build_s = rebuild(index, backend, args.milvus_uri)
            retriever = Retriever(index, embedder, query_backend=embedder.backend)
            for mode in MODES:
                found = retriever.search_batch([queries[q] for q in ids], k=100, mode=mode)
                rankings = {q: [r.doc for r in hits] for q, hits in zip(ids, found, strict=True)}
                figures, _ = ranking_metrics(qrels, rankings, ["ndcg@10", "recall@100"])
                scores[(backend, mode)] = figures["ndcg@10"]
                seconds = []
                for q in ids[:LATENCY_QUERIES]:
                    started = time.perf_counter()
                    retriever.search(queries[q], k=10, mode=mode)
                    seconds.append(time.perf_counter() - started)
                ms = np.array(seconds) * 1000
                rows.append((backend, mode, figures["ndcg@10"], figures["recall@100"], build_s,
                             float(np.percentile(ms, 50)), float(np.percentile(ms, 99))))
    table = Table(title=f"{args.beir.name} {args.split}: {len(ids)} queries, {n_chunks:,} chunks "
                  f"({manifest.embed_backend} vectors); {cpu_model()}")
    for column in ("backend", "mode", "nDCG@10", "R@100", "build s", "p50 ms", "p99 ms"):
        table.add_column(column)
    for backend, mode, ndcg, recall, build_s, p50, p99 in rows:
        figures = (f"{ndcg:.4f}", f"{recall:.4f}", f"{build_s:.1f}", f"{p50:.2f}", f"{p99:.2f}")
        table.add_row(backend, mode, *figures)
    Console().print(table)
    for mode in MODES:
        delta = scores[("milvus", mode)] - scores[("local", mode)]
        print(f"{mode}: milvus - local nDCG@10 = {delta:+.4f}")


if __name__ == "__main__":
    main()
