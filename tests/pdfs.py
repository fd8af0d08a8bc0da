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


CJK_FONT = Path("/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf")  # fonts-droid-fallback
LATIN_FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")  # fonts-dejavu-core


def make_cjk_pdf(path: Path, pages: list[str]) -> Path:
    """A PDF of Chinese (Japanese, Korean) text: DejaVu Sans for Latin letters, Droid Sans
    Fallback for the rest, lines wrapped by fpdf2 wherever a line fills up."""
    pdf = FPDF()
    pdf.add_font("latin", fname=str(LATIN_FONT))
    pdf.add_font("cjk", fname=str(CJK_FONT))
    pdf.set_font("latin", size=12)
    pdf.set_fallback_fonts(["cjk"])
    for text in pages:
        pdf.add_page()
        pdf.multi_cell(0, 8, text)
    pdf.output(str(path))
    return path


def strip_unicode_maps(source: Path, target: Path, pages: set[int] | None = None) -> Path:
    """A copy of `source` whose fonts on `pages` (1-based; None: all) lose their ToUnicode map,
    as CID-keyed fonts in some real PDFs come: the glyphs show, the text does not extract."""
    import pypdf

    writer = pypdf.PdfWriter(clone_from=pypdf.PdfReader(str(source)))
    for number, page in enumerate(writer.pages, 1):
        if pages is not None and number not in pages:
            continue
        fonts = page["/Resources"]["/Font"]
        for name in fonts:
            font = fonts[name].get_object()
            if "/ToUnicode" in font:
                del font["/ToUnicode"]
    writer.write(str(target))
    return target
