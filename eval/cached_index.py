"""The cache of indexes that `rag eval` and the fine-tuning commands build when no `--index` is
given, so that a second run on the same data and settings costs no embedding."""

from __future__ import annotations

import hashlib
from pathlib import Path

from rag.embedders import document_backend
from rag.embedding import resolve_precision
from rag.paths import cache_dir
from rag.settings import Settings


def cache_index(kind: str, dataset: Path, settings: Settings) -> Path:
    """The cached index of `dataset` (a PDF folder, a BEIR directory, a SQuAD file) for `kind`
    of run and the settings that shape its vectors.

    Keyed by the dataset's resolved path, not only its name: `a/pdfs` and `b/pdfs` once shared
    an index, and the second run searched both folders' PDFs. The name stays in the key so that
    a person can tell the directories apart.
    """
    resolved = Path(dataset).resolve()
    digest = hashlib.blake2b(str(resolved).encode(), digest_size=4).hexdigest()
    slug = settings.model.replace("/", "_")
    backend = document_backend(settings.model, settings.embed_backend, settings.embed_precision)
    if backend == "torch":  # bf16 and fp32 vectors differ (slightly): keep their indexes apart
        backend += "-" + resolve_precision(settings.embed_precision, model=settings.model)
    header = "" if settings.doc_header == "none" else f"-h{settings.doc_header}"
    if settings.table_context != "none":
        header += f"-t{settings.table_context}"
    return cache_dir("eval") / (
        f"{kind}-{resolved.name}-{digest}-{slug}-{backend}-c{settings.chunk_size}-o{settings.chunk_overlap}"
        + header
    )
