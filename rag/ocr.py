"""OCR for pages with no text layer or unreadable text (`--ocr auto|always|never`): the page is
rendered with pypdfium2 and read by RapidOCR, whose ONNX models (PP-OCRv4, Chinese and English)
ship inside its wheel, so nothing is downloaded. Optional: `pip install 'ragstack[ocr]'`.

About 4 s a page on two cores: a long scanned file may need a larger RAG_PARSE_TIMEOUT_S.
"""

from __future__ import annotations

import importlib.util
import logging
from functools import lru_cache

MODES = ("auto", "always", "never")
SCALE = 2.0  # 144 dpi: small print reads; more costs time for little gain
MEMORY_MB = 1024  # address space the parsing sandbox adds for OCR (rag.parsing_sandbox)


def available() -> bool:
    """Whether the extra is installed, without importing it (onnxruntime and OpenCV are heavy,
    and most files never need them)."""
    return importlib.util.find_spec("rapidocr_onnxruntime") is not None


@lru_cache(maxsize=1)
def _engine():
    from rapidocr_onnxruntime import RapidOCR

    logging.getLogger("RapidOCR").setLevel(logging.ERROR)
    return RapidOCR()


def read_page(page) -> str:
    """The text OCR reads on a pypdfium2 page: its lines, top to bottom, one per line."""
    image = page.render(scale=SCALE).to_numpy()
    found, _ = _engine()(image)
    return "\n".join(line[1] for line in found or [])
