"""The claim check (rag.claims), the unsupported-claim policies, and grounded decoding
(rag.grounded_decoding) with the real MiniLM, SmolLM2 and its tokenizer."""

import re

import pytest
import torch
from conftest import covers

from rag.answer import NOT_FOUND, Answerer, build_messages, grounding_text, without_lead_in
from rag.claims import apply_unsupported_policy, check_claims, recite
from rag.grounded_decoding import GroundedNumbers, allowed_numbers
from rag.ingest import ingest
from rag.retrieval import Retriever, SearchResult

CAPEX = "Purchases of property and equipment were $1,577 million in fiscal 2018, and four plants opened."


def unsupported(text: str, sources: list[str], question: str = "") -> list[tuple[str, ...]]:
    return [c.unsupported for c in check_claims(text, sources, question)]


def test_numbers_are_compared_as_values() -> None:
    for same in ["Capex was 1577.00 [1].", "Capex was $1,577 million in FY2018.", "Capex was 1577 million.",
                 "It was about $1.6 billion.", "Four plants opened.", "It opened 4 plants in 2018."]:
        assert unsupported(same, [CAPEX]) == [()], same
    assert unsupported("Capex was $1,578 million [1].", [CAPEX]) == [("1,578",)]
    assert unsupported("Capex was $2.6 billion.", [CAPEX]) == [("2.6",)]
    assert unsupported("Five plants opened in 2019.", [CAPEX]) == [("Five", "2019")]
    assert unsupported("It was 12 percent, as asked in 2021?", [CAPEX], "Why 2021?") == [("12",)]


def test_a_miscited_figure_cites_the_source_that_holds_it() -> None:
    sources = ["Revenue was 4.2 billion dollars.", "Capital expenditure was 310 million dollars."]
    text = "Capital expenditure was 310 million dollars [1]. Revenue rose [1]."
    claims = check_claims(text, sources)
    assert [c.holders for c in claims] == [(2,), ()] and claims[0].miscited
    assert recite(text, claims) == "Capital expenditure was 310 million dollars [2]. Revenue rose [1]."


def test_recite_cites_the_sources_that_hold_a_sentences_words() -> None:
    sources = [
        "The bridge opened in 1932 after six years of work.",
        "The tunnel under the river opened in 1934."]
    text = "The bridge opened after six years of work [2]. The tunnel opened in 1934 [1, 2]. It took 1932"
    claims = check_claims(text, sources)
    assert all(c.supported for c in claims)
    # words of source 1 cite it; a figure of source 2 cites it alone; an uncited figure gets its holder
    assert recite(text, claims, sources) == (
        "The bridge opened after six years of work [1]. The tunnel opened in 1934 [2]. It took 1932 [1]"
    )
    both = "The bridge and the tunnel opened [1, 2]."  # each source holds as much of it: both stay
    assert recite(both, check_claims(both, sources), sources) == both
    # without the sources' texts only the figures decide ("six" is in source 1 alone); a sentence
    # citing one of its figures' holders keeps its citations
    assert recite(text, claims) == (
        "The bridge opened after six years of work [1]. The tunnel opened in 1934 [1, 2]. It took 1932 [1]"
    )


def test_a_figure_must_be_beside_what_it_counts() -> None:
    sources = ["The defense gave up just 308 points, and 3 sacks came in the third quarter.",
               "Revenue was 4.2 billion dollars, up 8% from 2020. Capital expenditure was $310 million."]
    # a source has a 3 and 308 points, not 3 points
    assert unsupported("The defense surrendered 3 points [1].", sources) == [("3 points",)]
    for held in ("They gave up 308 points [1].", "They had 3 sacks [1].", "Revenue rose 8 percent [2].",
                 "Revenue rose 8% [2].", "Capex was 310 million dollars [2].", "The 2020 revenue grew [2]."):
        assert unsupported(held, sources) == [()], held


def test_a_figure_must_stand_where_its_sentence_is_about() -> None:
    sources = ["The Broncos beat the Patriots 20-18 in the AFC Championship Game. Earlier, in the "
               "divisional round, Denver had beaten Pittsburgh 23-16 at home."]
    # 23 and 16 are in the sources, in a sentence about another game
    wrong_game = "The final score of the AFC Championship Game was 23-16 [1]."
    assert unsupported(wrong_game, sources) == [("23", "16")]
    for held in ("The AFC Championship Game ended 20-18 [1].", "Denver beat Pittsburgh 23-16 [1].",
                 "20-18 [1].", "It was 23-16 at home, as asked about 1998"):
        # no words to place it; a figure of the question
        assert unsupported(held, sources, "Which 1998 game?") == [()], held


def test_a_sentence_made_up_around_the_sources_is_unsupported() -> None:
    sources = ["Steam engines turn heat into work; their efficiency is measured with an indicator diagram."]
    made_up = "The most useful tool for analysing steam engines is a thermometer [1]."
    assert unsupported(made_up, sources) == [("useful", "tool", "analysing", "thermometer")]
    assert unsupported("Their efficiency is measured with a diagram of the engine [1].", sources) == [()]
    # words about the sources and function words state nothing
    assert unsupported("According to the source, he measured engines [1].", sources) == [()]


def test_extract_puts_in_one_source_sentence(embedder) -> None:
    sources = ["Steam engines turn heat into work. Their efficiency is measured with an indicator diagram.",
               "The first commercial steam engine was built by Thomas Newcomen in 1712."]
    reply = (
        "Steam engines were built in 1650 [1]. They were invented by Tom Brady [2]. "
        "Engines turn heat into work [1]."
    )
    claims = check_claims(reply, sources, "Who built the first steam engine?")
    assert [c.supported for c in claims] == [False, False, True]
    text, extracted = apply_unsupported_policy(
        reply, claims, sources, "Who built the first steam engine?", "extract", embedder.encode
    )
    # the closest source sentence in the first one's place, the second left out
    assert text == ("The first commercial steam engine was built by Thomas Newcomen in 1712 [2]. "
                    "Engines turn heat into work [1].")
    assert extracted == {2}


def test_a_small_models_preamble_is_not_part_of_the_answer() -> None:
    assert without_lead_in("The answer is: 1903 [1].") == "1903 [1]."
    assert without_lead_in("Answer: Robert Lane") == "Robert Lane"
    for kept in ("The answer is that revenue rose [1].", "The answer to this question is:"):
        assert without_lead_in(kept) == kept
    # a lead-in with nothing after it states nothing: unsupported, so extract answers in its place
    sources = ["The defense gave up just 308 points in the season."]
    assert unsupported("The answer to this question is:", sources) == [("The answer to this question is:",)]
    assert unsupported("It gave up 308 points: the fewest [1].", sources)[-1] == ()


def test_names_must_be_in_a_source() -> None:
    sources = ["Luke Kuechly led the Carolina Panthers in tackles."]
    assert unsupported("Luke Kuechly led the Panthers [1].", sources) == [()]
    # the names, and the sentence's other words: none of them is in the source
    assert unsupported("He was named LambdaFunction of the year by Tom Brady.", sources) == [
        ("LambdaFunction", "Tom Brady", "named", "year")
    ]
    assert unsupported("According to the source, Kuechly led [1].", sources) == [()]  # common words pass


class Scripted:
    """A stand-in generator for plumbing tests of the policies: replies with fixed text."""

    name = "scripted"

    def __init__(self, reply: str):
        self.reply = reply

    def stream(self, messages, max_tokens=256, temperature=0.0):
        yield self.reply


@pytest.mark.parametrize("policy", ["mark", "drop", "extract"])
def test_unsupported_policies(policy, reports, settings, embedder) -> None:
    ingest([reports], settings, progress=False, embedder=embedder)
    invented = "Acme's revenue in 2021 was 9.9 billion dollars [1]."
    # the generated style: the claim check of a generator's reply (auto would quote this question)
    answerer = Answerer(
        Retriever(settings.index, embedder), Scripted(invented), unsupported=policy, answer_style="generated"
    )
    answer = answerer.answer("What was Acme's revenue in 2021?")
    assert covers(answer.sources[0], "acme_2021.pdf", 2)
    assert [c.to_dict()["unsupported"] for c in answer.claims] == [["9.9"]]
    if policy == "mark":
        assert answer.text == invented
        assert [(c.n, c.supported, c.unsupported) for c in answer.citations] == [(1, False, ("9.9",))]
    elif policy == "drop":
        assert answer.text == NOT_FOUND and not answer.citations  # nothing supported is left
    else:
        # the source's own sentence, cited, in the invented one's place
        assert "4.2 billion" in answer.text and "9.9" not in answer.text
        cited = [c for c in answer.citations if c.extracted]
        assert cited and all(c.supported for c in answer.citations)
        assert covers(cited[0], "acme_2021.pdf", 2)


def test_supported_sentences_stay_under_every_policy(reports, settings, embedder) -> None:
    ingest([reports], settings, progress=False, embedder=embedder)
    reply = "Acme's revenue in 2021 was 4.2 billion dollars [1]. It grew 95 percent in 2021 [1]."
    for policy in ("drop", "extract"):
        answerer = Answerer(
            Retriever(settings.index, embedder), Scripted(reply), unsupported=policy, answer_style="generated"
        )
        answer = answerer.answer("What was Acme's revenue in 2021?")
        # kept, citing the source that holds its figure (the scripted [1], or the one it moves to)
        kept = re.match(r"Acme's revenue in 2021 was 4\.2 billion dollars \[(\d)\]\.", answer.text)
        assert kept and "4.2 billion" in answer.sources[int(kept.group(1)) - 1].text, answer.text
        assert "95 percent" not in answer.text


@pytest.fixture(scope="module")
def tokenizer(generator):
    return generator.tokenizer


def allowed_after(tokenizer, grounding: str, written: str) -> set[str]:
    """The digits and a plain word the processor lets follow `written`."""
    prompt = tokenizer("prompt", add_special_tokens=False)["input_ids"]
    tail = tokenizer(written, add_special_tokens=False)["input_ids"]
    processor = GroundedNumbers(tokenizer, [grounding], len(prompt))
    scores = processor(torch.tensor([prompt + tail]), torch.zeros(1, len(tokenizer)))[0]
    candidates = [*"0123456789", " points", "."]
    ids = {c: tokenizer(c, add_special_tokens=False)["input_ids"] for c in candidates}
    return {c for c, i in ids.items() if len(i) == 1 and scores[i[0]] > -float("inf")}


def test_grounded_decoding_writes_only_the_sources_numbers(tokenizer) -> None:
    grounding = "The defense gave up 308 points and 24 interceptions in 2015."
    assert allowed_numbers(grounding)[0] >= {"308", "24", "2015"}
    assert allowed_after(tokenizer, grounding, "They gave up") >= {"3", "2", " points"}
    assert not allowed_after(tokenizer, grounding, "They gave up") & {"1", "4", "5", "7"}
    # inside a number: only the digits that keep it one of the sources' numbers, and no end yet
    assert allowed_after(tokenizer, grounding, "They gave up 3") == {"0"}
    assert allowed_after(tokenizer, grounding, "They gave up 30") == {"8"}
    assert allowed_after(tokenizer, grounding, "They gave up 308") == {" points", "."}
    assert allowed_after(tokenizer, grounding, "They gave up 2") == {"4", "0"}
    # a citation may be any small source number
    assert allowed_after(tokenizer, grounding, "They gave up 308 points [") >= {"1", "2", "3"}


def test_grounded_answers_hold_only_numbers_from_their_sources(generator) -> None:
    sources = [
        SearchResult(
            doc="season.pdf", page_start=1, page_end=1, chunk_id="s1", score=1.0,
            text="The Panthers defense gave up just 308 points, ranking sixth in the league, while "
            "leading the NFL in interceptions with 24. Kawann Short led the team in sacks with 11. "
            "Luke Kuechly led the team in tackles (118).",
        )
    ]
    questions = [
        "How many points did the Panthers defense surrender?",
        "How many sacks did Kawann Short have?",
        "How many interceptions did the Panthers have?",
    ]
    generator.grounded = True  # RAG_GROUNDED_DECODING=true; off by default (bench/RESULTS.md)
    try:
        replies = generator.generate_batch(
            [build_messages(q, sources) for q in questions], 40,
            grounding=[grounding_text(q, sources) for q in questions],
        )
    finally:
        generator.grounded = False
    allowed, prefixes = allowed_numbers(grounding_text("", sources))
    for reply in replies:
        numbers = list(re.finditer(r"\d[\d,.]*", re.sub(r"\[\d+(?:,\s*\d+)*\]", "", reply)))
        for n in numbers[:-1]:
            assert n.group(0).rstrip(",.") in allowed, reply
        if numbers:  # the last may be cut short by the token limit: then a prefix of one
            assert numbers[-1].group(0).rstrip(",.") in allowed | prefixes, reply
    assert any(re.search(r"\d", r) for r in replies)  # it did write numbers
