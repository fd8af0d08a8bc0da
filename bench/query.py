"""Search latency at 100k chunks: Flat vs HNSW32 vs LangChain's FAISS store, and hybrid search.

Vectors are synthetic (clustered, normalised, 384-d like MiniLM) and texts are synthetic word
salad: scale is what is measured. Hybrid search uses the real ragstack index and the real
MiniLM query embedding, so its latency includes embedding the query. The chunks belong to
look-alike documents (100 chunks each) whose headers name an organisation and a fiscal year,
so that document routing has headers to score; the routed rows ask questions that name one.
The reranker rows time the cross-encoder over the top 50 (`--reranker`: a `rag finetune-rerank`
directory; by default the bundled MiniLM with an untrained head, which costs the same).

    python bench/query.py [--n 100000] [--queries 200] [--reranker DIR]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from indexes import Chunk, DocumentRecord, IndexStore, Manifest, dense  # noqa: E402
from rag.embedders import BACKENDS, load_embedder  # noqa: E402
from rag.embedding import Embedder  # noqa: E402
from rag.reranker import RERANK_DEPTH, Reranker  # noqa: E402
from rag.retrieval import Retriever  # noqa: E402

D = 384
CHUNKS_PER_DOCUMENT = 100
RERANK_QUERIES = 20  # the cross-encoder costs ~100x a search: fewer queries give its figure


def clustered_vectors(n: int, rng: np.random.Generator, clusters: int = 1000) -> np.ndarray:
    """Topic clusters, like sentence embeddings: a neighbour is much nearer than a random chunk.

    (With isotropic noise as large as the cluster spread, every point is nearly equidistant
    in 384 dimensions and no approximate index can find the "true" neighbours.)
    """
    centres = np.random.default_rng(1).standard_normal((clusters, D)).astype(np.float32)
    vectors = centres[rng.integers(0, clusters, n)] + 0.3 * rng.standard_normal((n, D)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def percentiles(seconds: list[float]) -> tuple[float, float]:
    ms = np.array(seconds) * 1000
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 99))


def time_each(fn, items) -> list[float]:
    out = []
    for item in items:
        start = time.perf_counter()
        fn(item)
        out.append(time.perf_counter() - start)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--reranker", default="sentence-transformers/all-MiniLM-L6-v2")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    console = Console(width=160)  # tables stay readable when the output goes to a file
    vectors = clustered_vectors(args.n, rng)
    queries = clustered_vectors(args.queries, rng)
    rows: list[tuple] = []
    build: dict[str, float] = {}

    indexes = {}
    for factory in ("Flat", "HNSW32"):
        start = time.perf_counter()
        index = dense.build(vectors, factory)
        build[factory] = time.perf_counter() - start
        dense._set_search_params(index)
        indexes[factory] = index
        one = time_each(lambda q, index=index: index.search(q[None], 10), queries)
        start = time.perf_counter()
        index.search(queries, 10)
        batched = (time.perf_counter() - start) / len(queries) * 1000
        rows.append((f"FAISS {factory}", *percentiles(one), batched))
    _, exact = indexes["Flat"].search(queries, 10)
    _, approx = indexes["HNSW32"].search(queries, 10)
    recall = np.mean([len(set(a) & set(e)) / 10 for a, e in zip(approx, exact, strict=True)])

    from langchain_community.docstore.in_memory import InMemoryDocstore
    from langchain_community.vectorstores import FAISS
    from langchain_core.documents import Document
    from langchain_core.embeddings import Embeddings

    class Precomputed(Embeddings):
        def embed_documents(self, texts):
            raise NotImplementedError

        def embed_query(self, text):
            raise NotImplementedError

    import faiss

    flat = faiss.IndexFlatIP(D)
    flat.add(vectors)
    ids = [str(i) for i in range(args.n)]
    store = FAISS(
        embedding_function=Precomputed(), index=flat,
        docstore=InMemoryDocstore({i: Document(page_content=f"chunk {i}") for i in ids}),
        index_to_docstore_id=dict(enumerate(ids)),
    )
    one = time_each(lambda q: store.similarity_search_by_vector(q.tolist(), k=10), queries)
    rows.append(("LangChain FAISS (IndexFlatIP)", *percentiles(one), float("nan")))

    # hybrid through the real index: texts and queries drawn from the model's whole-word
    # vocabulary, so that a query has a realistic token count (~10 for 8 words)
    embedder = Embedder()
    words = np.array(sorted(w for w in embedder.tokenizer.get_vocab() if w.isalpha() and len(w) > 2))
    texts = [" ".join(words[rng.integers(0, len(words), 60)]) for _ in range(args.n)]
    organisations = words[rng.permutation(len(words))[: args.n // CHUNKS_PER_DOCUMENT]]
    documents = [
        DocumentRecord(f"doc_{d:05d}.pdf", f"/doc_{d:05d}.pdf", str(d), 0, CHUNKS_PER_DOCUMENT // 10,
                       CHUNKS_PER_DOCUMENT,
                       header=f"{name.title()} Inc · Form 10-K annual report · fiscal year ended "
                       f"December 31, {2010 + d % 12} (FY{2010 + d % 12})")
        for d, name in enumerate(organisations)
    ]
    with tempfile.TemporaryDirectory() as tmp:
        with IndexStore(tmp).writer() as writer:
            chunks = [
                Chunk(chunk_id=f"c{i}", doc=documents[i // CHUNKS_PER_DOCUMENT].name,
                      page_start=page, page_end=page, text=t)
                for i, t in enumerate(texts)
                for page in [i % CHUNKS_PER_DOCUMENT // 10 + 1]
            ]
            manifest = Manifest(model="sentence-transformers/all-MiniLM-L6-v2", dimension=D,
                                chunk_size=200, chunk_overlap=32, index_type="HNSW32",
                                header_scheme="title-entities-v1")
            start = time.perf_counter()
            writer.publish(manifest, documents, chunks, vectors)
            build["ragstack generation (HNSW32 + BM25 + SQLite)"] = time.perf_counter() - start
        questions = [" ".join(words[rng.integers(0, len(words), 8)]) for _ in range(args.queries)]
        naming = [  # "What was Acme's FY2015 ..." : names one document's organisation and year
            f"What was {organisations[d].title()}'s FY{2010 + d % 12} " + " ".join(words[picked])
            for d in rng.integers(0, len(organisations), args.queries)
            for picked in [rng.integers(0, len(words), 5)]
        ]
        tokens = np.mean([len(embedder.tokenizer(q)["input_ids"]) for q in questions])
        for backend in BACKENDS:
            query_embedder = embedder if backend == "torch" else load_embedder(embedder.name, backend)
            retriever = Retriever(tmp, query_embedder, route=False)
            retriever.search(questions[0])  # warm-up
            for mode in ("dense", "bm25", "hybrid") if backend == "torch" else ("dense", "hybrid"):
                one = time_each(lambda q, mode=mode, r=retriever: r.search(q, k=10, mode=mode), questions)
                name = f"ragstack {mode}, {backend} query embedding" if mode != "bm25" else "ragstack bm25"
                rows.append((name, *percentiles(one), float("nan")))
        routed = Retriever(tmp, embedder, route=True)
        routed.search(naming[0])  # warm-up: the router is built on the first search
        for label, asked in (("naming a document", naming), ("naming none", questions)):
            one = time_each(lambda q: routed.search(q, k=10), asked)
            rows.append((f"ragstack hybrid + routing, {label}", *percentiles(one), float("nan")))
        share = np.mean([bool(r) for r in routed._router[1].route(naming)])
        reranked = Retriever(tmp, embedder, route=True, reranker=Reranker(args.reranker))
        reranked.search(naming[0])
        one = time_each(lambda q: reranked.search(q, k=10), naming[:RERANK_QUERIES])
        rows.append((f"ragstack hybrid + routing + reranker (top {RERANK_DEPTH})", *percentiles(one),
                     float("nan")))

    table = Table("search, k=10", "p50 ms", "p99 ms", "batched ms/query",
                  title=f"{args.n:,} chunks x {D}, {args.queries} queries")
    for name, p50, p99, batched in rows:
        table.add_row(name, f"{p50:.2f}", f"{p99:.2f}", "" if np.isnan(batched) else f"{batched:.3f}")
    console.print(table)
    console.print(f"queries: 8 words, {tokens:.1f} tokens on average with special tokens")
    console.print(f"HNSW32 (efSearch {dense.HNSW_EF_SEARCH}) recall@10 vs Flat: {recall:.3f}")
    console.print(f"{len(documents):,} documents of {CHUNKS_PER_DOCUMENT} chunks; routing named a document "
                  f"for {share:.0%} of the questions that name one; reranker: {args.reranker} "
                  f"({RERANK_QUERIES} queries)")
    for name, seconds in build.items():
        console.print(f"build {name}: {seconds:.1f} s")


if __name__ == "__main__":
    main()
