"""The claim check: every figure and name an answer states must be found in its sources.

A small generator copies the sentence shape of a source and swaps the fact ("The Panthers
defense surrendered 2 points [1]." over a source that says 308). A citation checker that only
checks that [1] exists passes that; this one looks up each sentence's numbers (amounts, counts,
years, percentages) and capitalised names in the sources and the question, and marks the
sentence unsupported when one of them is in none of them, when a figure is not beside what it
counts in any of them ("3 points" where a source has 308 points and a 3 elsewhere) or in no
source sentence about what its sentence is about (another game's score), or when
most of its other words are in none of them (a sentence made up around the sources).

Numbers are compared as values, not strings: "$1,577 million" = "1577.00" = "1,577";
"four" = "4"; "FY2019" holds 2019; a rounded figure ("$1.6 billion") is supported by a precise
one ("1,577 million") when it is that figure rounded to the answer's precision.

What becomes of an unsupported sentence is a policy (`apply_unsupported_policy`): kept and
marked, dropped, or replaced by the source sentence closest to the question ("extract"). Then
`recite` makes each sentence cite the sources its figures and words are in.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from decimal import Decimal, InvalidOperation
from itertools import chain
from typing import Literal, get_args

import numpy as np

from indexes.words import tokenize

UnsupportedPolicy = Literal["mark", "drop", "extract"]
UNSUPPORTED_POLICIES: tuple[UnsupportedPolicy, ...] = get_args(UnsupportedPolicy)

_NUMBER = re.compile(r"(?<![\d.,])\d(?:[\d,]*\d)?(?:\.\d+)?")
_SCALE = re.compile(r"\s*(thousand|million|billion|trillion|bn|mn|m|k)\b", re.I)
_SCALES = {
    "thousand": 3, "k": 3, "million": 6, "mn": 6, "m": 6, "billion": 9, "bn": 9, "trillion": 12,
}
_WORDS = {
    word: n
    for n, word in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
        "fifteen sixteen seventeen eighteen nineteen twenty".split()
    )
    if n >= 2  # "one" and "zero" are pronouns and idioms ("one of the ...") more than figures
} | {word: 10 * n for n, word in enumerate("thirty forty fifty sixty seventy eighty ninety".split(), 3)}
_NUMBER_WORD = re.compile(r"\b(" + "|".join(_WORDS) + r")\b", re.I)
CITATION = re.compile(r"\[(\d+(?:\s*,\s*\d+)*)\]")  # [2] or [1, 3]; the group: the numbers
# a sentence of which fewer than this share of words is in the sources and question is unsupported
WORDING_MIN = 0.5
UNIT_WORDS = 3  # words after a source's figure among which what it counts must be (scale words count)
_CURRENCIES = {"$": {"dollar", "usd"}, "€": {"euro", "eur"}, "£": {"pound", "gbp"}, "¥": {"yen", "yuan"}}
_YEAR = re.compile(r"1[89]\d\d|20\d\d")
# words after a figure that say how it compares or where it comes from, not what it counts
_NOT_UNITS = frozenset(
    "and are was were the for with that this from than into higher lower more less greater fewer "
    "through based but per over under after before since until during".split()
)
# words that state nothing: about the sources themselves, and function words BM25's short stop
# list keeps (pronouns, auxiliaries)
_NO_CLAIM = frozenset(
    "source sources according document documents answer question provided mentioned he she his "
    "her him its we our you your i me my them who whom whose which what when where why how has "
    "have had been were do does did can could would should may might also than so very more most "
    "about from".split()
)
# a figure must stand in a source sentence that holds this share of its sentence's other words
# (bench/RESULTS.md: 0.4 flagged a right "late 1980s", 0.3 none of XQuAD's right answers)
CONTEXT_MIN = 0.3
# recite: a cited source this close to the best one's share of a sentence's words keeps its
# citation; a sentence moves to (or, uncited, gets) the best source when it holds this share
RECITE_MARGIN = 0.15
RECITE_MIN = 0.3
EXTRACT_RANK_WEIGHT = 0.1  # extract: cosine given up per rank a source is below the first
EXTRACT_WORDS_WEIGHT = 0.2  # extract: cosine a sentence gains holding all of the question's words
EXTRACT_PREFERRED_WEIGHT = 0.1  # extract: cosine a sentence gains holding what is asked for
_SENTENCE = re.compile(r"(?<=[.!?])\s+")
# a run of capitalised words; one at the start of a sentence is usually just the sentence's start
_NAME = re.compile(r"(?<![\w.'’-])[A-Z][\w'’&.-]*[\w](?:\s+[A-Z][\w'’&.-]*[\w])*")
_COMMON = set(
    "The A An This That These Those It Its In On At For From By With As Of To And Or But If When "
    "While Where Which Who What How Why Yes No Source Sources According Based Answer Therefore "
    "However Also There Their They He She His Her We Our You Your I Not None Both Each All Some "
    "Total Net Year Years Fiscal Quarter Q FY".split()
)


@dataclass(frozen=True)
class Claim:
    """One sentence of an answer and what of it the sources do not hold."""

    sentence: str
    unsupported: tuple[str, ...] = ()  # the numbers and names found in no source
    cites: tuple[int, ...] = ()  # the [n] the sentence carries
    holders: tuple[int, ...] = ()  # the sources (1-based) that hold every figure it states

    @property
    def supported(self) -> bool:
        return not self.unsupported

    @property
    def unsupported_numbers(self) -> tuple[str, ...]:
        """The figures among the unsupported spans (names hold no digits and no number words)."""
        return tuple(s for s in self.unsupported if re.search(r"\d", s) or s.lower() in _WORDS)

    def to_dict(self) -> dict:
        return {
            "sentence": self.sentence, "supported": self.supported,
            "unsupported": list(self.unsupported), "cites": list(self.cites),
        }

    @property
    def miscited(self) -> bool:
        """Its figures are all in one source, and it cites others only."""
        return bool(self.cites and self.holders and not set(self.cites) & set(self.holders))


def split_sentences(text: str) -> list[str]:
    return [s for s in _SENTENCE.split(text.strip()) if s.strip()]


def number_values(text: str) -> list[tuple[str, Decimal, int]]:
    """(as written, value, decimals written) of every number in `text`, with scale words
    applied ("1.6 billion" -> 1600000000) and small number words read ("four" -> 4)."""
    found = []
    for match in _NUMBER.finditer(text):
        raw = match.group(0)
        try:
            value = Decimal(raw.replace(",", ""))
        except InvalidOperation:
            continue
        decimals = len(raw.split(".")[1]) if "." in raw else 0
        scale = _SCALE.match(text, match.end())
        if scale:
            exponent = _SCALES[scale.group(1).lower()]
            value, decimals = value.scaleb(exponent), decimals - exponent
        found.append((match.start(), raw, value, decimals))
    for word in _NUMBER_WORD.finditer(text):
        found.append((word.start(), word.group(0), Decimal(_WORDS[word.group(1).lower()]), 0))
    return [number[1:] for number in sorted(found)]


def _plain_values(text: str) -> set[Decimal]:
    """Every value a number in `text` can mean: as written, and scaled when a scale word follows
    (a table says "1,577" under "(in millions)"; the answer says "$1,577 million")."""
    values = set()
    for match in _NUMBER.finditer(text):
        value = _figure_value(match.group(0))
        if value is None:
            continue
        values.add(value)
        scale = _SCALE.match(text, match.end())
        if scale:
            values.add(value.scaleb(_SCALES[scale.group(1).lower()]))
    values |= {_figure_value(m.group(0)) for m in _NUMBER_WORD.finditer(text)}
    return values


def _value_supported(value: Decimal, decimals: int, known: set[Decimal], unscaled: Decimal) -> bool:
    if value in known or unscaled in known:
        return True
    # "1.6 billion" for 1,577,000,000: the source figure rounded to the answer's precision
    half_unit = Decimal(5).scaleb(-decimals - 1)
    return any(abs(k - value) <= half_unit for k in known if k) if decimals < 0 else False


def _names(sentence: str) -> list[str]:
    """Runs of capitalised words, less the sentence's first word (capitalised anyway) unless it
    has a capital inside ("LambdaFunction"), and less common words ("The", "According")."""
    names = []
    for match in _NAME.finditer(sentence):
        words = match.group(0).split()
        if match.start() == 0 and not re.search(r"[A-Z]", words[0][1:]):
            words = words[1:]
        # figures are checked as numbers ("FY2018" holds 2018; "Four" is 4)
        words = [w for w in words if w not in _COMMON and not re.search(r"\d", w) and w.lower() not in _WORDS]
        if words:
            names.append(" ".join(words))
    return names


def check_claims(text: str, sources: list[str], question: str = "") -> list[Claim]:
    """Each sentence of `text` with the numbers and names that none of `sources` (nor the
    question) contains. Citation markers are not claims."""
    grounding = "\n".join([question, *sources])
    pieces = [s for source in sources for s in split_sentences(source)]
    stems = [set(words) for words in tokenize([question, *pieces])]  # one tokenizer call
    known_stems = set().union(*stems)
    if "%" in grounding:
        known_stems.add("percent")
    known_values = _plain_values(grounding)
    known_words = {w.lower() for w in re.findall(r"[\w'’&.-]+", grounding)}
    known_lower = grounding.lower()
    per_source = [_plain_values(source) for source in sources]
    asked = _plain_values(question)
    sentences = [(_plain_values(s), words) for s, words in zip(pieces, stems[1:], strict=True)]
    claims = []
    for sentence in split_sentences(text):
        cites = tuple(int(n) for group in CITATION.findall(sentence) for n in re.findall(r"\d+", group))
        bare = CITATION.sub(" ", sentence).strip()
        figures = [
            (raw, value, decimals, Decimal(raw.replace(",", "")) if raw[0].isdigit() else value)
            for raw, value, decimals in number_values(bare)
        ]
        missing = [raw for raw, v, d, u in figures if not _value_supported(v, d, known_values, u)]
        # "3 points" where a source has 308 points and a 3 elsewhere: the figure must be beside
        # what it counts, when the sources speak of that at all (else the wording check decides)
        for raw, unit in _counted(bare):
            spoken_of = unit == "%" or set(tokenize([unit])[0]) <= known_stems
            if raw not in missing and spoken_of and not _counted_in_sources(raw, unit, sources):
                missing.append(f"{raw} {unit}")
        # "The final score of the AFC Championship Game was 24-10" where 24-10 is another game's:
        # a written figure (not "two", often a count the answer makes) must be in a source
        # sentence about what the answer's sentence is about
        context = _context_stems(bare)
        for raw, value, decimals, unscaled in figures:
            if len(context) >= 2 and raw[0].isdigit() and raw not in missing:
                if not _value_supported(value, decimals, asked, unscaled) and not _figure_in_context(
                    value, decimals, unscaled, context, sentences
                ):
                    missing.append(raw)
        holders = tuple(
            n for n, known in enumerate(per_source, 1)
            if figures and all(_value_supported(v, d, known, u) for _, v, d, u in figures)
        )
        for name in _names(bare):
            if name.lower() in known_lower:
                continue
            if all(w.lower().strip(".") in known_words for w in name.split()):
                continue  # every word is in the sources, in another order ("Panthers defense")
            missing.append(name)
        named = {word for name in missing for word in name.split()}
        missing += [w for w in _unsourced_wording(bare, known_stems) if w not in named]
        claims.append(Claim(sentence, tuple(dict.fromkeys(missing)), cites, holders))
    if claims and claims[-1].sentence.rstrip().endswith(":"):
        # "The answer to this question is:" and nothing after it: it announces and states nothing
        last = claims[-1]
        claims[-1] = replace(last, unsupported=(*last.unsupported, last.sentence.strip()))
    return claims


def _claim_words(sentence: str) -> tuple[list[str], list[list[str]]]:
    """A sentence's words that can state something, and each one's BM25 stems (figures are
    checked by value, not as words: "1577.00" for "1,577"; words about the sources aside)."""
    words = [w for w in re.findall(r"\b[^\W\d_]+\b", sentence) if w.lower() not in _NO_CLAIM]
    return words, tokenize(words) if words else []


def _context_stems(sentence: str) -> set[str]:
    return {stem for pieces in _claim_words(sentence)[1] for stem in pieces}


def _figure_in_context(value, decimals, unscaled, context: set[str], sentences) -> bool:
    """Whether some source sentence holds the figure and CONTEXT_MIN of the words around it in
    the answer's sentence ("The final score of the AFC Championship Game was 24-10" needs a
    sentence about that game, not any sentence with 24-10)."""
    share = CONTEXT_MIN * len(context)
    return any(
        len(context & stems) >= share and _value_supported(value, decimals, values, unscaled)
        for values, stems in sentences
    )


def _counted(sentence: str) -> list[tuple[str, str]]:
    """(figure as written, the word it counts) for each figure followed by a word ("308 points",
    "12 tackles", "$4.2 billion dollars", "8%"): that word must be beside the figure in a source."""
    found = []
    for match in _NUMBER.finditer(sentence):
        rest = sentence[match.end() :]
        scale = _SCALE.match(rest)
        rest = rest[scale.end() :] if scale else rest
        unit = re.match(r"\s*(%|[^\W\d_]{3,}\b)", rest) if rest[:1] in " %" else None
        if _YEAR.fullmatch(match.group(0)):
            continue  # "2018 capital expenditure": a year dates what follows, it counts nothing
        if unit and unit.group(1).lower() not in _NO_CLAIM and unit.group(1).lower() not in _NOT_UNITS:
            found.append((match.group(0), unit.group(1)))
    return found


def _counted_in_sources(raw: str, unit: str, sources: list[str]) -> bool:
    """Whether a source writes the figure's value with the word it counts beside it: among the
    UNIT_WORDS words after it or the two before it in its clause (stemmed; "%" and "percent"
    are one; "$" is dollars)."""
    value = _figure_value(raw)
    percent = {"%", "percent"}
    units = percent if unit.lower() in percent else set(tokenize([unit])[0])
    for source in sources:
        for match in chain(_NUMBER.finditer(source), _NUMBER_WORD.finditer(source)):
            if _figure_value(match.group(0)) != value:
                continue
            after = re.findall(r"%|[^\W\d_]+", source[match.end() : match.end() + 60])[:UNIT_WORDS]
            # "Points: 308" counts; "308 points, and 3" does not give the 3 points
            clause = re.split(r"[,;.()]", source[max(0, match.start() - 40) : match.start()])[-1]
            before = re.findall(r"[^\W\d_]+", clause)[-2:]
            words = set(tokenize([" ".join(before + after)])[0]) | (percent if "%" in after else set())
            symbol = source[max(0, match.start() - 2) : match.start()].strip()[-1:]
            if units & words or (symbol and units & _CURRENCIES.get(symbol, set())):
                return True
    return False


def _figure_value(written: str) -> Decimal | None:
    """"1,577" -> 1577, "four" -> 4; None for what is no figure."""
    if written.lower() in _WORDS:
        return Decimal(_WORDS[written.lower()])
    try:
        return Decimal(written.replace(",", ""))
    except InvalidOperation:
        return None


def _unsourced_wording(sentence: str, known_stems: set[str]) -> list[str]:
    """The words of a sentence that the sources and question do not have, when they are most of
    its words (more than 1 - WORDING_MIN of 3 or more; figures aside): a sentence made up
    around the sources ("The most useful tool for analysing steam engines is a thermometer")
    states what no source says even when it names nothing. Words about the sources themselves
    ("according to the source") do not count; BM25's words (stemmed, no stop words, any script)
    do the matching."""
    words, stems = _claim_words(sentence)
    said = {stem for pieces in stems for stem in pieces}
    absent = {stem for stem in said if stem not in known_stems}
    if len(said) < 3 or len(absent) <= (1 - WORDING_MIN) * len(said):
        return []
    return [w for w, pieces in zip(words, stems, strict=True) if set(pieces) & absent]


def recite(text: str, claims: list[Claim], sources: list[str] = ()) -> str:
    """`text` with each supported sentence citing the sources it rests on. A small model often
    cites another source than the one its words come from (a grounded figure is a source's
    figure, often not the cited one's), or none ("The answer is: 1903").

    A sentence whose figures are all in some sources cites one of those. With the `sources`'
    texts, the sentence's words decide further (BM25's words: stemmed, no stop words, any
    script): of its citations it keeps those whose source holds nearly as many of its words as
    the best source (RECITE_MARGIN), and one that cites none of them, or nothing at all, cites
    the best source instead when that holds at least RECITE_MIN of its words."""
    held = [set(words) for words in tokenize(list(sources))] if sources else []
    for claim in claims:
        if not claim.supported or claim.sentence not in text:
            continue
        cites = _resting_on(claim, held)
        if cites != claim.cites:
            bare = re.sub(r"\s*" + CITATION.pattern, "", claim.sentence)
            text = text.replace(claim.sentence, with_citation(bare, *cites) if cites else bare, 1)
    return text


def _resting_on(claim: Claim, held: list[set[str]]) -> tuple[int, ...]:
    """The sources (1-based) a supported sentence should cite; `held`: each source's words."""
    candidates = claim.holders or tuple(range(1, len(held) + 1))
    said = set(tokenize([CITATION.sub(" ", claim.sentence)])[0]) if held else set()
    if not said:  # no words to go by: only the figures' holders can correct it
        return (claim.holders[0],) if claim.miscited or (claim.holders and not claim.cites) else claim.cites
    support = {n: len(said & held[n - 1]) / len(said) for n in candidates}
    best = max(support, key=lambda n: (support[n], -n))  # ties: the higher-ranked source
    kept = tuple(n for n in claim.cites if n in support and support[n] >= support[best] - RECITE_MARGIN)
    if kept:
        return kept
    return (best,) if claim.holders or support[best] >= RECITE_MIN else claim.cites


def with_citation(sentence: str, *n: int, final: str = "") -> str:
    """"It rose." -> "It rose [2]." or "It rose [1, 3]." (`final` ends a sentence that had no
    end mark)."""
    sentence = sentence.rstrip()
    body = sentence.rstrip(".!?")
    return f"{body} [{', '.join(map(str, n))}]{sentence[len(body):] or final}"


def closest_sentence(
    sources: list[str], question: str, embed, preferred: Callable[[str], bool] | None = None
) -> tuple[int, str] | None:
    """The source sentence that best answers `question`, with its source's number (1-based):
    the closest by cosine, plus the share of the question's words it holds (and a bonus where
    `preferred` holds of it), a lower-ranked source's sentence paying for its rank. None when no
    source has a sentence of answer length."""
    candidates = [
        (n, sentence)
        for n, source in enumerate(sources, 1)
        for sentence in split_sentences(source.replace("\n", " "))
        if 4 <= len(sentence.split()) <= 60
    ]
    if not candidates:
        return None
    similarity = embed([s for _, s in candidates]) @ embed([question])[0]
    # the sources come ranked by the whole chunk's fit (words and meaning); one sentence's
    # cosine alone picks a lower-ranked source's sentence too often (bench/RESULTS.md)
    rank = np.array([n - 1 for n, _ in candidates], dtype=np.float32)
    # the sentence that answers a question usually repeats its words ("308 points" for "how many
    # points"), where a merely topical one shares its meaning: +0.02 F1 on XQuAD dev (RESULTS.md)
    asked, *said = (set(words) for words in tokenize([question, *(s for _, s in candidates)]))
    shared = np.array([len(asked & words) / max(1, len(asked)) for words in said], dtype=np.float32)
    score = similarity - EXTRACT_RANK_WEIGHT * rank + EXTRACT_WORDS_WEIGHT * shared
    if preferred is not None:
        score += EXTRACT_PREFERRED_WEIGHT * np.array([preferred(s) for _, s in candidates], dtype=np.float32)
    return candidates[int(np.argmax(score))]


def apply_unsupported_policy(
    text: str,
    claims: list[Claim],
    sources: list[str],
    question: str,
    policy: UnsupportedPolicy,
    embed=None,
) -> tuple[str | None, set[int]]:
    """The answer's text under `policy` (`claims` are its sentences): "mark" keeps it as it is;
    "drop" leaves out the unsupported sentences; "extract" puts in the place of the first the
    source sentence closest to the question, cited, and leaves out the others (a second source
    sentence strays further from the question: bench/RESULTS.md); without `embed` it drops
    them. With nothing supported left: None (the caller refuses). Also returns the numbers
    (1-based) of the sources whose sentences were put in."""
    if policy == "mark" or all(c.supported for c in claims):
        return text, set()
    best = closest_sentence(sources, question, embed) if policy == "extract" and embed is not None else None
    kept, extracted = [], set()
    for claim in claims:
        if claim.supported:
            kept.append(claim.sentence)
        elif best is not None and not extracted:
            kept.append(with_citation(best[1], best[0], final="."))
            extracted.add(best[0])
    if not any(c.supported for c in claims) and not extracted:
        return None, set()
    return " ".join(kept), extracted
