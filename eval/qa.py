"""End-to-end answer evaluation on a PDF question set (the FinanceBench `qa.jsonl` format): ingest,
retrieve, answer with citations, then score retrieval (page hits), answers (EM, F1, ROUGE-L) and
citations (cited pages against evidence pages).
"""

from __future__ import annotations

import time
from pathlib import Path

from tqdm import tqdm

from eval.answer_metrics import (
    citation_precision_recall,
    exact_match,
    mean_and_nans,
    rouge_l,
    token_f1,
)
from eval.metrics import ranking_metrics
from eval.pdfqa import METRICS as RETRIEVAL_METRICS
from eval.pdfqa import load_questions, page_qrels
from eval.report import index_settings
from rag.answer import Answerer
from rag.generation import Generator
from rag.ingest import ingest
from rag.retrieval import Retriever
from rag.settings import Settings

ANSWER_METRICS = ["exact_match", "f1", "rouge_l", "citation_precision", "citation_recall"]


def score_answer(answer, reference: str, evidence: list[dict]) -> dict[str, float]:
    cited = [(c.doc, c.page, c.page_end) for c in answer.citations]
    precision, recall = citation_precision_recall(cited, [(e["doc"], e["page"]) for e in evidence])
    return {
        "exact_match": exact_match(answer.text, reference),
        "f1": token_f1(answer.text, reference),
        "rouge_l": rouge_l(answer.text, reference),
        "citation_precision": precision,
        "citation_recall": recall,
    }


def evaluate_qa(
    qa_file: Path,
    pdfs: Path,
    settings: Settings,
    generator: Generator,
    limit: int | None = None,
    progress: bool = True,
) -> dict:
    """Answer every question (the first `limit`) from an index of `pdfs` and score the answers."""
    questions = load_questions(Path(qa_file))[:limit]
    started = time.perf_counter()
    report = ingest([Path(pdfs)], settings, progress=progress)
    ingest_seconds = time.perf_counter() - started
    retriever = Retriever(settings.index)
    snapshot = retriever.snapshot()

    results = retriever.search_batch([q["question"] for q in questions], k=10, mode=settings.mode)
    rankings = {q["id"]: [r.chunk_id for r in hits] for q, hits in zip(questions, results, strict=True)}
    retrieval, per_query = ranking_metrics(page_qrels(snapshot, questions), rankings, RETRIEVAL_METRICS)

    answerer = Answerer(
        retriever,
        generator,
        k=settings.answer_k,
        mode=settings.mode,
        min_similarity=settings.min_similarity,
        max_tokens=settings.max_tokens,
    )
    rows, started = [], time.perf_counter()
    for q in tqdm(questions, desc="answering", disable=not progress):
        answer = answerer.answer(q["question"])
        rows.append(
            {
                "id": q["id"],
                "question": q["question"],
                "reference": q.get("answer", ""),
                "answer": answer.text,
                "evidence": q["evidence"],
                "found": answer.found,
                "cited": [[c.doc, c.page, c.page_end] for c in answer.citations],
                "page_hit@10": per_query[q["id"]]["hit_rate@10"],
                **score_answer(answer, q.get("answer", ""), q["evidence"]),
            }
        )
    answer_seconds = time.perf_counter() - started

    answers, nans = {}, {}
    for metric in ANSWER_METRICS:
        answers[metric], nans[metric] = mean_and_nans(row[metric] for row in rows)
    return {
        "kind": "qa",
        "qa_file": str(qa_file),
        "pdfs": str(pdfs),
        "questions": len(questions),
        "figures": {f"retrieval ({settings.mode})": retrieval, "answers": answers},
        "nan_counts": {"answers": nans},
        "settings": {
            **index_settings(settings, snapshot.manifest),
            "generator": generator.name,
            "answer_k": settings.answer_k,
            "max_tokens": settings.max_tokens,
            "min_similarity": settings.min_similarity,
        },
        "timings": {
            "ingest_s": ingest_seconds,
            "answer_s": answer_seconds,
            "seconds_per_answer": answer_seconds / max(len(questions), 1),
            "pages": report.pages,
        },
        "per_question": rows,
    }
