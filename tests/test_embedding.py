"""Embedding: bf16 precision, and loading models from several threads."""

import threading

import numpy as np
import pytest

from rag.embedding import Embedder, resolve_precision

TEXTS = [
    "Zebras migrate across the Serengeti every July.",
    "Capital expenditure rose to $1.6 billion in fiscal 2018, driven by new plants. " * 8,
    "short",
]


def test_bf16_vectors_match_fp32(embedder) -> None:
    fp32 = Embedder(precision="fp32").encode(TEXTS)
    bf16 = Embedder(precision="bf16").encode(TEXTS)
    assert bf16.dtype == np.float32 and bf16.shape == fp32.shape == (3, 384)
    assert not np.array_equal(bf16, fp32)  # autocast really ran in bf16
    assert (bf16 * fp32).sum(axis=1).min() >= 0.999
    np.testing.assert_allclose(np.linalg.norm(bf16, axis=1), 1.0, atol=1e-5)


@pytest.mark.parametrize(
    "avx512_bf16, amx, expected",
    [(True, False, "bf16"), (False, True, "bf16"), (False, False, "fp32")],
)
def test_auto_precision_follows_the_cpus_bfloat16_support(monkeypatch, avx512_bf16, amx, expected) -> None:
    import torch

    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx)
    assert resolve_precision("auto", "cpu") == expected
    assert resolve_precision("auto", "cuda") == "fp32"  # "auto" picks bf16 on a CPU only
    assert resolve_precision("fp32", "cpu") == "fp32" and resolve_precision("bf16", "cpu") == "bf16"
    with pytest.raises(ValueError, match="unknown precision"):
        resolve_precision("fp8", "cpu")


def test_models_loaded_from_two_threads_leave_torch_unpatched() -> None:
    """transformers swaps torch's init functions while it loads; two loads at once (a server
    following a re-index) used to leave them swapped, and a later 4-bit load then kept a tied
    weight on the meta device."""
    import torch

    originals = {name: getattr(torch.nn.init, name) for name in ("normal_", "uniform_", "zeros_", "ones_")}

    def load() -> None:
        for _ in range(5):
            Embedder()

    threads = [threading.Thread(target=load) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert {name: getattr(torch.nn.init, name) for name in originals} == originals
    assert torch.nn.Linear(2, 2).weight.device.type == "cpu"
