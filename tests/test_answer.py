"""Cited answers, follow-up rewriting and sessions, with the real MiniLM and SmolLM2."""

import json
import re
from pathlib import Path

from conftest import covers, rag_cli

from rag.answer import NOT_FOUND, Answerer, build_messages, check_citations
from rag.conversation import Chat, SessionStore, rewrite_query
from rag.generation import clean, generate
from rag.ingest import ingest
from rag.retrieval import Retriever, SearchResult


def source(doc: str, page: int, text: str) -> SearchResult:
    return SearchResult(
        chunk_id=f"{doc}-{page}", doc=doc, page_start=page, page_end=page, score=0.5, text=text
    )


SOURCES = [
    source("acme_2021.pdf", 2, "Acme Corporation's revenue in 2021 was 4.2 billion dollars."),
    source("acme_2021.pdf", 3, "Acme's capital expenditure in 2021 was 310 million dollars."),
]


class Scripted:
    """A stand-in generator for plumbing tests: replies with fixed text and counts its calls."""

    name = "scripted"

    def __init__(self, reply: str):
        self.reply, self.calls = reply, 0

    def stream(self, messages, max_tokens=256, temperature=0.0):
        self.calls += 1
        yield from self.reply.split(" ")[:1]
        yield from (" " + w for w in self.reply.split(" ")[1:])


def test_prompt_numbers_sources_with_document_and_page() -> None:
    messages = build_messages("What was the revenue?", SOURCES)
    assert messages[0]["role"] == "system" and "[1]" in messages[0]["content"]
    user = messages[-1]["content"]
    assert "[1] (acme_2021.pdf, p.2)" in user and "[2] (acme_2021.pdf, p.3)" in user
    assert user.endswith("Question: What was the revenue?")


def test_invalid_citations_are_removed_and_flagged() -> None:
    text, citations, invalid = check_citations(
        "Revenue was 4.2 billion [1]. Capex was 310 million [2, 7]. [9]", SOURCES
    )
    assert invalid == [7, 9]
    assert "[7]" not in text and "[9]" not in text and "[2]" in text
    assert [(c.n, c.doc, c.page_start, c.attributed) for c in citations] == [
        (1, "acme_2021.pdf", 2, False),
        (2, "acme_2021.pdf", 3, False),
    ]


def test_uncited_sentences_are_attributed_to_the_closest_source(embedder) -> None:
    text, citations, invalid = check_citations(
        "The capital expenditure was 310 million dollars.", SOURCES, embedder.encode
    )
    assert text == "The capital expenditure was 310 million dollars [2]."
    assert [(c.n, c.page_start, c.attributed) for c in citations] == [(2, 3, True)]
    # a sentence unrelated to every source gets no citation
    text, citations, _ = check_citations("Penguins cannot fly at all.", SOURCES, embedder.encode)
    assert citations == [] and "[" not in text


def test_chat_template_artefacts_are_stripped() -> None:
    assert clean("<|im_start|>assistant\nRevenue was 4.2 billion.<|im_end|>") == "Revenue was 4.2 billion."


def test_answer_cites_the_right_document_and_page(reports, settings, embedder, generator) -> None:
    ingest([reports], settings, progress=False, embedder=embedder)
    answerer = Answerer(Retriever(settings.index, embedder), generator)
    question = "What was Acme's revenue in 2021?"
    assert covers(answerer.retrieve(question)[0], "acme_2021.pdf", 2)
    # within the 2021 report, so that the citation's page, not the 135M model's choice between
    # two near-identical revenue sentences of two years, is what is checked
    answer = answerer.answer(question, docs=["acme_2021.pdf"])
    assert answer.found and answer.text and len(answer.text) < 1500
    assert {s.doc for s in answer.sources} == {"acme_2021.pdf"}
    assert any(covers(c, "acme_2021.pdf", 2) for c in answer.citations), answer
    assert all(1 <= c.n <= len(answer.sources) for c in answer.citations)


def test_nothing_relevant_answers_without_generating(reports, settings, embedder) -> None:
    ingest([reports], settings, progress=False, embedder=embedder)
    scripted = Scripted("should not be called")
    answer = Answerer(Retriever(settings.index, embedder), scripted).answer(
        "How do penguins keep their eggs warm?"
    )
    assert answer.text == NOT_FOUND and not answer.found and scripted.calls == 0


HISTORY = [
    {"role": "user", "content": "What was Acme's revenue in 2021?"},
    {"role": "assistant", "content": "It was 4.2 billion dollars [1]."},
]
FALLBACK = "What was Acme's revenue in 2021? And in 2022?"  # the last question plus the follow-up


def test_a_usable_rewrite_is_used_and_an_unusable_one_falls_back() -> None:
    asked = Scripted("never asked")
    assert rewrite_query(asked, [], "What was Acme's revenue?") == "What was Acme's revenue?"
    assert asked.calls == 0  # a first question is standalone already
    good = Scripted("What was Acme's revenue in 2022?")
    assert rewrite_query(good, HISTORY, "And in 2022?") == "What was Acme's revenue in 2022?"
    assert good.calls == 1
    for unusable in (
        "",  # nothing
        "What was Acme's revenue in 2019?",  # a year neither the follow-up nor the history has
        "What was Acme's revenue in 2021?",  # the follow-up's own year dropped
        "What was Acme's revenue in 2022?\nIt was 5.1 billion dollars.",  # more than a question
        "Acme's revenue in 2022 was high.",  # not a question
        "What was the weather in 2022?",  # the earlier subject lost
    ):
        assert rewrite_query(Scripted(unusable), HISTORY, "And in 2022?") == FALLBACK, unusable
    assert rewrite_query(None, HISTORY, "And in 2022?") == FALLBACK  # no generator: no rewrite


def test_a_question_on_a_new_subject_is_searched_as_it_is() -> None:
    """Merged with the history, an off-topic question borrowed the earlier subject's sources and
    was answered from them instead of refused; one that points back is still rewritten."""
    merging = Scripted("How did Acme's revenue help honey bees find flowers?")
    new_subject = "How do honey bees tell each other where the flowers are?"
    assert rewrite_query(merging, HISTORY, new_subject) == new_subject
    assert rewrite_query(None, HISTORY, new_subject) == new_subject
    assert merging.calls == 0
    for points_back in ("How did they spend their revenue on honey bees?", "And what was it in 2022?"):
        assert rewrite_query(None, HISTORY, points_back) != points_back, points_back


class Recording:
    """A generator wrapper that keeps each whole reply, to see what a step was given back."""

    def __init__(self, inner):
        self.inner, self.name, self.replies = inner, inner.name, []

    def stream(self, messages, max_tokens=256, temperature=0.0):
        pieces = []
        for piece in self.inner.stream(messages, max_tokens, temperature):
            pieces.append(piece)
            yield piece
        self.replies.append("".join(pieces))


def test_the_bundled_models_rewrite_is_checked_before_it_is_used(generator) -> None:
    """SmolLM2-135M answers this rewrite prompt with a question about a year of its own
    ("What was Acme's revenue in 2019?"): the check rejects it, and the fallback, which keeps
    both the subject and the follow-up's year, is what retrieval gets. Should a better prompt or
    model make its rewrite usable, this test fails and shows the reply: then assert the rewrite."""
    model = Recording(generator)
    query = rewrite_query(model, HISTORY, "And in 2022?")
    assert len(model.replies) == 1 and model.replies[0].strip()  # the model was asked, and replied
    assert query == FALLBACK, model.replies


def test_sessions_survive_a_restart(tmp_path: Path, reports, settings, embedder) -> None:
    ingest([reports], settings, progress=False, embedder=embedder)
    path = tmp_path / "sessions.sqlite"
    chat = Chat(
        Answerer(Retriever(settings.index, embedder), Scripted("Revenue was 4.2 billion dollars.")),
        SessionStore(path),
        rewrite=False,
    )
    sid = chat.sessions.create()
    first = chat.ask("What was Acme's revenue in 2021?", sid)
    assert first.citations and first.citations[0].doc == "acme_2021.pdf"
    chat.sessions.close()
    reopened = SessionStore(path)
    turns = reopened.turns(sid)
    assert [t["role"] for t in turns] == ["user", "assistant"]
    assert turns[1]["extra"]["citations"][0]["doc"] == "acme_2021.pdf"
    # the cited source's text is kept too: a reopened conversation can still highlight it
    kept = turns[1]["extra"]["sources"][0]
    assert kept["n"] == first.citations[0].n and kept["text"] == first.sources[kept["n"] - 1].text
    # the follow-up's query carries the earlier question (fallback rewrite, no generator)
    chat = Chat(chat.answerer, reopened, rewrite=False)
    second = chat.ask("And in 2022?", sid)
    assert second.query == "What was Acme's revenue in 2021? And in 2022?"
    assert len(reopened.messages(sid)) == 4
    assert reopened.delete(sid) and not reopened.exists(sid)


def test_generate_streams_and_bounds_length(generator) -> None:
    pieces = list(
        generator.stream([{"role": "user", "content": "Count from one to one hundred."}], max_tokens=12)
    )
    assert len(pieces) > 1
    assert generator.count_tokens("".join(pieces)) <= 14
    assert generate(generator, [{"role": "user", "content": "Say hello."}], max_tokens=8)


def test_ask_and_chat_commands(reports, tmp_path: Path, settings, embedder) -> None:
    ingest([reports], settings, progress=False, embedder=embedder)
    env = {"RAG_INDEX": str(settings.index), "RAG_SESSIONS": str(tmp_path / "sessions.sqlite")}
    asked = rag_cli("ask", "What was Acme's revenue in 2021?", "--session", "cli", "--json", env=env)
    assert asked.returncode == 0, asked.stderr
    answer = json.loads(asked.stdout)
    assert answer["text"] and covers(answer["sources"][0], "acme_2021.pdf", 2)
    follow = rag_cli("ask", "And in 2022?", "--session", "cli", env=env)
    assert follow.returncode == 0, follow.stderr
    assert re.search(r"\] acme_2022\.pdf pp?\.\d", follow.stdout)  # a source, after the rewritten follow-up
    assert len(SessionStore(tmp_path / "sessions.sqlite").turns("cli")) == 4
    chatted = rag_cli("chat", env=env, stdin="How much was the capital expenditure in 2021?\n")
    assert chatted.returncode == 0, chatted.stderr
    assert "session " in chatted.stdout and re.search(r"\] acme_2021\.pdf pp?\.\d", chatted.stdout)
    missing = rag_cli("ask", "anything", env={**env, "RAG_INDEX": str(tmp_path / "nowhere")})
    assert missing.returncode == 2 and "error" in missing.stderr
