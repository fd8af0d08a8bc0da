"""Page-level retrieval evaluation on a PDF question set (the FinanceBench `qa.jsonl` format).

Every line: {"id", "question", "answer", "evidence": [{"doc": FILE_NAME, "page": 1-BASED}]}.
A retrieved chunk is a hit when its page span covers an evidence page of that document. Results
are folded as a user sees them (`collapse_duplicates`: a near-duplicate or another chunk of a page
already shown is listed on that result as "also in"), and a result is a hit when a chunk it shows
is.
"""

from __future__ import annotations

import time
from pathlib import Path

from eval.datasets import load_and_index, page_qrels
from eval.metrics import ranking_metrics
from eval.report import index_settings
from rag.retrieval import Retriever, SearchResult
from rag.settings import Settings

METRICS = ["hit_rate@1", "hit_rate@5", "hit_rate@10", "mrr@10"]


def result_rankings(
    questions: list[dict], results: list[list[SearchResult]], qrels: dict, own_chunk_only: bool = False
) -> dict[str, list[str]]:
    """Question id -> one chunk id per result, for ranx: a relevant chunk among those the result
    shows (its own, then its "also in"; `own_chunk_only`: its own alone), else its own."""
    rankings = {}
    for q, hits in zip(questions, results, strict=True):
        relevant = qrels[q["id"]]
        shown = [[r.chunk_id, *(() if own_chunk_only else (s.chunk_id for s in r.also_in))] for r in hits]
        rankings[q["id"]] = [next((c for c in chunks if c in relevant), chunks[0]) for chunks in shown]
    return rankings


def evaluate_pdfqa(
    qa_file: Path, pdfs: Path, modes: list[str], settings: Settings, progress: bool = True
) -> dict:
    """Ingest `pdfs` into `settings.index` (incrementally), then score page hits per mode."""
    started = time.perf_counter()
    questions, report = load_and_index(Path(qa_file), Path(pdfs), settings, progress)
    ingest_seconds = time.perf_counter() - started
    retriever = Retriever.from_settings(settings)
    snapshot = retriever.snapshot()
    indexed = {d.name for d in snapshot.documents()}

    qrels = page_qrels(snapshot, questions)
    figures, per_query, timings = {}, {}, {}
    for mode in modes:
        started = time.perf_counter()
        results = retriever.search_batch(
            [q["question"] for q in questions], k=10, mode=mode, collapse=settings.collapse_duplicates
        )
        timings[mode] = time.perf_counter() - started
        rankings = result_rankings(questions, results, qrels)
        figures[mode], per_query[mode] = ranking_metrics(qrels, rankings, METRICS)
        for q, hits in zip(questions, results, strict=True):
            q.setdefault("retrieved", {})[mode] = [[r.doc, r.page_start, r.page_end] for r in hits[:5]]
    manifest = snapshot.manifest
    return {
        "qa_file": str(qa_file),
        "pdfs": str(pdfs),
        "questions": len(questions),
        "documents_indexed": len(indexed),
        "evidence_not_indexed": sum(
            1 for q in questions if not any(e["doc"] in indexed for e in q["evidence"])
        ),
        "failed_files": [f.name for f in report.failed],
        "figures": figures,
        "settings": index_settings(settings, manifest),
        "timings": {"ingest_s": ingest_seconds, "search_s": timings, "pages": report.pages},
        "per_question": [
            {
                "id": q["id"],
                "evidence": q["evidence"],
                "retrieved": q["retrieved"],
                **{f"{mode}:{m}": per_query[mode][q["id"]][m] for mode in modes for m in METRICS},
            }
            for q in questions
        ],
    }
