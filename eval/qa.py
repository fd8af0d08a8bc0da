"""End-to-end answer evaluation: retrieve, answer with citations, then score retrieval (page
hits), answers (EM, F1, ROUGE-L against the best reference) and citations (cited pages against
evidence pages). `evaluate_qa` takes a PDF question set (the FinanceBench `qa.jsonl` format)
with its PDFs, or a SQuAD-format file, whose contexts become the corpus (one single-page
document each) and every question is answered from the whole of it.
"""

from __future__ import annotations

import time
from pathlib import Path

from tqdm import tqdm

from eval.answer_metrics import (
    best_over_references,
    citation_precision_recall,
    exact_match,
    mean_and_nans,
    rouge_l,
    token_f1,
)
from eval.datasets import load_and_index, page_qrels
from eval.metrics import ranking_metrics
from eval.pdfqa import METRICS as RETRIEVAL_METRICS
from eval.pdfqa import result_rankings
from eval.report import index_settings
from rag.answer import Answerer
from rag.generation import Generator
from rag.retrieval import Retriever
from rag.settings import Settings

ANSWER_METRICS = ["exact_match", "f1", "rouge_l", "citation_precision", "citation_recall"]


def score_answer(answer, references: list[str], evidence: list[dict]) -> dict[str, float]:
    """Text metrics against the best of the references; citations against the evidence pages."""
    cited = [(c.doc, c.page_start, c.page_end) for c in answer.citations]
    precision, recall = citation_precision_recall(cited, [(e["doc"], e["page"]) for e in evidence])
    return {
        "exact_match": best_over_references(exact_match, answer.text, references),
        "f1": best_over_references(token_f1, answer.text, references),
        "rouge_l": best_over_references(rouge_l, answer.text, references),
        "citation_precision": precision,
        "citation_recall": recall,
    }


def evaluate_qa(
    data: Path,
    settings: Settings,
    generator: Generator,
    pdfs: Path | None = None,
    limit: int | None = None,
    progress: bool = True,
    judge: Generator | None = None,
) -> dict:
    """Index the corpus of `data` (its `pdfs`, or a SQuAD file's contexts) into `settings.index`,
    then answer every question (the first `limit`) and score the answers."""
    started = time.perf_counter()
    questions, report = load_and_index(Path(data), pdfs, settings, progress)
    ingest_seconds = time.perf_counter() - started
    results = score_questions(questions[:limit], settings, generator, progress, judge)
    results["timings"].update(ingest_s=ingest_seconds, pages=report.pages)
    return {
        "kind": "qa",
        "dataset": str(data),
        "pdfs": str(pdfs) if pdfs else None,
        "documents": sum(report.count(status) for status in ("added", "updated", "unchanged")),
        **results,
    }


def score_questions(
    questions: list[dict],
    settings: Settings,
    generator: Generator,
    progress: bool = True,
    judge: Generator | None = None,
    batch_size: int = 8,
) -> dict:
    """Retrieve and answer each question from the index at `settings.index`, and score both.

    A question: {"id", "question", "references": [answers], "evidence": [{"doc", "page"}]}.
    With a `judge`, ragas's LLM-judged metrics are added (eval.judge).
    """
    retriever = Retriever.from_settings(settings)
    snapshot = retriever.snapshot()
    results = retriever.search_batch(
        [q["question"] for q in questions], k=10, mode=settings.mode, collapse=settings.collapse_duplicates
    )
    qrels = page_qrels(snapshot, questions)
    rankings = result_rankings(questions, results, qrels)
    retrieval, per_query = ranking_metrics(qrels, rankings, RETRIEVAL_METRICS)

    answerer = Answerer.from_settings(retriever, generator, settings)
    rows, samples, started = [], [], time.perf_counter()
    answers: list = []
    with tqdm(total=len(questions), desc="answering", disable=not progress) as bar:
        for start in range(0, len(questions), batch_size):
            group = [q["question"] for q in questions[start : start + batch_size]]
            answers += answerer.answer_batch(group, batch_size)
            bar.update(len(group))
    for q, answer in zip(questions, answers, strict=True):
        samples.append(
            {
                "question": q["question"],
                "answer": answer.text,
                "reference": q["references"][0],
                "contexts": [s.text for s in answer.sources],
            }
        )
        rows.append(
            {
                "id": q["id"],
                "question": q["question"],
                "reference": " | ".join(q["references"]),
                "answer": answer.text,
                "evidence": q["evidence"],
                "found": answer.found,
                "cited": [[c.doc, c.page_start, c.page_end] for c in answer.citations],
                "page_hit@10": per_query[q["id"]]["hit_rate@10"],
                **score_answer(answer, q["references"], q["evidence"]),
            }
        )
    answer_seconds = time.perf_counter() - started

    figures = {f"retrieval ({settings.mode})": retrieval, "answers": {}}
    nan_counts: dict[str, dict[str, int]] = {"answers": {}}
    for metric in ANSWER_METRICS:
        figures["answers"][metric], nan_counts["answers"][metric] = mean_and_nans(row[metric] for row in rows)
    judge_seconds = 0.0
    if judge is not None:
        from eval.judge import JUDGE_METRICS, judge_scores

        started = time.perf_counter()
        for row, scores in zip(
            rows, judge_scores(samples, judge, retriever.embedder, progress=progress), strict=True
        ):
            row.update({f"judge:{m}": v for m, v in scores.items()})
        judge_seconds = time.perf_counter() - started
        figures["judge"], nan_counts["judge"] = {}, {}
        for metric in JUDGE_METRICS:
            figures["judge"][metric], nan_counts["judge"][metric] = mean_and_nans(
                r[f"judge:{metric}"] for r in rows
            )
    return {
        "questions": len(questions),
        "figures": figures,
        "nan_counts": nan_counts,
        "settings": {
            **index_settings(settings, snapshot.manifest),
            "mode": settings.mode,
            "generator": generator.name,
            "answer_k": settings.answer_k,
            "max_tokens": settings.max_tokens,
            "min_similarity": settings.min_similarity,
            "judge": judge.name if judge else None,
        },
        "timings": {
            "answer_s": answer_seconds,
            "seconds_per_answer": answer_seconds / max(len(questions), 1),
            "batch_size": batch_size,
            "judge_s": judge_seconds,
        },
        "per_question": rows,
    }
