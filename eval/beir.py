"""Retrieval evaluation on a BEIR-format dataset (corpus.jsonl, queries.jsonl, qrels/SPLIT.tsv).

The corpus is indexed as text (title and text of a document as one page), then every query
of the split is searched; chunk results are folded to documents by their best rank. With
`corpus_sample`, only the documents relevant to the split's queries and a seeded sample of the
others are indexed: a quick check whose figures are higher than the whole corpus gives.
"""

from __future__ import annotations

import random
import time
from pathlib import Path

from eval.datasets import index_corpus, load_beir
from eval.metrics import ranking_metrics
from eval.report import index_settings
from rag.retrieval import Retriever
from rag.settings import Settings

METRICS = ["ndcg@10", "recall@1", "recall@5", "recall@10", "recall@100", "mrr@10"]


def evaluate_beir(
    directory: Path,
    split: str,
    modes: list[str],
    settings: Settings,
    progress: bool = True,
    corpus_sample: int | None = None,
) -> dict:
    """Index the corpus into `settings.index` (incrementally) and score every mode."""
    directory = Path(directory)
    corpus, queries, qrels = load_beir(directory, split)
    if corpus_sample is not None:
        corpus = sample_corpus(corpus, qrels, corpus_sample)
    started = time.perf_counter()
    ingest_report = index_corpus(directory.name, corpus, settings, progress=progress)
    ingest_seconds = time.perf_counter() - started
    retriever = Retriever.from_settings(settings)
    query_ids = list(queries)
    figures, per_query, timings = {}, {}, {}
    for mode in modes:
        started = time.perf_counter()
        results = retriever.search_batch([queries[q] for q in query_ids], k=200, mode=mode)
        timings[mode] = time.perf_counter() - started
        rankings = {q: [r.doc for r in hits] for q, hits in zip(query_ids, results, strict=True)}
        figures[mode], per_query[mode] = ranking_metrics(qrels, rankings, METRICS)
    return {
        "dataset": str(directory),
        "split": split,
        "queries": len(query_ids),
        "corpus": len(corpus),
        "corpus_sample": corpus_sample,
        "figures": figures,
        "settings": index_settings(settings, retriever.snapshot().manifest),
        "timings": {
            "ingest_s": ingest_seconds,
            "search_s": timings,
            "chunks_embedded": ingest_report.chunks_embedded,
        },
        "per_query": per_query,
    }


def sample_corpus(corpus: dict, qrels: dict, size: int, seed: int = 0) -> dict:
    """Every document a query of `qrels` is relevant to, then others drawn with `seed` up to
    `size` documents in all (the relevant ones alone when they are more)."""
    relevant = {d for judged in qrels.values() for d in judged if d in corpus}
    others = sorted(d for d in corpus if d not in relevant)
    drawn = random.Random(seed).sample(others, max(0, min(len(others), size - len(relevant))))
    keep = relevant | set(drawn)
    return {d: doc for d, doc in corpus.items() if d in keep}

