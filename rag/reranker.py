"""A cross-encoder that re-scores the fused candidates: the top 50 in, the top k out.

A bi-encoder embeds the question and the chunk apart and compares two vectors; a cross-encoder
reads them together, so it can see that the question asks for FY2018 capital expenditure and
the chunk is FY2017's. It is too slow to read the whole index (one forward pass per pair), so it
reads only what fusion ranked first (`RERANK_DEPTH`). It reads a chunk as it was embedded: its
document's header, then its text.

No pre-trained cross-encoder ships here: `rag finetune-rerank` trains one (embed_finetune.rerank)
from the bundled MiniLM's weights; any cross-encoder directory or hub id (e.g. a bge-reranker)
works for users online.
"""

from __future__ import annotations

import numpy as np

from rag.embedding import resolve_model, resolve_precision
from rag.loading import bitsandbytes_hidden, inference_device, model_loading

RERANK_DEPTH = 50  # fused candidates the cross-encoder reads per query
MAX_LENGTH = 320  # tokens of question + header + chunk: a 200-token chunk, its header, a question


class Reranker:
    """Score (query, passage) pairs with a cross-encoder; higher is more relevant.

    Args:
        model: a cross-encoder directory (`rag finetune-rerank`) or hub id; a plain encoder
            (the bundled MiniLM's name) gets a new, untrained scoring head: a starting point for
            training, not a reranker.
        precision: as the embedder's: "auto" runs the matrix products in bf16 where the CPU has it.

    Example:
        >>> reranker = Reranker("runs/reranker")
        >>> reranker.scores("3M capital expenditure 2018", ["3M Company ...\\nPurchases of PP&E ..."])
    """

    def __init__(
        self, model: str, batch_size: int = 32, max_length: int = MAX_LENGTH, precision: str = "auto"
    ):

        with bitsandbytes_hidden():
            from sentence_transformers import CrossEncoder

        device = inference_device()
        self.name = model
        self.batch_size = batch_size
        self.device = device
        self.precision = resolve_precision(precision, device)
        try:
            with model_loading:
                self.model = CrossEncoder(
                    resolve_model(model), num_labels=1, max_length=max_length, device=device
                )
        except OSError as err:
            raise ValueError(f"cannot load reranker {model!r}: {err}") from err

    def scores(self, query: str, passages: list[str]) -> np.ndarray:
        """One relevance score per passage."""
        return self.score_pairs([(query, p) for p in passages])

    def score_pairs(self, pairs: list[tuple[str, str]]) -> np.ndarray:
        """One relevance score per (query, passage) pair: many queries' candidates in one call."""
        if not pairs:
            return np.zeros(0, dtype=np.float32)
        import torch

        device_type = "cuda" if self.device.startswith("cuda") else "cpu"
        with torch.autocast(device_type, dtype=torch.bfloat16, enabled=self.precision == "bf16"):
            scores = self.model.predict(
                pairs, batch_size=self.batch_size, show_progress_bar=False, convert_to_numpy=True
            )
        return np.asarray(scores, dtype=np.float32).reshape(len(pairs))


def load_reranker(model: str | Reranker | None) -> Reranker | None:
    """A Reranker from a model name, an already loaded one, or None (no reranking)."""
    if model is None or isinstance(model, Reranker):
        return model
    return Reranker(model)
