"""The cross-encoder stage: the Retriever re-scores its top candidates with it, `--rerank` reaches
it from the CLI, and `rag finetune-rerank` trains one (a few steps of the real MiniLM) that
separates its training positives from their negatives and is then used by `rag search`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import FACTS
from typer.testing import CliRunner

from embed_finetune.rerank import RerankConfig, train_reranker
from indexes import IndexStore, contextual_text
from rag.cli import app
from rag.embedding import DEFAULT_MODEL
from rag.reranker import RERANK_DEPTH, Reranker
from rag.retrieval import Retriever

QUESTION = "Which volcano erupts near Catania?"


@pytest.fixture(scope="module")
def untrained() -> Reranker:
    # plumbing only: the bundled encoder with a new, untrained scoring head scores pairs
    # deterministically, which is all the ordering test needs
    return Reranker(DEFAULT_MODEL)


def test_retriever_orders_its_candidates_by_the_cross_encoder(prose_index, embedder, untrained) -> None:
    plain = Retriever(prose_index.index, embedder)
    reranked = Retriever(prose_index.index, embedder, reranker=untrained)
    candidates = plain.search(QUESTION, k=RERANK_DEPTH)
    hits = reranked.search(QUESTION, k=3)

    headers = {d.name: d.header for d in plain.snapshot().documents()}
    assert any(headers.values())
    expected = untrained.scores(QUESTION, [contextual_text(headers[c.doc], c.text) for c in candidates])
    best = np.argsort(-expected, kind="stable")[:3]
    assert [h.chunk_id for h in hits] == [candidates[i].chunk_id for i in best]
    assert [h.score for h in hits] == pytest.approx([float(expected[i]) for i in best], abs=1e-4)
    # the cross-encoder's scores are not the fused ones: the order really changed hands
    assert [h.score for h in hits] != [c.score for c in candidates[:3]]


def test_results_past_the_rerank_depth_keep_their_fused_order(
    prose_index, embedder, untrained, monkeypatch
) -> None:
    plain = Retriever(prose_index.index, embedder)
    n = plain.snapshot().n_chunks
    depth = 4
    monkeypatch.setattr("rag.retrieval.RERANK_DEPTH", depth)
    hits = Retriever(prose_index.index, embedder, reranker=untrained).search(QUESTION, k=n)
    fused = plain.search(QUESTION, k=n)
    assert {h.chunk_id for h in hits[:depth]} == {c.chunk_id for c in fused[:depth]}
    assert [h.chunk_id for h in hits[depth:]] == [c.chunk_id for c in fused[depth:]]


def test_a_reranker_that_cannot_load_is_a_clear_error(prose_index, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["search", "bees", "--index", str(prose_index.index), "--rerank", str(tmp_path / "missing")]
    )
    assert result.exit_code == 2
    assert "missing" in result.output


def _positive_first(model: Reranker, rows: dict[str, list]) -> float:
    """Share of the questions whose own sentence scores above its three others."""
    scores = model.score_pairs(list(zip(rows["query"], rows["passage"], strict=True))).reshape(-1, 4)
    return float((scores.argmax(axis=1) == 0).mean())


def test_training_separates_positives_from_negatives(tmp_path: Path, untrained) -> None:
    facts = [s for pages in FACTS.values() for page in pages for s in page.split(". ")]
    rows: dict[str, list] = {"query": [], "passage": [], "label": []}
    for i, fact in enumerate(facts):  # the start of a sentence asks for it, against three others
        question = " ".join(fact.split()[:6])
        for j in (i, (i + 3) % len(facts), (i + 7) % len(facts), (i + 11) % len(facts)):
            rows["query"].append(question)
            rows["passage"].append(facts[j])
            rows["label"].append(1.0 if i == j else 0.0)
    config = RerankConfig(negatives=3, batch_size=8, learning_rate=1e-4, max_steps=40)
    trained = train_reranker(DEFAULT_MODEL, rows, tmp_path / "ce", config)
    assert trained.steps == 40 and trained.examples == len(rows["label"])
    assert trained.log[-1]["loss"] < trained.log[0]["loss"]

    before, after = _positive_first(untrained, rows), _positive_first(Reranker(str(tmp_path / "ce")), rows)
    print(f"positive first: {before:.2f} untrained -> {after:.2f} trained")
    assert after >= 0.9 and after > before


def test_training_rows_read_positives_as_the_reranker_sees_candidates(prose_index, embedder) -> None:
    """A BEIR pair's positive is its whole document, but what the reranker ranks are chunks with
    their header: positives are taken from the query's own results as chunks (a model trained on
    whole documents against chunks learned to tell the formats apart: nDCG@10 0.71 -> 0.22)."""
    from embed_finetune.pairs import Pair, PairSet
    from embed_finetune.rerank import training_examples

    whole = {name: "\n".join(pages) for name, pages in FACTS.items()}
    question = "Which eruption closed European airspace because of ash?"
    pairs = PairSet([Pair("q1", question, "volcanoes.pdf", whole["volcanoes.pdf"])], whole, "test")
    retriever = Retriever(prose_index.index, embedder)
    rows = training_examples(pairs, retriever, "doc", RerankConfig(negatives=3))
    with IndexStore(prose_index.index).open() as snap:
        headers = {d.name: d.header for d in snap.documents()}
        chunks = {c.chunk_id: c for c in snap.records.all_chunks()}
    as_searched = {contextual_text(headers[c.doc], c.text): c.doc for c in chunks.values()}
    positives = [t for t, label in zip(rows["passage"], rows["label"], strict=True) if label == 1.0]
    negatives = [t for t, label in zip(rows["passage"], rows["label"], strict=True) if label == 0.0]
    assert positives and whole["volcanoes.pdf"] not in positives
    assert all(as_searched.get(t) == "volcanoes.pdf" for t in positives)
    assert len(negatives) == 3 and all(as_searched.get(t) not in (None, "volcanoes.pdf") for t in negatives)


@pytest.mark.slow
def test_finetune_rerank_end_to_end_then_search_with_it(tmp_path: Path, prose_index) -> None:
    runner = CliRunner()
    out = tmp_path / "reranker"
    args = [
        "finetune-rerank", "--index", str(prose_index.index), "--out", str(out), "--synthetic", "60",
        "--round-trip-k", "5", "--held-out", "0.3", "--batch-size", "8", "--max-steps", "6",
        "--negatives", "3", "--lr", "1e-4",
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    info = json.loads((out / "eval" / "finetune.json").read_text())
    assert info["train"]["steps"] == 6 and info["held_out_queries"] > 0
    assert info["rerank_ms_per_query"] > 0
    assert set(info["before"]) == set(info["after"]) == {"held-out hybrid"}
    card = (out / "README.md").read_text()
    assert "## ragstack fine-tuning" in card and "ms per query" in card
    assert not (out / "checkpoints").exists()

    index = str(prose_index.index)
    search = ["search", QUESTION, "--index", index, "--rerank", str(out), "--json", "-k", "4"]
    result = runner.invoke(app, search)
    assert result.exit_code == 0, result.output
    hits = json.loads(result.output)
    scores = [h["score"] for h in hits]
    assert len(hits) == 4 and scores == sorted(scores, reverse=True)
    headers = {d.name: d.header for d in IndexStore(prose_index.index).documents()}
    passages = [contextual_text(headers[h["doc"]], h["text"]) for h in hits]
    reranker = Reranker(str(out))
    # bf16 autocast keeps ~3 digits, and a batch of 50 pads other lengths than a batch of 4
    tolerance = 1e-4 if reranker.precision == "fp32" else 1e-2
    assert scores == pytest.approx(reranker.scores(QUESTION, passages).tolist(), abs=tolerance)
