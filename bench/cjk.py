"""Questions over PDFs in any script: a SQuAD-format file's contexts rendered to PDFs (DejaVu Sans,
Droid Sans Fallback for CJK), ingested like anyone's PDFs (extraction, chunking, BM25 words and
embeddings as shipped), then each question's page hit@k by mode. The PDFs are the data's, made
here; nothing in the pipeline knows which dataset it reads.

    python bench/cjk.py ../shared/data/xquad/xquad.zh.json
    python bench/cjk.py ../shared/data/xquad/xquad.en.json      # the same, for English

Needs fonts-droid-fallback and fonts-dejavu-core (apt). The PDFs are cached in
~/.cache/ragstack/bench/; the index is built afresh in a temporary folder unless --index is given.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from eval.datasets import load_squad  # noqa: E402
from eval.metrics import ranking_metrics  # noqa: E402
from indexes import IndexStore  # noqa: E402
from rag.ingest import ingest  # noqa: E402
from rag.paths import cache_dir  # noqa: E402
from rag.retrieval import Retriever  # noqa: E402
from rag.settings import Settings  # noqa: E402

CJK_FONT = "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf"
LATIN_FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
METRICS = ["hit_rate@1", "hit_rate@5", "hit_rate@10", "mrr@10"]


def render(contexts: dict[str, str], folder: Path) -> Path:
    """One PDF per context, named after it; kept between runs."""
    from fpdf import FPDF

    folder.mkdir(parents=True, exist_ok=True)
    for name, text in tqdm(contexts.items(), desc="render", unit="pdf"):
        path = folder / f"{name}.pdf"
        if path.exists():
            continue
        pdf = FPDF()
        pdf.add_font("latin", fname=LATIN_FONT)
        pdf.add_font("cjk", fname=CJK_FONT)
        pdf.set_font("latin", size=11)
        pdf.set_fallback_fonts(["cjk"])
        pdf.add_page()
        pdf.multi_cell(0, 6, text)
        pdf.output(str(path.with_suffix(".tmp")))
        path.with_suffix(".tmp").rename(path)
    return folder


def score(retriever: Retriever, questions: list[dict], mode: str) -> dict[str, float]:
    """Page hit@k: a result counts when it covers a page of the question's context PDF."""
    snapshot = retriever.snapshot()
    pages = {d.name: d.pages for d in snapshot.documents()}
    covering = snapshot.records.chunks_covering
    qrels = {}
    for q in questions:
        doc = f"{q['evidence'][0]['doc']}.pdf"
        chunks = [c for page in range(1, pages.get(doc, 0) + 1) for c in covering(doc, page)]
        qrels[q["id"]] = dict.fromkeys(chunks, 1) or {"__not_indexed__": 1}
    found = retriever.search_batch([q["question"] for q in questions], k=10, mode=mode)
    rankings = {q["id"]: [r.chunk_id for r in hits] for q, hits in zip(questions, found, strict=True)}
    return ranking_metrics(qrels, rankings, METRICS)[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("squad_file", type=Path)
    parser.add_argument("--index", type=Path, help="index directory (default: a fresh temporary one)")
    args = parser.parse_args()
    contexts, questions = load_squad(args.squad_file)
    pdfs = render(contexts, cache_dir("bench") / f"pdfs-{args.squad_file.stem}")
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(index=args.index or Path(tmp) / "index")
        started = time.perf_counter()
        report = ingest([pdfs], settings)
        seconds = time.perf_counter() - started
        retriever = Retriever(settings.index)
        n_chunks = IndexStore(settings.index).open().n_chunks
        title = (
            f"{args.squad_file.name}: {len(contexts)} PDFs, {len(questions)} questions, {n_chunks} chunks, "
            f"{len(report.failed)} failed, ingest {report.pages / seconds:.1f} pages/s"
        )
        table = Table("mode", *METRICS, title=title)
        for mode in ("dense", "bm25", "hybrid"):
            figures = score(retriever, questions, mode)
            table.add_row(mode, *(f"{figures[m]:.4f}" for m in METRICS))
        Console(width=160).print(table)


if __name__ == "__main__":
    main()
