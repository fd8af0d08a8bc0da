"""Retrieval evaluation on a BEIR-format dataset (corpus.jsonl, queries.jsonl, qrels/SPLIT.tsv).

The corpus is indexed as text (title and text of a document as one page), then every query
of the split is searched; chunk results are folded to documents by their best rank.
"""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path

from eval.metrics import ranking_metrics
from eval.report import index_settings
from rag.chunking import text_hash
from rag.ingest import Source, update_index
from rag.retrieval import Retriever
from rag.settings import Settings

METRICS = ["ndcg@10", "recall@1", "recall@5", "recall@10", "recall@100", "mrr@10"]


def load_beir(directory: Path, split: str) -> tuple[dict[str, str], dict[str, str], dict]:
    """(corpus id -> text, query id -> text, qrels) for one split."""
    directory = Path(directory)
    qrels_path = directory / "qrels" / f"{split}.tsv"
    for needed in (directory / "corpus.jsonl", directory / "queries.jsonl", qrels_path):
        if not needed.is_file():
            raise FileNotFoundError(f"not a BEIR dataset: {needed} is missing")
    corpus = {}
    with open(directory / "corpus.jsonl") as f:
        for line in f:
            doc = json.loads(line)
            corpus[str(doc["_id"])] = (doc.get("title", "") + " " + doc["text"]).strip()
    qrels: dict[str, dict[str, int]] = {}
    with open(qrels_path) as f:
        for row in csv.DictReader(f, delimiter="\t"):
            if int(row["score"]) > 0:
                qrels.setdefault(str(row["query-id"]), {})[str(row["corpus-id"])] = int(row["score"])
    queries = {}
    with open(directory / "queries.jsonl") as f:
        for line in f:
            q = json.loads(line)
            if str(q["_id"]) in qrels:
                queries[str(q["_id"])] = q["text"]
    return corpus, queries, qrels


def corpus_sources(name: str, corpus: dict[str, str]) -> list[Source]:
    return [
        Source(
            path=f"beir:{name}/{doc_id}",
            name=doc_id,
            sha256=text_hash(text),
            size=len(text),
            load=lambda text=text: [text],
        )
        for doc_id, text in corpus.items()
    ]


def evaluate_beir(
    directory: Path, split: str, modes: list[str], settings: Settings, progress: bool = True
) -> dict:
    """Index the corpus into `settings.index` (incrementally) and score every mode."""
    directory = Path(directory)
    corpus, queries, qrels = load_beir(directory, split)
    started = time.perf_counter()
    ingest_report = update_index(
        corpus_sources(directory.name, corpus), settings, prune=lambda p: True, progress=progress
    )
    ingest_seconds = time.perf_counter() - started
    retriever = Retriever(settings.index)
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
        "figures": figures,
        "settings": index_settings(settings, retriever.snapshot().manifest),
        "timings": {
            "ingest_s": ingest_seconds,
            "search_s": timings,
            "chunks_embedded": ingest_report.chunks_embedded,
        },
        "per_query": per_query,
    }
