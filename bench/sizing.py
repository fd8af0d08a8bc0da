"""Sizing the dense index: memory per chunk, build time and query latency of Flat, HNSW32 and
IVF-PQ at a given number of chunks, and of the same in Milvus (milvus-lite here), for
docs/scaling.md.

Vectors are synthetic (clustered and normalised like MiniLM's, 384-d, bench/query.py's
generator): size and speed depend on the count and the dimension, not on the text. Latency is
one query at a time, the dense search alone (no query embedding, no BM25). Memory is the
serialised index's size, which is what FAISS holds in RAM for these types.

    python bench/sizing.py [--n 100000] [--types Flat,HNSW32,IVF-PQ] [--milvus Flat,HNSW32]
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from pathlib import Path

import faiss
import numpy as np
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.query import clustered_vectors  # noqa: E402
from indexes import dense, milvus  # noqa: E402
from rag.calibration import cpu_model  # noqa: E402

D = 384
QUERIES = 200


def ivf_pq(n: int) -> str:
    """The IVF-PQ factory string the `auto` rule would pick at this size (indexes.dense)."""
    nlist = 1 << round(math.log2(4 * math.sqrt(n)))
    return f"IVF{nlist},PQ{D // 8}"


def latency(search, queries: np.ndarray) -> tuple[float, float]:
    seconds = []
    for q in queries:
        started = time.perf_counter()
        search(q[None, :])
        seconds.append(time.perf_counter() - started)
    ms = np.array(seconds) * 1000
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 99))


def recall_at_10(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(t)) / 10 for f, t in zip(found, truth, strict=True)]))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--types", default="Flat,HNSW32,IVF-PQ")
    parser.add_argument("--milvus", default="", help="also milvus-lite, with these types (e.g. Flat,HNSW32)")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    vectors = clustered_vectors(args.n, rng)
    queries = clustered_vectors(QUERIES, np.random.default_rng(1))
    truth = faiss.IndexFlatIP(D)
    truth.add(vectors)
    _, exact = truth.search(queries, 10)
    rows = []
    for name in args.types.split(","):
        factory = ivf_pq(args.n) if name == "IVF-PQ" else name
        started = time.perf_counter()
        index = dense.build(vectors, factory)
        build_s = time.perf_counter() - started
        with tempfile.TemporaryDirectory() as tmp:
            dense.save(index, Path(tmp) / "i.faiss")
            index = dense.load(Path(tmp) / "i.faiss")  # with the search parameters ragstack sets
            size = (Path(tmp) / "i.faiss").stat().st_size
        p50, p99 = latency(lambda q, index=index: index.search(q, 10), queries)
        found = index.search(queries, 10)[1]
        recall = recall_at_10(found, exact)
        rows.append(("FAISS", factory, build_s, size / args.n, size / 2**20, p50, p99, recall))
        del index
    if args.milvus:
        texts = ["w"] * args.n  # BM25's field must hold something; its cost is not what is sized here
        for name in args.milvus.split(","):
            factory = ivf_pq(args.n) if name == "IVF-PQ" else name
            with tempfile.TemporaryDirectory() as tmp:
                uri = str(Path(tmp) / "milvus.db")
                started = time.perf_counter()
                milvus.build(uri, "sizing", vectors, texts, factory, "english")
                build_s = time.perf_counter() - started
                generation = milvus.MilvusGeneration(uri, "sizing", args.n, factory, "english")
                size = sum(p.stat().st_size for p in Path(tmp).rglob("*") if p.is_file())
                p50, p99 = latency(lambda q, g=generation: g.search(q, 10), queries)
                found = generation.search(queries, 10)[1]
                rows.append(("milvus-lite", factory, build_s, size / args.n, size / 2**20, p50, p99,
                             recall_at_10(found, exact)))
                milvus.close(uri)
    table = Table(title=f"{args.n:,} chunks x {D} dims, one query at a time; {cpu_model()}")
    columns = ("engine", "index", "build s", "bytes/chunk", "MiB on disk", "p50 ms", "p99 ms", "recall@10")
    for column in columns:
        table.add_column(column)
    for engine, factory, build_s, per_chunk, mib, p50, p99, recall in rows:
        table.add_row(engine, factory, f"{build_s:.1f}", f"{per_chunk:.0f}", f"{mib:.0f}", f"{p50:.2f}",
                      f"{p99:.2f}", f"{recall:.3f}")
    Console(width=150).print(table)


if __name__ == "__main__":
    main()
