"""Embedding: bf16 precision, its calibration, prompts, and loading models from several threads."""

import json
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


def test_auto_precision_is_measured_once_and_remembered(tmp_path, monkeypatch, embedder) -> None:
    """RAG_EMBED_PRECISION=auto: the faster of fp32 and bf16 as measured here, the figures kept
    for the next process and shown by `rag status`."""
    from conftest import rag_cli

    from rag import calibration
    from rag.calibration import calibrated_precision, recorded

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert recorded(embedder.name) is None
    choice = calibrated_precision(embedder)
    found = recorded(embedder.name)
    assert set(found["texts_per_s"]) == {"fp32", "bf16"} and min(found["texts_per_s"].values()) > 0
    assert choice == found["choice"] == max(found["texts_per_s"], key=found["texts_per_s"].get)

    monkeypatch.setattr(calibration, "_texts_per_second", lambda *_: pytest.fail("measured twice"))
    assert calibrated_precision(embedder) == choice
    assert resolve_precision("auto", "cpu", embedder.name) == choice
    assert resolve_precision("fp32", "cpu", embedder.name) == "fp32"

    settings = _ingest_one(tmp_path, embedder)
    done = rag_cli("status", "--index", str(settings.index), "--json",
                   env={"XDG_CACHE_HOME": str(tmp_path / "cache")}, timeout=120)
    assert done.returncode == 0, done.stderr
    status = json.loads(done.stdout)
    assert status["embed_precision"] == choice and "texts/s" in status["embed_precision_why"]


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


def _ingest_one(tmp_path, embedder, **prompts):
    from pdfs import make_pdf

    from rag.ingest import ingest
    from rag.settings import Settings

    folder = tmp_path / "pdfs"
    folder.mkdir(exist_ok=True)
    make_pdf(folder / "zebras.pdf", [TEXTS[0] + " The herds follow the rains north into Kenya."])
    settings = Settings(index=tmp_path / "index", **prompts)
    ingest([folder], settings, progress=False, embedder=embedder)
    return settings


def test_query_and_document_prompts_are_recorded_and_used(tmp_path, embedder) -> None:
    """E5-style prompts ("query: ", "passage: "): chunks are embedded after the document prompt,
    queries after the query prompt, both recorded in the index so every reader agrees."""
    from indexes import IndexStore, contextual_text
    from rag.ingest import ModelMismatch, ingest
    from rag.retrieval import Retriever
    from rag.settings import Settings

    settings = _ingest_one(tmp_path, embedder, query_prompt="query: ", document_prompt="passage: ")
    with IndexStore(settings.index).open() as snap:
        assert (snap.manifest.query_prompt, snap.manifest.document_prompt) == ("query: ", "passage: ")
        header = {d.name: d.header for d in snap.documents()}["zebras.pdf"]
        chunk = snap.records.all_chunks()[0]
        stored = np.asarray(snap.vectors[0])
    text = contextual_text(header, chunk.text)
    assert np.allclose(stored, embedder.encode([text], prompt="passage: ")[0], atol=1e-5)
    assert not np.allclose(stored, embedder.encode([text])[0], atol=1e-3)

    question = "When do zebras migrate?"
    hit = Retriever(settings.index, embedder=embedder).search(question, k=1, mode="dense")[0]
    expected = float(embedder.encode([question], prompt="query: ")[0] @ stored)
    assert hit.similarity == pytest.approx(expected, abs=1e-4)

    # another document prompt would mix vectors: refused; another query prompt only changes queries
    with pytest.raises(ModelMismatch, match="document prompt"):
        ingest([tmp_path / "pdfs"], Settings(index=settings.index, document_prompt=""), progress=False,
               embedder=embedder)
    ingest([tmp_path / "pdfs"], Settings(index=settings.index, query_prompt=""), progress=False,
           embedder=embedder)
    hit = Retriever(settings.index, embedder=embedder).search(question, k=1, mode="dense")[0]
    assert hit.similarity == pytest.approx(float(embedder.encode([question])[0] @ stored), abs=1e-4)


def test_a_models_own_prompts_are_the_default(tmp_path, embedder) -> None:
    """A model whose sentence-transformers config names prompts gets them without settings."""
    import json
    import shutil

    from indexes import IndexStore
    from rag.embedding import resolve_model

    model = tmp_path / "model"
    shutil.copytree(resolve_model(embedder.name), model)
    config = model / "config_sentence_transformers.json"
    data = json.loads(config.read_text()) if config.exists() else {}
    config.write_text(json.dumps({**data, "prompts": {"query": "query: ", "passage": "passage: "}}))
    own = Embedder(str(model), precision="fp32")  # another model: no calibration for it
    assert own.prompts == {"query": "query: ", "document": "passage: "}
    settings = _ingest_one(tmp_path, own, model=str(model))
    with IndexStore(settings.index).open() as snap:
        assert (snap.manifest.query_prompt, snap.manifest.document_prompt) == ("query: ", "passage: ")
