"""Where and how models load: on the GPU when torch sees one, and one load at a time.

While transformers builds a model it swaps torch's weight-init functions (and more) for its own,
process-wide, and puts them back afterwards. Two threads loading at once (a server following a
re-index while it answers, a reader thread beside `rag reindex`) can each restore the other's
swap, leaving the process patched: a later 4-bit load then kept its tied `lm_head` on the meta
device and training failed. Every load in ragstack holds `model_loading`.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

# re-entrant: loading the generator may first convert the bundled GGUF, which loads too
model_loading = threading.RLock()


def has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def default_device() -> str:
    """"cuda" when torch sees a GPU, else "cpu"."""
    return "cuda" if has_cuda() else "cpu"


def inference_device(device: str | None = None) -> str:
    """The device a model runs on (`device`, else the default); on a CPU, torch is told to use
    every core, which it does not by default in every environment."""
    import os

    import torch

    device = device or default_device()
    if device == "cpu":
        torch.set_num_threads(os.cpu_count() or 1)
    return device


@contextmanager
def bitsandbytes_hidden() -> Iterator[None]:
    """Import a library (sentence-transformers) without bitsandbytes being imported along with it.

    sentence-transformers imports transformers' Trainer utilities, which import peft when it is
    installed, which imports bitsandbytes when that is (the `qlora` extra): 2.8 s of every
    Embedder load here, and on a CPU with avx512_bf16 a warning that it could not fetch a kernel
    from the hub. Only QLoRA uses it, and llm_finetune imports it itself. Inside this block
    `import bitsandbytes` fails (peft keeps going without it); availability checks, which look
    the package up when asked, find it again once the block ends.
    """
    with model_loading:  # QLoRA's own import (under this lock) never lands inside the block
        if "bitsandbytes" in sys.modules:
            yield
            return
        sys.modules["bitsandbytes"] = None  # type: ignore[assignment]  # `import` raises ImportError
        try:
            yield
        finally:
            if sys.modules.get("bitsandbytes", False) is None:
                del sys.modules["bitsandbytes"]
