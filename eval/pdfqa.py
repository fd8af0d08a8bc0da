"""Page-level retrieval evaluation on a PDF question set (the FinanceBench `qa.jsonl` format).

Every line: {"id", "question", "answer", "evidence": [{"doc": FILE_NAME, "page": 1-BASED}]}.
A retrieved chunk is a hit when its page span covers an evidence page of that document.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from eval.metrics import ranking_metrics
from eval.report import index_settings
from rag.ingest import ingest
from rag.retrieval import Retriever
from rag.settings import Settings

METRICS = ["hit_rate@1", "hit_rate@5", "hit_rate@10", "mrr@10"]


def load_questions(path: Path) -> list[dict]:
    questions = []
    with open(path) as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
                item["id"], item["question"] = str(item["id"]), str(item["question"])
                item["evidence"] = [
                    {"doc": str(e["doc"]), "page": int(e["page"])} for e in item.get("evidence", [])
                ]
            except (json.JSONDecodeError, KeyError, TypeError, ValueError) as err:
                raise ValueError(f"{path}:{number}: not a question record: {err}") from err
            questions.append(item)
    if not questions:
        raise ValueError(f"{path}: no questions")
    return questions


def page_qrels(snapshot, questions: list[dict]) -> dict[str, dict[str, int]]:
    """Question id -> the chunks whose page span covers one of its evidence pages."""
    qrels = {}
    for q in questions:
        relevant = {}
        for e in q["evidence"]:
            for chunk_id in snapshot.records.chunks_covering(e["doc"], e["page"]):
                relevant[chunk_id] = 1
        # a question whose evidence is not indexed can only miss
        qrels[q["id"]] = relevant or {"__evidence_not_indexed__": 1}
    return qrels


def evaluate_pdfqa(
    qa_file: Path, pdfs: Path, modes: list[str], settings: Settings, progress: bool = True
) -> dict:
    """Ingest `pdfs` into one shared index (incrementally), then score page hits per mode."""
    questions = load_questions(Path(qa_file))
    started = time.perf_counter()
    report = ingest([Path(pdfs)], settings, progress=progress)
    ingest_seconds = time.perf_counter() - started
    retriever = Retriever(settings.index)
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
