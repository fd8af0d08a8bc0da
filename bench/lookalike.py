"""Look-alike documents: what each lever does to page hit@k on one PDF question set.

Builds (or reuses, from the eval cache) an index of the PDFs with and without document headers,
then scores every combination of the search-time levers (routing, duplicate folding) in the
three modes, and with `--reranker DIR` (a `rag finetune-rerank` model) hybrid search with the
cross-encoder over its top 50. Questions and PDFs are the user's: nothing here knows which
dataset it reads.

    python bench/lookalike.py ../shared/data/financebench/qa.jsonl --pdfs ../shared/data/financebench/pdfs
    python bench/lookalike.py ../shared/data/xquad/xquad.en.json
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from eval.cached_index import cache_index  # noqa: E402
from eval.datasets import load_and_index, page_qrels  # noqa: E402
from eval.metrics import ranking_metrics  # noqa: E402
from eval.pdfqa import result_rankings  # noqa: E402
from rag.document_context import HEADER_SCHEME  # noqa: E402
from rag.reranker import Reranker  # noqa: E402
from rag.retrieval import Retriever  # noqa: E402
from rag.settings import Settings  # noqa: E402
from rag.tables import TABLE_SCHEME  # noqa: E402

METRICS = ["hit_rate@1", "hit_rate@5", "hit_rate@10", "mrr@10"]


def score(
    retriever: Retriever, questions: list[dict], mode: str, collapse: bool, own_chunk_only: bool = False
) -> dict[str, float]:
    qrels = page_qrels(retriever.snapshot(), questions)
    found = retriever.search_batch([q["question"] for q in questions], k=10, mode=mode, collapse=collapse)
    rankings = result_rankings(questions, found, qrels, own_chunk_only)
    return ranking_metrics(qrels, rankings, METRICS)[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("qa_file", type=Path)
    parser.add_argument("--pdfs", type=Path, help="the PDFs of a JSONL file (a SQuAD file holds its corpus)")
    parser.add_argument("--headers", nargs="+", default=["none", HEADER_SCHEME])
    parser.add_argument("--tables", nargs="+", default=[TABLE_SCHEME], help="table heading schemes")
    parser.add_argument("--reranker", help="a cross-encoder directory: adds rows with it over hybrid")
    parser.add_argument("--own-chunk-only", action="store_true",
                        help="a folded result is a hit by its own chunk only, not by its 'also in'")
    args = parser.parse_args()
    console = Console(width=160)
    reranker = Reranker(args.reranker) if args.reranker else None
    title = f"look-alike levers: {args.qa_file.name}"
    table = Table("headers", "tables", "mode", "routing", "folding", "reranker", *METRICS, title=title)
    for scheme, tables in ((h, t) for h in args.headers for t in args.tables):
        settings = Settings(doc_header=scheme, table_context=tables)
        settings.index = cache_index("pdfqa", args.pdfs or args.qa_file, settings)
        questions, _ = load_and_index(args.qa_file, args.pdfs, settings)
        retriever = Retriever(settings.index)
        for mode in ("dense", "bm25", "hybrid"):
            for route in (False, True) if mode == "hybrid" and scheme != "none" else (False,):
                retriever.route = route
                levers = [(False, None), (True, None)]
                if reranker is not None and mode == "hybrid":
                    levers += [(False, reranker), (True, reranker)]
                for collapse, retriever.reranker in levers:
                    figures = score(retriever, questions, mode, collapse, args.own_chunk_only)
                    marks = ("on" if x else "-" for x in (route, collapse, retriever.reranker))
                    row = [scheme, tables, mode, *marks]
                    table.add_row(*row, *(f"{figures[m]:.4f}" for m in METRICS))
                    console.print(*row, *(f"{figures[m]:.4f}" for m in METRICS))  # reranking is slow
    console.print(table)


if __name__ == "__main__":
    main()
