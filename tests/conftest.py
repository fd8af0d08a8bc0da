from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from pdfs import lorem, make_pdf  # noqa: E402

from rag.embedding import Embedder  # noqa: E402
from rag.settings import Settings  # noqa: E402

SHARED_DATA = Path(os.environ.get("RAG_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
needs_shared_data = pytest.mark.skipif(
    not SHARED_DATA.is_dir(), reason=f"evaluation data not found at {SHARED_DATA} (CI has it)"
)


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    """The real bundled MiniLM, loaded once for the whole run."""
    return Embedder()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(index=tmp_path / "index")


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    """Three PDFs with known facts on known pages."""
    folder = tmp_path / "pdfs"
    folder.mkdir()
    make_pdf(folder / "zoo.pdf", [
        lorem("zoo", 20),
        "Zebras migrate across the Serengeti every July in search of fresh grass.",
        lorem("zoo", 40),
    ])
    make_pdf(folder / "plants.pdf", [
        "Photosynthesis turns sunlight into chemical energy inside chloroplasts.",
        lorem("garden", 30),
    ])
    make_pdf(folder / "space.pdf", [
        lorem("orbit", 10),
        lorem("orbit", 10),
        lorem("orbit", 10),
        "Jupiter's moon Europa hides a salty ocean beneath its icy crust.",
    ])
    return folder
