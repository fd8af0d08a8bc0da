"""Real PDFs with known text on known pages, made with fpdf2 for the tests."""

from __future__ import annotations

from pathlib import Path

from fpdf import FPDF


def make_pdf(path: Path, pages: list[str], password: str | None = None) -> Path:
    """Write a PDF whose page i (1-based) holds pages[i-1]; encrypted when `password` is given."""
    pdf = FPDF()
    pdf.set_font("Helvetica", size=11)
    for text in pages:
        pdf.add_page()
        pdf.multi_cell(0, 5, text)
    if password is not None:
        pdf.set_encryption(owner_password="owner-secret", user_password=password)
    pdf.output(str(path))
    return path


def make_image_only_pdf(path: Path, n_pages: int = 2) -> Path:
    """A PDF with drawings and no text layer, as a scan looks to a text extractor."""
    pdf = FPDF()
    for _ in range(n_pages):
        pdf.add_page()
        pdf.set_fill_color(40, 40, 40)
        for row in range(10):
            pdf.rect(20, 20 + row * 12, 150, 6, style="F")
    pdf.output(str(path))
    return path


def lorem(topic: str, n_sentences: int = 30) -> str:
    """Filler prose about one topic, long enough to make several chunks."""
    words = [
        "analysis", "quarterly", "revenue", "segment", "growth", "margin", "operations",
        "forecast", "inventory", "liquidity", "capital", "expenditure", "guidance",
    ]
    sentences = []
    for i in range(n_sentences):
        a, b, c = words[i % 13], words[(i * 5 + 3) % 13], words[(i * 7 + 1) % 13]
        sentences.append(f"The {topic} {a} shows {b} and {c} in period {i}.")
    return " ".join(sentences)
