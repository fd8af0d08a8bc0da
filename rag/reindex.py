"""Re-embed a whole index with another embedding model (a tuned one), as one new generation.

The chunks stay as they are (same text, ids and pages); only the vectors, the FAISS index and
the manifest's model change. The writer lock is held while embedding, and the new generation is
published atomically, so searches keep answering from the old generation until the swap and a
crash leaves the old generation in place.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from indexes import IndexStore, Manifest, StoreError, contextual_text
from rag.embedders import load_embedder
from rag.settings import Settings


@dataclass
class ReindexReport:
    index: str
    generation: str
    model: str
    previous_model: str
    chunks: int
    seconds: float


def reindex(
    settings: Settings, model: str, target: Path | None = None, progress: bool = True
) -> ReindexReport:
    """Re-embed every chunk of `settings.index` with `model`.

    Args:
        settings: the index to read (and embedding backend, batch size, precision).
        model: the new embedding model: a local directory (e.g. from `rag finetune-embed`) or a
            hub id.
        target: write the re-embedded index to this directory instead of replacing the
            current generation of `settings.index` (which is then left untouched).
    """
    started = time.perf_counter()
    source = IndexStore(settings.index)
    with source.open() as snapshot:
        destination = IndexStore(target) if target is not None else source
        if target is not None and Path(target).resolve() == source.root.resolve():
            destination = source
        if destination is not source and destination.exists():
            raise StoreError(f"{target} already holds an index: choose an empty directory")
        if Path(model).expanduser().is_dir():  # an absolute path keeps the index usable from anywhere
            model = str(Path(model).expanduser().resolve())
        embedder = load_embedder(
            model, settings.embed_backend, settings.embed_batch_size, settings.embed_precision
        )
        if snapshot.manifest.chunk_size > embedder.max_tokens:
            raise ValueError(
                f"the index's chunks are {snapshot.manifest.chunk_size} tokens but {model} reads "
                f"only {embedder.max_tokens}: ingest again into a new index with --model {model}"
            )
        with destination.writer() as writer:
            # the published generation may have changed since we opened it: take the writer's view
            current = writer.current if destination is source else snapshot
            chunks = current.records.all_chunks()
            documents = current.documents()
            headers = {d.name: d.header for d in documents}
            texts = [contextual_text(headers.get(c.doc, ""), c.text) for c in chunks]
            # the new model's prompts, unless the settings name others
            prompts = {
                f"{kind}_prompt": own if getattr(settings, f"{kind}_prompt") is None
                else getattr(settings, f"{kind}_prompt")
                for kind, own in embedder.prompts.items()
            }
            vectors = embedder.encode(texts, progress=progress, prompt=prompts["document_prompt"])
            manifest = Manifest(
                **{
                    **current.manifest.__dict__,
                    **prompts,
                    "model": model,
                    "dimension": int(vectors.shape[1]) if len(vectors) else embedder.dimension,
                    "embed_backend": embedder.backend,
                }
            )
            published = writer.publish(manifest, documents, chunks, np.asarray(vectors))
            previous = current.manifest.model
    return ReindexReport(
        str(destination.root), published.name, model, previous, len(chunks), time.perf_counter() - started
    )
