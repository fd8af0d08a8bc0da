"""rag finetune-embed and rag reindex: pair sources, the round-trip filter, the held-out split,
and a tiny real fine-tune (a few steps of the real MiniLM) whose model re-indexes and searches."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from conftest import FACTS
from typer.testing import CliRunner

from embed_finetune.pairs import Pair, PairSet, beir_pairs, qa_pairs
from embed_finetune.split import split_held_out
from embed_finetune.synthetic import crop_query, drop_duplicates, round_trip_filter, synthetic_pairs
from indexes import IndexStore
from rag.cli import app
from rag.retrieval import Retriever


def test_beir_pairs_one_per_relevant_document(tmp_path: Path) -> None:
    beir = tmp_path / "mini"
    (beir / "qrels").mkdir(parents=True)
    docs = {"d1": "Aspirin thins the blood.", "d2": "Statins lower cholesterol.", "d3": "Unrelated."}
    (beir / "corpus.jsonl").write_text(
        "".join(json.dumps({"_id": k, "title": "", "text": v}) + "\n" for k, v in docs.items())
    )
    (beir / "queries.jsonl").write_text(
        json.dumps({"_id": "q1", "text": "blood thinners"})
        + "\n"
        + json.dumps({"_id": "q2", "text": "cholesterol drugs"})
        + "\n"
    )
    (beir / "qrels" / "train.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td2\t1\nq2\td1\t0\n")
    pair_set = beir_pairs(beir, "train")
    assert sorted((p.query, p.positive) for p in pair_set.pairs) == [
        ("blood thinners", "Aspirin thins the blood."),
        ("cholesterol drugs", "Statins lower cholesterol."),
    ]
    assert set(pair_set.corpus) == {"d1", "d2", "d3"}  # negatives may come from all of it
    with pytest.raises(FileNotFoundError):
        beir_pairs(beir, "test")


def test_qa_pairs_use_the_chunks_of_the_evidence_pages(tmp_path: Path, prose_index) -> None:
    qa = tmp_path / "qa.jsonl"
    qa.write_text(
        json.dumps(
            {
                "id": "1",
                "question": "When did the Shinkansen open?",
                "answer": "1964",
                "evidence": [{"doc": "trains.pdf", "page": 1}],
            }
        )
        + "\n"
    )
    with IndexStore(prose_index.index).open() as snapshot:
        pair_set = qa_pairs(qa, snapshot)
        on_page = [c for c in snapshot.records.all_chunks() if c.doc == "trains.pdf" and c.page_start == 1]
    assert sorted(p.positive_id for p in pair_set.pairs) == sorted(c.chunk_id for c in on_page)
    assert any("1964" in p.positive for p in pair_set.pairs)


def test_crop_query_takes_a_sentence_out_of_its_chunk() -> None:
    import random

    text = FACTS["bees.pdf"][0]
    query, rest = crop_query(text, random.Random(1))
    assert query in text and query not in rest and len(query.split()) >= 6
    assert crop_query("Too short to crop.", random.Random(1)) is None


def test_synthetic_pairs_round_trip_and_duplicates(prose_index) -> None:
    with IndexStore(prose_index.index).open() as snapshot:
        chunks = {c.chunk_id: c.text for c in snapshot.records.all_chunks()}
    made = synthetic_pairs(chunks, 100, "crop", seed=3, progress=False)
    assert made.pairs and all(p.positive_id in chunks for p in made.pairs)
    doubled = PairSet(made.pairs + [Pair("dup", made.pairs[0].query.upper() + "!", "x", "y")], chunks, "t")
    assert len(drop_duplicates(doubled).pairs) == len(made.pairs)

    some_chunk = next(iter(chunks))
    vague = Pair("vague", "qwertzuiop asdfghjkl", some_chunk, "")
    wrong = Pair("wrong", "honey bees waggle dance", next(c for c, t in chunks.items() if "Etna" in t), "")
    kept = round_trip_filter(
        PairSet([*made.pairs, vague, wrong], chunks, "t"), Retriever(prose_index.index), k=2
    )
    kept_ids = {p.query_id for p in kept.pairs}
    assert "vague" not in kept_ids and "wrong" not in kept_ids
    assert len(kept_ids) >= len(made.pairs) // 2  # a sentence of a chunk finds its chunk


def test_held_out_split_never_leaks_a_query_into_training() -> None:
    pairs = [Pair(f"q{i}", f"question number {i % 40}", f"c{i}", f"text {i}") for i in range(120)]
    pair_set = PairSet(pairs, {f"c{i}": f"text {i}" for i in range(120)}, "t")
    train, held = split_held_out(pair_set, 0.25, seed=7)
    train_texts = {p.query.lower() for p in train.pairs}
    held_texts = {p.query.lower() for p in held.pairs}
    assert not train_texts & held_texts  # the same question under other ids stays on one side
    assert len(train.pairs) + len(held.pairs) == 120
    assert 0.1 < len(held_texts) / 40 < 0.45
    assert split_held_out(pair_set, 0.25, seed=7)[1].queries() == held.queries()  # repeatable
    with pytest.raises(ValueError):
        split_held_out(pair_set, 1.5)


@pytest.mark.slow
def test_tiny_finetune_reindexes_and_searches(tmp_path: Path, prose_index) -> None:
    runner = CliRunner()
    index = str(prose_index.index)
    searcher = Retriever(prose_index.index)  # opened before: must follow the swap of model
    model_dir = tmp_path / "tuned"
    result = runner.invoke(
        app,
        [
            "finetune-embed",
            "--index",
            index,
            "--out",
            str(model_dir),
            "--synthetic",
            "60",
            "--round-trip-k",
            "5",
            "--held-out",
            "0.3",
            "--batch-size",
            "4",
            "--max-steps",
            "3",
            "--negatives",
            "1",
            "--lr",
            "1e-4",
        ],
    )
    assert result.exit_code == 0, result.output
    card = (model_dir / "README.md").read_text()
    assert "## ragstack fine-tuning" in card and "held-out dense" in card
    info = json.loads((model_dir / "eval" / "finetune.json").read_text())
    assert info["train"]["steps"] == 3 and info["held_out_queries"] > 0
    compare = (model_dir / "eval" / "compare.md").read_text()
    assert "held-out dense" in compare and "delta" in compare
    assert not (model_dir / "checkpoints").exists()

    from sentence_transformers import SentenceTransformer

    tuned = SentenceTransformer(str(model_dir))
    assert tuned.encode(["bees"]).shape == (1, 384)

    before = IndexStore(index).current_name()
    failures: list[BaseException] = []
    answered = []
    done = threading.Event()

    def keep_searching() -> None:  # a reader during the re-index: never an error, never empty
        reader = Retriever(prose_index.index)
        while not done.is_set():
            try:
                answered.append(bool(reader.search("bees", k=2, mode="hybrid")))
            except BaseException as err:  # noqa: BLE001 - reported by the assertion below
                failures.append(err)

    thread = threading.Thread(target=keep_searching)
    thread.start()
    result = runner.invoke(app, ["reindex", "--index", index, "--model", str(model_dir), "-q"])
    done.set()
    thread.join()
    assert result.exit_code == 0, result.output
    assert not failures and answered and all(answered)
    with IndexStore(index).open() as snapshot:  # its name stays readable once closed
        assert snapshot.name != before and snapshot.manifest.model == str(model_dir.resolve())
    hits = searcher.search("Which volcano erupts near Catania?", k=3, mode="dense")
    assert searcher.embedder.name == str(model_dir.resolve())
    assert hits and hits[0].doc == "volcanoes.pdf"

    result = runner.invoke(app, ["reindex", "--index", index, "--model", str(tmp_path / "missing")])
    assert result.exit_code == 2 and "missing" in result.output
    assert IndexStore(index).current_name() == snapshot.name  # a failed re-index changes nothing


def test_clean_question_keeps_one_plain_question() -> None:
    from embed_finetune.synthetic import clean_question

    assert clean_question('Question: "When did the Shinkansen open?"\nIt opened in 1964.') == (
        "When did the Shinkansen open?"
    )
    assert clean_question("\n\nWhat do bees dance for?") == "What do bees dance for?"
    assert clean_question("Yes.") is None  # too short to be a search query
    assert clean_question("") is None


def test_llm_queries_from_the_real_generator(prose_index, generator) -> None:
    """The bundled SmolLM2 writes questions for sampled chunks (3 chunks, a few seconds each)."""
    with IndexStore(prose_index.index).open() as snapshot:
        chunks = {c.chunk_id: c.text for c in snapshot.records.all_chunks()}
        doc_of = {c.chunk_id: c.doc for c in snapshot.records.all_chunks()}
    made = synthetic_pairs(chunks, 3, "llm", generator, doc_of=doc_of.get, progress=False)
    assert made.extra["sampled_chunks"] == 3 and 1 <= len(made.pairs) <= 3
    for pair in made.pairs:
        assert pair.positive == chunks[pair.positive_id]  # the whole chunk is the positive
        assert 4 <= len(pair.query.split()) <= 40 and "\n" not in pair.query


def test_training_resumes_from_its_last_checkpoint(tmp_path: Path, prose_index) -> None:
    from embed_finetune.train import TrainConfig, load_model, train

    with IndexStore(prose_index.index).open() as snapshot:
        chunks = {c.chunk_id: c.text for c in snapshot.records.all_chunks()}
    pairs = synthetic_pairs(chunks, 40, "crop", seed=1, progress=False).pairs
    config = TrainConfig(batch_size=4, max_steps=2, save_steps=1, negatives=0, precision="fp32")
    first = train(load_model("all-MiniLM-L6-v2", 64), pairs, chunks, tmp_path, config, progress=False)
    assert first.steps == 2 and first.resumed_from is None
    assert (tmp_path / "checkpoints" / "checkpoint-2").is_dir() and (tmp_path / "train-data").is_dir()

    config.max_steps = 4  # as if the first run had been stopped after 2 of 4 steps
    second = train(
        load_model("all-MiniLM-L6-v2", 64), pairs, chunks, tmp_path, config, resume=True, progress=False
    )
    assert second.resumed_from.endswith("checkpoint-2") and second.steps == 4
    state = json.loads((tmp_path / "checkpoints" / "checkpoint-4" / "trainer_state.json").read_text())
    assert state["global_step"] == 4


def test_table_chunks_get_questions_about_their_rows() -> None:
    import random

    from embed_finetune.synthetic import document_title, table_query, table_rows

    table = (
        "Consolidated Statement of Cash Flows\nYears ended December 31\n(Millions) 2018 2017 2016\n"
        "Net income including noncontrolling interest $ 5,363 $ 4,869 $ 5,058\n"
        "Depreciation and amortization 1,488 1,544 1,474\n"
        "Purchases of property, plant and equipment (PP&E) (1,577) (1,373) (1,420)\n"
        "Proceeds from sale of PP&E and other assets 262 49 58\n"
    )
    assert table_rows(table) == [
        "Net income including noncontrolling interest",
        "Depreciation and amortization",
        "Purchases of property, plant and equipment (PP&E)",
        "Proceeds from sale of PP&E and other assets",
    ]  # the header lines are not rows
    assert document_title("3M_2018_10K.pdf") == ("3M", "2018")
    assert document_title("BESTBUY_2024Q2_10Q.pdf") == ("Bestbuy", "")
    question, positive = table_query(table, "3M_2018_10K.pdf", random.Random(0))
    assert positive == table and "3M" in question and "2018" in question and question.endswith("?")
    assert any(row.lower() in question.lower() for row in table_rows(table))
    prose = "In 2018 the company bought new plants. It spent 1.5 billion dollars on them in the year 2018."
    assert table_rows(prose) == [] and table_query(prose, "3M_2018_10K.pdf", random.Random(0)) is None


def test_cached_and_matryoshka_losses_train(tmp_path: Path, prose_index) -> None:
    from sentence_transformers.sentence_transformer.losses import (
        CachedMultipleNegativesRankingLoss,
        MatryoshkaLoss,
    )

    from embed_finetune.train import TrainConfig, load_model, make_loss, train

    model = load_model("all-MiniLM-L6-v2", 64)
    config = TrainConfig(
        loss="cached-mnrl",
        mini_batch_size=2,
        matryoshka_dims=[384, 128],
        batch_size=4,
        max_steps=2,
        negatives=0,
        precision="fp32",
    )
    loss = make_loss(model, config)
    assert isinstance(loss, MatryoshkaLoss) and isinstance(loss.loss, CachedMultipleNegativesRankingLoss)
    with IndexStore(prose_index.index).open() as snapshot:
        chunks = {c.chunk_id: c.text for c in snapshot.records.all_chunks()}
    pairs = synthetic_pairs(chunks, 20, "crop", seed=2, progress=False).pairs
    result = train(model, pairs, chunks, tmp_path, config, progress=False)
    assert result.steps == 2 and result.train_loss > 0
    with pytest.raises(ValueError, match="unknown loss"):
        TrainConfig(loss="triplet").check()


def test_model_card_keeps_the_library_card_and_replaces_its_section(tmp_path: Path) -> None:
    """The card writer both fine-tuning commands use, on before/after runs as they leave them."""
    from eval.compare import compare_runs
    from eval.model_card import write_card

    for name, value in (("base", 0.5), ("tuned", 0.75)):
        (tmp_path / "eval" / name).mkdir(parents=True)
        figures = {"held-out dense": {"mrr@10": value}}
        (tmp_path / "eval" / name / "results.json").write_text(json.dumps({"figures": figures}))
    report = tmp_path / "eval"
    comparison = compare_runs(report / "base", report / "tuned", out=report / "compare.md")
    (tmp_path / "README.md").write_text("# MiniLM tuned\n\nWhat sentence-transformers wrote.\n")
    for _ in range(2):  # a second run (--resume) replaces the section rather than adding one
        write_card(tmp_path, ["- Base model: `x`"], comparison, "Use it.", {"base_model": "x"})
    card = (tmp_path / "README.md").read_text()
    assert card.startswith("# MiniLM tuned\n\nWhat sentence-transformers wrote.\n\n## ragstack fine-tuning")
    assert card.count("## ragstack fine-tuning") == 1 and card.rstrip().endswith("Use it.")
    assert "| held-out dense | 0.5000 -> 0.7500 (+0.2500) |" in card and "`eval/compare.md`" in card
    assert json.loads((tmp_path / "ragstack-finetune.json").read_text()) == {"base_model": "x"}
