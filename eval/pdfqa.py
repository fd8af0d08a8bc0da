"""Page-level retrieval evaluation on a PDF question set (the FinanceBench `qa.jsonl` format).

Every line: {"id", "question", "answer", "evidence": [{"doc": FILE_NAME, "page": 1-BASED}]}.
A retrieved chunk is a hit when its page span covers an evidence page of that document.
"""

from __future__ import annotations

import time
from pathlib import Path

from eval.datasets import load_and_index, page_qrels
from eval.metrics import ranking_metrics
from eval.report import index_settings
from rag.retrieval import Retriever
from rag.settings import Settings

METRICS = ["hit_rate@1", "hit_rate@5", "hit_rate@10", "mrr@10"]


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
        results = retriever.search_batch([q["question"] for q in questions], k=10, mode=mode)
        timings[mode] = time.perf_counter() - started
        rankings = {q["id"]: [r.chunk_id for r in hits] for q, hits in zip(questions, results, strict=True)}
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
