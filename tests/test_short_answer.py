"""Short answers (rag.short_answer): the asked figure, date or name read from the answer's
sentence, and the Answerer that gives them over a real index."""

import pytest
from conftest import covers
from pydantic import ValidationError
from test_answer import Scripted

from rag.answer import Answerer
from rag.ingest import ingest
from rag.retrieval import Retriever
from rag.settings import load_settings
from rag.short_answer import answering_words, asked_kind, extract_from_sources, quotable, short_answer


def test_the_kind_a_question_asks_for() -> None:
    assert asked_kind("How many points did the defense give up?") == "number"
    assert asked_kind("What percentage of voters stayed home?") == "number"
    assert asked_kind("In what year did the bridge open?") == "date"
    assert asked_kind("When was the company founded?") == "date"
    assert asked_kind("Who designed the bridge?") == "name"
    # "when" inside a question, and a capitalised "Who" in a title, ask for no date or name
    assert asked_kind("What does the engine do when it overheats?") is None
    assert asked_kind("What did Doctor Who do first?") is None
    assert asked_kind("Why did the bridge close?") is None


DEFENSE = "The defense gave up just 308 points in 16 games, ranking sixth in the league [1]."
OPENED = "After six years of work the bridge opened on May 27, 1937, to traffic from both sides [3]."
DESIGNED = "The bridge was designed by Joseph Strauss with Leon Moisseiff, an engineer from New York [1]."


@pytest.mark.parametrize(
    "question, text, expected",
    [
        ("How many points did the defense give up?", DEFENSE, "308 [1]."),
        # a figure the question states is not the answer
        ("How many games did the defense give up 308 points in?", DEFENSE, "16 [1]."),
        (
            "How much was capital expenditure in fiscal 2018?",
            "Capital expenditure rose to $1,577 million in fiscal 2018 from 1,373 million [2].",
            "$1,577 million [2].",
        ),
        ("How many species are known?", "Between 100 to 150 species are known [1].", "100 to 150 [1]."),
        ("When did the bridge open?", OPENED, "May 27, 1937 [3]."),
        ("In what year did the bridge open?", OPENED, "1937 [3]."),
        # the name nearest the question's words, not one the question states
        ("Who designed the bridge?", DESIGNED, "Joseph Strauss [1]."),
        ("Who worked with Joseph Strauss?", DESIGNED, "Leon Moisseiff [1]."),
        # a sentence's capitalised first word is no name; particles inside a name stay
        ("Who led the regime?", "However, Hassan al-Turabi led it [1].", "Hassan al-Turabi [1]."),
        ("Who was the last premier?", "The last premier was Lothar de Maizière.", "Lothar de Maizière."),
    ],
)
def test_the_asked_span_nearest_the_questions_words(question, text, expected) -> None:
    assert short_answer(question, text) == expected


def test_the_sentence_stays_without_an_asked_span() -> None:
    assert short_answer("Why did the bridge close?", "It closed for repairs [1].") is None
    assert short_answer("How many lanes does it have?", "The bridge has lanes for cars [1].") is None
    assert short_answer("When was it built?", "It was built long ago [1].") is None


@pytest.mark.parametrize("style", ["generated", "short", "extractive", "auto"])
def test_the_answerer_answers_with_the_asked_figure(style, reports, settings, embedder) -> None:
    ingest([reports], settings, progress=False, embedder=embedder)
    reply = "Acme's capital expenditure in 2021 was 310 million dollars [1]."
    generator = Scripted(reply)
    answerer = Answerer(Retriever(settings.index, embedder), generator, answer_style=style)
    question = "How much was Acme's capital expenditure in 2021?"
    answer = answerer.answer(question)
    quoted = style != "generated"
    assert answer.text == ("310 million [1]." if quoted else reply)
    # read from the source's own sentence, the generator is not called
    assert generator.calls == (0 if quoted else 1)
    # the figure keeps its citation, to the page that states it
    assert [c.n for c in answer.citations] == [1] and covers(answer.citations[0], "acme_2021.pdf", 3)
    assert answer.citations[0].supported and answer.citations[0].extracted == quoted
    # streamed and batched alike
    assert "".join(answerer.stream(question)) == answer.text
    assert [a.text for a in answerer.answer_batch([question, question])] == [answer.text] * 2
    # a question that asks for no figure: generated, or extractive the source's sentence itself
    why = answerer.answer("Why did Acme's capital expenditure rise in 2021?")
    if style in ("extractive", "auto"):
        assert why.text.startswith("Acme's capital expenditure in 2021 was 310 million dollars, spent on")
        assert why.text.endswith("[1].") and covers(why.citations[0], "acme_2021.pdf", 3)
        # any other question: the sentence's words the question does not say
        what = answerer.answer("What was Acme's capital expenditure in 2021?")
        assert what.text == "310 million dollars [1]." and covers(what.citations[0], "acme_2021.pdf", 3)
        assert generator.calls == 0
    else:
        assert why.text == reply and generator.calls > (0 if quoted else 1)
    if style == "auto":
        # a yes-or-no question, and a request with its conditions, ask for a judgement: generated
        for asked in (
            "Did Acme's capital expenditure rise in 2021?",
            "Based on the figures in the report, how much did Acme spend on capital expenditure in 2021 "
            "compared with the year before, and what did it spend it on?",
        ):
            calls = generator.calls
            assert answerer.answer(asked).text == reply and generator.calls == calls + 1


def test_a_noun_after_what_asks_for_a_name() -> None:
    assert asked_kind("Which team won the divisional round?") == "name"
    assert asked_kind("What kind of forest is it?") is None and asked_kind("What is a tariff?") is None
    played = "In the divisional round the Broncos beat the Steelers 23-16 in Denver [2]."
    assert short_answer("Which team beat the Steelers in the divisional round?", played) == "Broncos [2]."


def test_the_answer_style_is_a_setting(monkeypatch) -> None:
    assert load_settings().answer_style == "auto"  # chosen by measurement: bench/RESULTS.md
    monkeypatch.setenv("RAG_ANSWER_STYLE", "extractive")
    assert load_settings().answer_style == "extractive"
    monkeypatch.setenv("RAG_ANSWER_STYLE", "terse")
    with pytest.raises(ValidationError, match="generated"):
        load_settings()


def test_a_place_follows_a_place_word() -> None:
    campus = "The Business School and Harvard Stadium are on a campus opposite Cambridge in Allston [2]."
    assert short_answer("Where is Harvard Stadium located?", campus) == "Allston [2]."
    # a possessive is not part of the name, nor is a lone letter (the "O" of "O 2")
    acts = "Gandhi's acts were civil disobedience."
    assert short_answer("Which Indian practiced civil disobedience?", acts) == "Gandhi."
    assert short_answer("Who burned the mixture?", "Later welders burned acetylene and O 2 [1].") is None


def test_a_relative_who_asks_for_no_name() -> None:
    assert asked_kind("What is the growth rate for an investor who relies on income?") is None
    assert asked_kind("What drove the operating margin change?") is None
    # but "the name of the player who ..." asks for one, and "by whom" too
    assert asked_kind("What is the last name of the player who scored?") == "name"
    assert asked_kind("The analysis is done by whom?") == "name"


@pytest.mark.parametrize(
    "question, sentence, expected",
    [
        # the run of new words in the clause that shares most words with the question
        (
            "Constructing a project that fails to adhere to codes does not benefit whom?",
            "Constructing a project that fails to adhere to codes does not benefit the owner [1].",
            "owner",
        ),
        (
            "What does corporal punishment cause a student?",
            "Corporal punishment, which causes a student physical pain, was banned in 1986 [2].",
            "physical pain",
        ),
        (
            "Where is much of the work of the parliament done?",
            "Much of the work of the parliament is done in committee.",
            "committee",
        ),
        # a clause that only repeats the question hands over to the next one
        ("What did the treaty establish?", "The treaty established, in 1957, a common market.", "1957"),
        # a figure's thousands comma is not a clause's
        ("When did the ice melt?", "The ice melted 22,000 years ago, in the north.", "22,000 years ago"),
    ],
)
def test_the_words_that_answer_a_question(question, sentence, expected) -> None:
    assert answering_words(question, sentence) == expected


@pytest.mark.parametrize(
    "sentence",
    [
        "The operator %*% is used for matrix multiplication.",
        "To quit the program the command is q().",
        "The components are available as lentils$u and lentils$v.",
        "An assignment such as ans <- lsfit(X, y) gives the results of a least squares fit.",
    ],
)
def test_a_sentence_quoting_code_is_kept_whole(sentence) -> None:
    # words alone drop "%*%" and "()" and leave "used" or "command is q": no answer
    assert answering_words("Which operator does matrix multiplication?", sentence) is None


def test_a_sentences_opening_word_is_no_name() -> None:
    # a manual's "Suppose ..." or "Then ..." is capitalised for opening its sentence
    means = "Suppose we want the means of each group."
    assert short_answer("Which function computes the means?", means) is None
    assert short_answer("Which file is read next?", "Then the same file is read again.") is None
    # after a section number too
    packages = "5.1.4 Other add-on packages Many more packages are available from CRAN."
    assert short_answer("Where do the packages come from?", packages) == "CRAN."
    # a name that opens its sentence is still a name
    partnered = "Tesla partnered with two businessmen."
    assert short_answer("Who partnered with two businessmen?", partnered) == "Tesla."
    # and inside a name those words are the name's
    lent = "The loan came from the First National Bank."
    assert short_answer("Which bank lent the money?", lent) == "First National Bank."
    # a percentage or an amount is no code
    accepted = "The college accepted 5.3% of applicants."
    assert answering_words("What share did the college accept?", accepted) == "5.3% of applicants"


def test_the_sources_sentences_are_embedded_once(embedder) -> None:
    calls: list[list[str]] = []

    def embed(texts: list[str]):
        calls.append(list(texts))
        return embedder.encode(texts)

    # asks for a figure the sentences do not state: the span is looked for, then the words
    sources = ["The defense gave up few points that season.", "The team played in Denver most weeks."]
    answer = extract_from_sources("How many points did the defense give up?", sources, embed)
    # the sentences and the question, once each, though the closest sentence was chosen twice
    assert answer.endswith("[1].") and len(calls) == len({tuple(c) for c in calls}) == 2, calls


def test_a_lone_lower_case_word_is_no_answer() -> None:
    # "made" says nothing: the caller keeps the whole sentence
    assert answering_words("What did the committee do with the plan?", "The committee plan made.") is None
    assert answering_words("What is a bridge?", "A bridge.") is None


@pytest.mark.parametrize(
    "question, sentence, expected",
    [
        ("How many points did the defense give up?", DEFENSE, True),
        ("Who designed the bridge?", DESIGNED, True),
        # a sentence that repeats too few of the question's words does not read as its answer
        ("Who designed the bridge across the strait for the city?", "Joseph Strauss was an engineer.", False),
        # yes or no: a judgement, not a sentence's words
        ("Did the defense give up 308 points?", DEFENSE, False),
        # the rules read English: a question in another language is generated
        ("谁设计了这座桥？", "这座桥由约瑟夫·施特劳斯设计。", False),
        # a request that carries its conditions
        (
            "Using the league's own figures, how many points did the defense give up over the season, "
            "and how does that rank?",
            DEFENSE,
            False,
        ),
    ],
)
def test_a_quotable_question_is_short_and_its_sentence_repeats_it(question, sentence, expected) -> None:
    assert quotable(question, sentence) is expected


def test_auto_embeds_the_sources_sentences_once_when_it_generates(reports, settings, embedder) -> None:
    ingest([reports], settings, progress=False, embedder=embedder)
    retriever = Retriever(settings.index, embedder)
    calls: list[tuple[str, ...]] = []
    encode = retriever.embedder.encode

    def counting(texts: list[str], **options):
        calls.append(tuple(texts))
        return encode(texts, **options)

    retriever.embedder.encode = counting
    # a yes-or-no question is generated; the reply's figure is in no source, so the extract
    # policy puts the sentence closest to the question in its place: the sentences auto
    # judged before generating
    generator = Scripted("Yes, Acme spent 999 million dollars on it [1].")
    answerer = Answerer(retriever, generator, answer_style="auto", unsupported="extract")
    answer = answerer.answer("Did Acme's capital expenditure rise in 2021?")
    assert generator.calls == 1 and "999" not in answer.text and answer.text.endswith("[1].")
    assert any(c.extracted for c in answer.citations)
    repeated = [texts for texts in set(calls) if calls.count(texts) > 1 and len(texts) > 1]
    assert not repeated, repeated
