"""The manifest: what a generation was built with, so that readers and writers agree."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

FORMAT_VERSION = 1


@dataclass
class Manifest:
    """Settings an index is built with; stored as `manifest.json` in every generation.

    Args:
        model: the embedding model as the user named it (a local directory or a hub id).
        dimension: length of each embedding vector.
        normalized: vectors are L2-normalised, so inner product is cosine similarity.
        index_type: the FAISS factory string asked for, or "auto" to choose by corpus size.
        index_factory: the FAISS factory string actually built for this generation.
        embed_backend: "torch" or "onnx-int8", the runtime that computed the vectors.
        chunk_size: chunk length in tokens of the embedding model's tokenizer.
        chunk_overlap: tokens shared by consecutive chunks of one document.
        header_scheme: the rules that wrote each document's header (rag.document_context), or
            "none"; chunks are embedded with their header, so changing it needs a re-index.
        table_scheme: the rules that put a table page's heading into its chunks (rag.tables),
            or "none"; part of the chunk texts, so changing it needs a re-index.
        bm25_tokenizer: how BM25 split chunks into words (indexes.words); queries are split
            the same way. BM25 is rebuilt from the chunk texts at every generation, so a new
            generation always has the current scheme.
        query_prompt, document_prompt: the text put before each query and each chunk when
            embedding them ("query: ", "passage: " for the E5 models); None until the model is
            loaded when the model's own (its sentence-transformers config) are meant.
        store_backend: where the dense and BM25 search structures live: "local" (FAISS and
            bm25s files in the generation) or "milvus" (a collection per generation at
            `milvus_uri`, named from `milvus_prefix`; indexes.milvus). Rebuilt from the kept
            vectors at every generation, so it can change without re-embedding.
    """

    model: str
    dimension: int
    chunk_size: int
    chunk_overlap: int
    normalized: bool = True
    embed_backend: str = "torch"  # or "onnx-int8": vectors differ slightly, so never mixed
    index_type: str = "auto"
    index_factory: str = "Flat"
    header_scheme: str = "none"  # what indexes made before document headers existed read as
    table_scheme: str = "none"  # what indexes made before table headings existed read as
    bm25_tokenizer: str = "english"  # what indexes made before per-script words read as
    query_prompt: str | None = ""  # what indexes made before prompts existed were made with
    document_prompt: str | None = ""
    store_backend: str = "local"
    milvus_uri: str = ""
    milvus_prefix: str = ""
    generation: int = 0
    format_version: int = FORMAT_VERSION
    extra: dict = field(default_factory=dict)

    @property
    def vectors_made_by(self) -> str:
        """The model and document prompt: vectors agree only where both do."""
        return self.model if not self.document_prompt else f"{self.model} | {self.document_prompt!r}"

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=2) + "\n")

    @classmethod
    def load(cls, path: Path) -> Manifest:
        data = json.loads(path.read_text())
        if data.get("format_version") != FORMAT_VERSION:
            raise ValueError(
                f"{path}: index format {data.get('format_version')} is not supported "
                f"(this ragstack reads format {FORMAT_VERSION}); re-ingest into a new index"
            )
        return cls(**data)
