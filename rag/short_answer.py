"""A short answer read from the answer's sentence: "308 [1]." for "How many points did ...?".

A question that asks for a count, an amount, a date or a name ("how many", "when", "who") is
answered by that figure or name; the small embedded generator writes it inside a sentence, or
the claim check puts a source sentence in its place, and the sentence's other words only repeat
the question. So the answer's first sentence is read for a span of the asked kind: the one
nearest the words it shares with the question, not a figure or name the question itself states.
No span of that kind in the sentence, or a question that asks for something else ("what does
the report say ...?", "why ..."): the sentence stays as it is.

The extractive style answers those other questions from the sources too (`extract_from_sources`):
with the words of the closest sentence that the question does not already say, read from the
clause that shares most of its words ("What does corporal punishment cause a student?" ->
"physical pain [1]."), as a reading-comprehension answer follows the question's words.
"""

from __future__ import annotations

import re
from typing import Literal

from indexes.words import tokenize
from rag.claims import CITATION, closest_sentence, split_sentences, with_citation
from rag.language import language_of

Kind = Literal["number", "date", "name"]

NOT_A_NOUN = (
    "is was are were does did do has have had can could would will should might kind kinds type types sort "
    "other happened happens caused causes makes made drove drives drive led leads"
).split()
# "when" and "who" ask only as the question's first word or after a comma: "What does the
# Doctor do when ..." asks no date, "What Doctor Who story ..." no name
ASKS: list[tuple[Kind, re.Pattern]] = [
    ("date", re.compile(r"(^|,\s*)when\b|\b(what|which) (year|decade|century|date|day|month)\b", re.I)),
    (
        "number",
        re.compile(
            r"\b(how (many|much|long|old|large|big|far|fast|tall|high|often|wide|deep|heavy)|"
            r"what (percentage|percent|proportion|share|fraction|ratio|number|amount|population)|"
            r"what (is|was|were|are) the "
            r"(number|population|amount|percentage|size|cost|price|ratio|total|value))\b",
            re.I,
        ),
    ),
    # not the relative "who" of "an investor who relies on ...": first, after a comma or a
    # preposition ("done by whom"), or last
    (
        "name",
        re.compile(r"(?i:(^|,\s*)(who|whom|whose|where)\b|\b(by|to|for|with|from|of) whom?\b|\bwhom?\s*\?)"),
    ),
    ("name", re.compile(r"(?i)\bwhat (is|was|are|were) (the|his|her|its|their) (\w+ )?names?\b")),
    # "What team won ...", "Which German general ...": a noun after the question word names
    # the thing asked for; "What is ...", "What kind of ..." do not
    ("name", re.compile(rf"(?i:^\s*(what|which)\s+(?!({'|'.join(NOT_A_NOUN)})\b)\w+)")),
]
TOKEN = re.compile(r"[$£€]?\d+(?:[.,:]\d+)*(?:%|s\b)?|\w+(?:[-'’.]\w+)*|[^\w\s]")
MARKER = re.compile(r"\s*" + CITATION.pattern)  # a citation with the space before it: cut off, kept apart
NUMBER = re.compile(r"^[$£€]?\d+(?:[.,]\d+)*%?$")
YEAR = re.compile(r"^(1[0-9]{3}|20[0-9]{2})s?$")
NUMBER_WORDS = set(
    "one two three four five six seven eight nine ten eleven twelve fifteen twenty thirty forty fifty "
    "sixty seventy eighty ninety hundred thousand once twice thrice half dozen dozens".split()
)
SCALES = {"hundred", "thousand", "million", "billion", "trillion", "percent", "%", "per", "cent"}
RANGE_JOINERS = {"to", "-", "–", "—"}
MONTHS = set("january february march april may june july august september october november december".split())
ORDINAL = re.compile(
    r"^\d+(st|nd|rd|th)$|^(first|second|third|fourth|fifth|sixth|seventh|eighth|ninth|tenth|"
    r"eleventh|twelfth|thirteenth|fourteenth|fifteenth|sixteenth|seventeenth|eighteenth|"
    r"nineteenth|twentieth|twenty-first)$",
    re.I,
)
YEAR_LEADS = {"in", "since", "by", "until", "from", "of", "during", "before", "after", "early", "late", "mid"}
NAME_JOINERS = {"de", "da", "del", "der", "van", "von", "al", "bin", "ibn", "of", "the", "la", "le", "y", "&"}
NOT_NAMES = set(
    "the a an in on at of for to by with from as after before during since when while this that these "
    "those it its he she they his her their there here however also additionally although but and or "
    "in some many most one two both each after later today during".split()
)
# words capitalised for opening a sentence of instructions or reasoning ("Suppose ...", "Then ..."):
# no name there, though inside a name they are ("First National Bank")
SENTENCE_OPENERS = set(
    "if then other others suppose thus hence so such now where what which every all any either neither "
    "only even yet still instead otherwise therefore finally first next similarly moreover furthermore "
    "indeed again because unless whether once given see let note".split()
)
WHERE = re.compile(r"(^|,\s*)where\b", re.I)
WHY = re.compile(r"\bwhy\b", re.I)
YES_NO = re.compile(
    r"^\s*(is|are|was|were|do|does|did|has|have|had|can|could|will|would|should|may|might)\b", re.I
)
# set on XQuAD's dev spread and FinanceBench dev (bench/RESULTS.md, "One style by the question"):
# a longer question carries conditions a sentence's words do not meet
QUOTABLE_WORDS = 16
QUOTABLE_SHARE = 0.3  # of the question's words (stemmed, as BM25's) the answering sentence repeats
PLACE_LEADS = {"in", "at", "near", "from", "to", "into", "outside", "inside", "across", "through", "of"}
STEM = re.compile(r"(ing|ed|es|s)$")
WORD = re.compile(r"\w+(?:[-'’.,]\w+)*%?")
CODE = re.compile(r"[<>={}\\|`~^]|\w[$*(\[]\S|%[*/%]|%\w+%")  # a sentence quoting code or a formula
CLAUSE_BREAK = re.compile(r"\s*(?:[;:()]|,(?=\s))\s*|\s+[–—-]\s+")  # not the comma of 22,000
# words that say nothing of what is asked: a clause's run of new words does not begin or end
# with one, and a run of only these is no answer
FUNCTION_WORDS = set(
    "a an the of in on at to for by with from and or is was were are be been being did does do has have "
    "had what which who whom whose when where why how that this these those it its as into than then "
    "there their his her they he she can could would will should may might also not".split()
)


def asked_kind(question: str) -> Kind | None:
    """What the question asks for, when it is a figure, a date or a name."""
    for kind, pattern in ASKS:
        if pattern.search(question):
            return kind
    return None


def short_answer(question: str, text: str) -> str | None:
    """The span of `text`'s first sentence that answers `question`, with that sentence's
    citations ("308 [1]."), or None where the question asks for no figure or name, or the
    sentence holds none that the question does not already state."""
    kind = asked_kind(question)
    sentences = split_sentences(text)
    if kind is None or not sentences:
        return None
    sentence = sentences[0]
    citations = "".join(m.group(0) for m in MARKER.finditer(sentence))
    tokens = TOKEN.findall(MARKER.sub("", sentence))
    asked = {_stem(t) for t in TOKEN.findall(question)}
    spans = [s for s in _SPANS[kind](tokens) if not all(_stem(tokens[i]) in asked for i in s)]
    if not spans:
        return None
    anchors = [
        i
        for i, t in enumerate(tokens)
        if t[:1].isalnum() and _stem(t) in asked and t.lower() not in NOT_NAMES
    ]
    if kind == "name" and WHERE.search(question):  # a place follows "in", "at", "near" ...
        spans = [s for s in spans if s[0] and tokens[s[0] - 1].lower() in PLACE_LEADS] or spans
    best = min(spans, key=lambda s: min((_gap(s, a) for a in anchors), default=0))
    if kind == "date" and re.search(r"\byear\b", question, re.I):
        best = [
            i for i in best if YEAR.match(tokens[i])
        ] or best  # "In what year": 2010, not 25 February 2010
    span = _join(tokens[i] for i in best)
    if kind == "name":
        span = re.sub(r"['’]s$", "", span)  # "Gandhi's acts": Gandhi
    return span + citations + "."


def short_from_sources(question: str, sources: list[str], embed) -> str | None:
    """The asked figure, date or name read from the source sentence closest to the question,
    cited ("308 [2]."): the sources' own words, with no generator to misquote them. None where
    the question asks for no figure or name, or that sentence states none."""
    return _short_and_its_sentence(question, sources, embed)[0]


def _short_and_its_sentence(question: str, sources: list[str], embed) -> tuple[str | None, str | None]:
    """`short_from_sources`'s answer and the source sentence it was read from."""
    if asked_kind(question) is None:
        return None, None
    # a sentence that states a figure (or date, or name) of the kind asked is likelier the answer
    best = closest_sentence(sources, question, embed, lambda s: short_answer(question, s) is not None)
    if best is None:
        return None, None
    return short_answer(question, with_citation(best[1], best[0], final=".")), best[1]


def answering_words(question: str, sentence: str) -> str | None:
    """The words of `sentence` that the question does not say: in the clause holding most of
    the question's words (the next clause where that one says nothing new), the last run of
    words none of which the question has ("Constructing a project that fails to adhere to codes
    does not benefit the owner" -> "the owner" for "... does not benefit whom?"). None where that
    run is one lower-case word ("made"), which reads as no answer: the caller keeps the sentence."""
    if CODE.search(sentence):  # words alone cannot quote "%*%" or "q()": the sentence is kept
        return None
    asked = {_stem(w) for w in WORD.findall(question) if w.lower() not in FUNCTION_WORDS}
    clauses = [c for c in CLAUSE_BREAK.split(MARKER.sub("", sentence).rstrip(". ")) if c.strip()]
    if not clauses:
        return None
    words = [WORD.findall(c) for c in clauses]

    def says_new(clause: list[str]) -> bool:
        return any(_stem(w) not in asked and w.lower() not in FUNCTION_WORDS for w in clause)

    def shares(i: int) -> tuple[int, bool]:
        return sum(_stem(w) in asked for w in words[i]), says_new(words[i])

    best = max(range(len(clauses)), key=shares)
    if not says_new(words[best]) and best + 1 < len(clauses):
        best += 1
    runs, run = [], []
    for word in [*words[best], ""]:  # "" ends the last run
        if word and _stem(word) not in asked:
            run.append(word)
            continue
        if says_new(run):
            runs.append(run)
        run = []
    if not runs:
        return None
    kept = runs[-1]
    if len(kept) == 1 and not kept[0][:1].isupper() and not kept[0][:1].isdigit():
        return None
    while kept[0].lower() in FUNCTION_WORDS - {"not"}:  # a run that says something new keeps a word
        kept = kept[1:]
    while kept[-1].lower() in FUNCTION_WORDS:
        kept = kept[:-1]
    return " ".join(kept)


def quotable(question: str, sentence: str) -> bool:
    """Whether `question` is one a source sentence answers in its own words and `sentence` reads
    as that one: a short question that asks what, who, when or how many (not yes or no, not a
    request that carries its conditions, "... based on the cash flow statement, ..."), and a
    sentence that repeats at least QUOTABLE_SHARE of its words, as a sentence stating the answer
    does. The other questions ask for a judgement or a sum a sentence does not state: there the
    generator answers (bench/RESULTS.md, "One style by the question"). The rules read English
    (question words, function words, words between spaces): a question in another language is
    generated."""
    if language_of(question) != "en" or YES_NO.match(question) or len(question.split()) > QUOTABLE_WORDS:
        return False
    asked, said = (set(words) for words in tokenize([question, sentence]))
    return len(asked & said) >= QUOTABLE_SHARE * max(1, len(asked))


def extract_from_sources(question: str, sources: list[str], embed, quotable_only: bool = False) -> str | None:
    """The extractive answer, cited: the asked figure, date or name where the question asks for
    one and the closest sentence states it (`short_from_sources`), else the words of the sentence
    closest to the question that answer it (`answering_words`), else (and for a "why") that whole
    sentence. None where no source has a sentence, or, with `quotable_only`, where the question
    and that sentence are not `quotable`."""
    embed = remembering(embed)  # a typed question without its span looks at the same sentences again
    span, sentence = _short_and_its_sentence(question, sources, embed)
    if span is not None:
        return span if not quotable_only or quotable(question, sentence) else None
    best = closest_sentence(sources, question, embed)
    if best is None or (quotable_only and not quotable(question, best[1])):
        return None
    # a reason is told by its sentence, not by the words left over from the question
    words = None if WHY.search(question) else answering_words(question, best[1])
    return with_citation(words or best[1], best[0], final=".")


def remembering(embed):
    """`embed` that computes each list of texts once (a wrapper already remembering is kept)."""
    if getattr(embed, "remembers", False):
        return embed
    seen: dict[tuple[str, ...], object] = {}

    def encode(texts: list[str]):
        key = tuple(texts)
        if key not in seen:
            seen[key] = embed(texts)
        return seen[key]

    encode.remembers = True  # type: ignore[attr-defined]
    return encode


def _number_spans(tokens: list[str]) -> list[list[int]]:
    def numeric(i: int) -> bool:
        t = tokens[i].lower()
        return (bool(NUMBER.match(t)) and not _is_year(tokens, i)) or t in NUMBER_WORDS

    spans, i = [], 0
    while i < len(tokens):
        if not numeric(i):
            i += 1
            continue
        span = [i]
        j = i + 1
        while j < len(tokens):
            t = tokens[j].lower()
            if numeric(j) or t in SCALES:
                span.append(j)
            elif t in RANGE_JOINERS and j + 1 < len(tokens) and numeric(j + 1):
                span += [j, j + 1]
                j += 1
            else:
                break
            j += 1
        spans.append(span)
        i = j
    return spans


def _is_year(tokens: list[str], i: int) -> bool:
    """A four-digit figure that reads as a year ("in 1946", "March 1946", "1946,")."""
    if not YEAR.match(tokens[i]):
        return False
    before = tokens[i - 1].lower() if i else ""
    return before in YEAR_LEADS or before in MONTHS or before.isdigit() or tokens[i].endswith("s") or i == 0


def _date_spans(tokens: list[str]) -> list[list[int]]:
    spans = []
    for i, t in enumerate(tokens):
        if YEAR.match(t):
            start = i
            if (
                i >= 2
                and tokens[i - 1] == ","
                and tokens[i - 2].isdigit()
                and i >= 3
                and tokens[i - 3].lower() in MONTHS
            ):
                start = i - 3  # March 1, 2016
            elif i >= 2 and tokens[i - 1].isdigit() and tokens[i - 2].lower() in MONTHS:
                start = i - 2  # March 1 2016
            elif i >= 1 and tokens[i - 1].lower() in MONTHS:
                start = i - 1  # March 2016
                if i >= 2 and tokens[i - 2].isdigit():
                    start = i - 2  # 1 March 2016
            spans.append(list(range(start, i + 1)))
        elif ORDINAL.match(t) and i + 1 < len(tokens) and tokens[i + 1].lower() in ("century", "centuries"):
            spans.append([i, i + 1])
    return spans


def _name_spans(tokens: list[str]) -> list[list[int]]:
    spans, current = [], []
    for i, t in enumerate(tokens):
        capital = any(part[:1].isupper() for part in re.split(r"[-'’]", t))  # al-Turabi, d'Estaing
        joins = current and t.lower() in NAME_JOINERS and i + 1 < len(tokens) and tokens[i + 1][:1].isupper()
        if capital or joins:
            current.append(i)
            continue
        if current:
            spans.append(current)
        current = []
    if current:
        spans.append(current)
    # "The", "In" or "However" begin a sentence or a title; they are not the name
    # the sentence's first word, after a section number ("5.1.4 Other add-on packages ...")
    first_word = next((i for i, t in enumerate(tokens) if t[:1].isalpha()), -1)
    names = []
    for span in spans:
        while span and (
            tokens[span[0]].lower() in NOT_NAMES
            or (span[0] == first_word and tokens[first_word].lower() in SENTENCE_OPENERS)
        ):
            span = span[1:]
        if span and not (span == [0] and tokens[0].lower().endswith("ly")) and len(tokens[span[-1]]) > 1:
            names.append(span)  # not "O" of "O 2", nor "T" of "T cell"
    return names


_SPANS = {"number": _number_spans, "date": _date_spans, "name": _name_spans}


def _stem(token: str) -> str:
    token = token.lower()
    return STEM.sub("", token) if len(token) > 4 else token


def _gap(span: list[int], anchor: int) -> int:
    return min(abs(i - anchor) for i in span)


def _join(tokens) -> str:
    text = " ".join(tokens)
    return re.sub(r"\s+([,%])", r"\1", re.sub(r"\s*([-–—])\s*", r"\1", text))
