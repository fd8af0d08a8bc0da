"""`rag demo`: render this project's own docs to PDF, ingest them, search them, and answer a
question from them with citations.

Needs nothing but the installed package: the documents are written here, the models are bundled.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

from fpdf import FPDF

from rag.answer import Answer, Answerer
from rag.engines import close_generator, open_generator
from rag.ingest import IngestReport, ingest
from rag.retrieval import Retriever, SearchResult
from rag.settings import Settings

PACKAGE_ROOT = Path(__file__).resolve().parent.parent
DEMO_QUESTION = "How does re-indexing stay safe when the process crashes?"


def demo_sources() -> dict[str, str]:
    """Texts to render: the README when the source tree is there, and each module's docstring."""
    import indexes
    import rag
    from indexes import dense, store
    from rag import chunking, documents, embedding, retrieval, settings

    texts: dict[str, str] = {}
    readme = PACKAGE_ROOT / "README.md"
    if readme.is_file():
        texts["README"] = readme.read_text()
    modules = [rag, indexes, store, dense, documents, chunking, embedding, retrieval, settings]
    texts["modules"] = "\n\n".join(f"{m.__name__}\n\n{m.__doc__ or ''}" for m in modules)
    return texts


def render_pdf(text: str, path: Path, lines_per_page: int = 45) -> Path:
    """Plain text to a PDF, about `lines_per_page` lines a page, so pages are predictable."""
    pdf = FPDF()
    pdf.set_font("Helvetica", size=9)
    lines: list[str] = []
    for paragraph in text.splitlines():
        plain = paragraph.encode("latin-1", "replace").decode("latin-1")
        lines += textwrap.wrap(plain, 110) or [""]
    for start in range(0, len(lines), lines_per_page):
        pdf.add_page()
        for line in lines[start : start + lines_per_page]:
            pdf.cell(0, 5, line, new_x="LMARGIN", new_y="NEXT")
    pdf.output(str(path))
    return path


def run_demo(
    workdir: Path, question: str | None = None
) -> tuple[IngestReport, list[SearchResult], Answer]:
    """Ingest the docs into `workdir`/index, then search for `question` (DEMO_QUESTION when
    None) and answer it: the ingest report, the three best chunks, the cited answer."""
    question = question or DEMO_QUESTION
    pdfs = workdir / "pdfs"
    pdfs.mkdir(parents=True, exist_ok=True)
    for name, text in demo_sources().items():
        render_pdf(text, pdfs / f"{name}.pdf")
    settings = Settings(index=workdir / "index")
    report = ingest([pdfs], settings)
    retriever = Retriever.from_settings(settings)
    results = retriever.search(question, k=3)
    generator = open_generator(settings)
    try:
        answer = Answerer.from_settings(retriever, generator, settings).answer(question)
    finally:
        close_generator(generator)
    return report, results, answer
