"""Generator fine-tuning data: examples in `rag ask`'s prompt format (with refusals), synthetic
questions for a corpus without labels, and the answer-only loss mask, on a real index and
SmolLM2's real tokenizer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eval.datasets import index_corpus, load_squad
from llm_finetune.evaluate import score
from llm_finetune.examples import Example, build_examples, cited_answer
from llm_finetune.masking import IGNORE, tokenize_example
from llm_finetune.synthetic import cloze_pair, parse_qa, synthetic_questions
from llm_finetune.text_corpus import build_corpus, prose_paragraphs
from rag.answer import NOT_FOUND, SYSTEM_PROMPT
from rag.retrieval import Retriever
from rag.settings import Settings

PARAGRAPHS = {
    "Volcanoes": [
        (
            "Mount Etna on Sicily erupts every few years; lava has reached the town of Catania.",
            "Which town has Etna's lava reached?",
            "Catania",
        ),
        (
            "Eyjafjallajokull erupted in 2010 and closed European airspace for six days.",
            "For how many days was European airspace closed?",
            "six days",
        ),
    ],
    "Bees": [
        (
            "Honey bees tell their sisters where flowers are with a waggle dance inside the hive.",
            "How do honey bees show where flowers are?",
            "a waggle dance",
        ),
        (
            "Beekeepers treat colonies against the varroa mite, a parasite that spreads viruses.",
            "Which parasite do beekeepers treat colonies against?",
            "the varroa mite",
        ),
    ],
    "Trains": [
        (
            "The Shinkansen line between Tokyo and Osaka opened in 1964, before the Olympic Games.",
            "When did the Shinkansen open?",
            "1964",
        ),
        (
            "The Glacier Express crosses the Swiss Alps from Zermatt to St. Moritz in eight hours.",
            "Where does the Glacier Express start?",
            "Zermatt",
        ),
    ],
}


def make_squad_index(root: Path, embedder) -> tuple[list[dict], Settings, Retriever]:
    """A SQuAD file of the paragraphs above, indexed as `rag eval squad` does: (questions, settings
    of the index, retriever)."""
    data = {
        "data": [
            {
                "title": title,
                "paragraphs": [
                    {
                        "context": context,
                        "qas": [
                            {
                                "id": f"{title}-{i}",
                                "question": question,
                                "answers": [{"text": answer, "answer_start": context.index(answer)}],
                            }
                        ],
                    }
                    for i, (context, question, answer) in enumerate(paragraphs)
                ],
            }
            for title, paragraphs in PARAGRAPHS.items()
        ]
    }
    root.mkdir(parents=True, exist_ok=True)
    path = root / "mini-squad.json"
    path.write_text(json.dumps(data))
    contexts, questions = load_squad(path)
    settings = Settings(index=root / "index")
    index_corpus("mini", contexts, settings, progress=False, embedder=embedder)
    return questions, settings, Retriever(settings.index, embedder=embedder)


@pytest.fixture(scope="module")
def squad(tmp_path_factory, embedder):
    questions, _, retriever = make_squad_index(tmp_path_factory.mktemp("squad"), embedder)
    return questions, retriever


def test_examples_cite_the_source_that_holds_the_answer(squad) -> None:
    questions, retriever = squad
    examples = build_examples(questions, retriever, answer_k=2, refusal_fraction=0.0)
    assert len(examples) == len(questions)  # every paragraph is found for its own question
    for example in examples:
        system, user = example.messages
        assert system == {"role": "system", "content": SYSTEM_PROMPT}
        assert user["content"].startswith("Sources:\n\n<source>[1] (") and "\n\nQuestion: " in user["content"]
        answer, n = example.target[: example.target.rindex(" [")], int(example.target[-3])
        source = user["content"].split(f"<source>[{n}] (")[1].split("</source>")[0]
        assert answer.lower() in source.lower()  # the cited source holds the answer
        assert example.target == cited_answer(answer, n) and example.answerable


def test_refusals_get_sources_without_the_answer(squad) -> None:
    questions, retriever = squad
    examples = build_examples(questions, retriever, answer_k=2, refusal_fraction=1.0, seed=3)
    refusals = [e for e in examples if not e.answerable]
    assert refusals and all(e.target == NOT_FOUND for e in refusals)
    by_id = {q["id"]: q for q in questions}
    for example in refusals:
        question = by_id[example.id.removesuffix("-refusal")]
        sources = example.messages[-1]["content"].split("\n\nQuestion: ")[0]
        assert question["references"][0].lower() not in sources.lower()
        assert example.messages[-1]["content"].endswith(question["question"])


def test_loss_mask_covers_the_answer_tokens_only(squad) -> None:
    from transformers import AutoTokenizer

    from rag.generation import hf_model_dir

    tokenizer = AutoTokenizer.from_pretrained(hf_model_dir())
    questions, retriever = squad
    example = build_examples(questions, retriever, answer_k=2, refusal_fraction=0.0)[0]
    row = tokenize_example(tokenizer, example)
    labels, ids = row["labels"], row["input_ids"]
    first = next(i for i, label in enumerate(labels) if label != IGNORE)
    assert all(label == IGNORE for label in labels[:first]) and labels[first:] == ids[first:]
    assert tokenizer.decode(ids[first:]) == example.target + tokenizer.eos_token
    prompt = tokenizer.decode(ids[:first])
    assert example.messages[-1]["content"] in prompt and prompt.rstrip().endswith("assistant")
    assert tokenize_example(tokenizer, example, max_length=first) is None  # too long: left out


def test_cloze_questions_take_their_answer_out_of_a_chunk(squad) -> None:
    _, retriever = squad
    chunks = retriever.snapshot().records.all_chunks()
    questions = synthetic_questions(chunks, n=len(chunks), style="cloze", progress=False)
    assert len(questions) == len(chunks) - 2  # the two bee paragraphs hold no name and no figure
    text_of = {c.chunk_id: c for c in chunks}
    for question in questions:
        chunk = text_of[question["id"].removeprefix("syn-")]
        answer = question["references"][0]
        assert answer in chunk.text and answer not in question["question"]
        assert question["question"].endswith("?")
        assert " what" in question["question"] or " how many" in question["question"]
        assert question["evidence"] == [{"doc": chunk.doc, "page": chunk.page_start}]
    examples = build_examples(questions, retriever, answer_k=2, refusal_fraction=0.0)
    assert len(examples) >= len(questions) // 2 and all(e.target.endswith("].") for e in examples)


def test_cloze_questions_ask_as_a_person_would_and_take_whole_words() -> None:
    import random

    def ask(sentence: str) -> tuple[str, str]:
        pair = cloze_pair(sentence, random.Random(0))
        assert pair is not None
        return pair

    assert ask("The bridge over the river was finished in 1932 by the city engineers.") == (
        "The bridge over the river was finished in what year by the city engineers?", "1932"
    )
    assert ask("The small allocator serves requests of up to 512 bytes from its own pools.") == (
        "The small allocator serves requests of up to how many bytes from its own pools?", "512"
    )
    # not the "Py" of "PyObject", not the "60%" of "10-60%": no whole name or figure, no question
    unasked = "the struct supports a PyTypeObject field and runs 10-60% faster here"
    assert cloze_pair(unasked, random.Random(0)) is None


RST = """\
=========
Reference
=========

The loader was written by Ada Byron in 1843, and it reads
:func:`open` files of up to 64 kilobytes, see `the guide <https://example.org>`_.

.. note::

   A directive body is not prose, even when it runs as long as this sentence does here.

Its use is simple::

    load("x")

* a list item with a figure like 12 is left out of the prose entirely
"""


def test_text_corpus_reads_prose_and_asks_about_it(tmp_path: Path) -> None:
    assert prose_paragraphs(RST) == [
        "The loader was written by Ada Byron in 1843, and it reads open files of up to 64 kilobytes, "
        "see the guide."
    ]
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "loader.rst").write_text(RST)
    (tmp_path / "docs" / "empty.txt").write_text("Too short.\n")
    corpus = tmp_path / "corpus.json"
    corpus.write_text(json.dumps(build_corpus(tmp_path / "docs", per_context=2)))
    contexts, questions = load_squad(corpus)  # what `rag finetune-llm --data` reads
    assert list(contexts) == ["loader-1"] and len(questions) == 2
    for question in questions:
        answer = question["references"][0]
        assert answer in contexts["loader-1"] and answer not in question["question"]
        assert answer in {"1843", "64", "Ada Byron"}


def test_llm_questions_keep_only_answers_found_in_the_chunk(squad, generator) -> None:
    assert parse_qa("Question: Where does it start?\nAnswer: Zermatt.") == ("Where does it start?", "Zermatt")
    assert parse_qa("Where does it start? Zermatt") is None
    _, retriever = squad
    chunks = retriever.snapshot().records.all_chunks()
    questions = synthetic_questions(chunks, n=len(chunks), style="llm", generator=generator, progress=False)
    text_of = {c.chunk_id: c.text.lower() for c in chunks}
    for question in questions:  # SmolLM2 invents some answers: those must be gone
        assert " ".join(question["references"][0].lower().split()) in text_of[question["id"][4:]]
        assert len(question["question"].split()) >= 4


def test_scoring_answers_citations_and_refusals() -> None:
    """Hand-computed: F1 with citations stripped, citation validity of the replies that answer,
    refusals recognised in their usual phrasings and counted as false on answerable prompts."""
    answerable = [Example(f"a{i}", [], "", True, ["six days"], sources=3) for i in range(3)]
    unanswerable = [Example(f"u{i}", [], NOT_FOUND, False, sources=2) for i in range(3)]
    replies = [
        "six days [2].",  # EM 1, valid
        "for six long days [4].",  # F1 2*(2/4*2/2)/(2/4+2/2) = 2/3; [4] names no source
        "The documents do not contain an answer to this question.",  # a false refusal
        NOT_FOUND,
        "The document does not specify how long it lasted.",
        "Catania [1].",  # answers where it should refuse
    ]
    figures, rows = score(answerable + unanswerable, replies)
    assert [r["exact_match"] for r in rows[:3]] == [1.0, 0.0, 0.0]
    assert rows[1]["f1"] == pytest.approx(2 / 3)
    # over the replies that answer, whichever the prompt: a0, a1 and u2 ("Catania [1]." of 2 sources)
    assert [r.get("citation_valid") for r in rows] == [1.0, 0.0, None, None, None, 1.0]
    assert figures["answers"]["citation_valid"] == pytest.approx(2 / 3)
    assert figures["answers"]["f1"] == pytest.approx((1 + 2 / 3 + 0) / 3)
    assert figures["answers"]["false_refusals"] == pytest.approx(1 / 3)
    assert [r["refused"] for r in rows[3:]] == [True, True, False]
    assert figures["refusals"]["refusal_accuracy"] == pytest.approx(2 / 3)
