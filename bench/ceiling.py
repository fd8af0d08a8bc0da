"""Where the page misses are on a PDF question set: the document choice, or the page inside it.

For each mode, page hit@k as searched, beside page hit@k when the search is restricted to each
question's evidence document (the document choice made perfectly), and how often the evidence
document is the first, or among the first three, documents in the results.

    python bench/ceiling.py INDEX ../shared/data/financebench/qa.jsonl
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from eval.datasets import load_questions  # noqa: E402
from rag.retrieval import MODES, Retriever, SearchResult  # noqa: E402

DEPTH = 50


def first_hit(hits: list[SearchResult], evidence: list[dict]) -> int | None:
    """1-based rank of the first result covering an evidence page."""
    for rank, hit in enumerate(hits, start=1):
        if any(hit.doc == e["doc"] and hit.page_start <= e["page"] <= hit.page_end for e in evidence):
            return rank
    return None


def document_rank(hits: list[SearchResult], evidence: list[dict]) -> int | None:
    """1-based rank of the evidence document among the documents in order of first appearance."""
    documents = list(dict.fromkeys(hit.doc for hit in hits))
    wanted = {e["doc"] for e in evidence}
    return next((rank for rank, doc in enumerate(documents, start=1) if doc in wanted), None)


def share_within(ranks: list[int | None], k: int) -> str:
    return f"{sum(1 for r in ranks if r is not None and r <= k) / len(ranks):.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("index", type=Path)
    parser.add_argument("qa_file", type=Path)
    args = parser.parse_args()
    questions = load_questions(args.qa_file)
    retriever = Retriever(args.index)
    table = Table(
        "mode", "hit@1", "hit@5", "evidence doc only: hit@1", "hit@5", "hit@10", f"hit@{DEPTH}",
        "evidence doc first", "in top 3", title=f"{args.qa_file} over {args.index}",
    )
    for mode in MODES:
        found = retriever.search_batch([q["question"] for q in questions], k=DEPTH, mode=mode)
        inside = [
            retriever.search(q["question"], k=DEPTH, mode=mode, docs=[e["doc"] for e in q["evidence"]])
            for q in questions
        ]
        ranks = [first_hit(hits, q["evidence"]) for hits, q in zip(found, questions, strict=True)]
        ranks_inside = [first_hit(hits, q["evidence"]) for hits, q in zip(inside, questions, strict=True)]
        doc_ranks = [document_rank(hits, q["evidence"]) for hits, q in zip(found, questions, strict=True)]
        table.add_row(
            mode, share_within(ranks, 1), share_within(ranks, 5),
            *(share_within(ranks_inside, k) for k in (1, 5, 10, DEPTH)),
            share_within(doc_ranks, 1), share_within(doc_ranks, 3),
        )
    Console().print(table)


if __name__ == "__main__":
    main()
