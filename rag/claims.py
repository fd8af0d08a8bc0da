"""The claim check: every figure and name an answer states must be found in its sources.

A small generator copies the sentence shape of a source and swaps the fact ("The Panthers
defense surrendered 2 points [1]." over a source that says 308). A citation checker that only
checks that [1] exists passes that; this one looks up each sentence's numbers (amounts, counts,
years, percentages) and capitalised names in the sources and the question, and marks the
sentence unsupported when one of them is in none of them.

Numbers are compared as values, not strings: "$1,577 million" = "1577.00" = "1,577";
"four" = "4"; "FY2019" holds 2019; a rounded figure ("$1.6 billion") is supported by a precise
one ("1,577 million") when it is that figure rounded to the answer's precision.

What becomes of an unsupported sentence is a policy (`apply_unsupported_policy`): kept and
marked, dropped, or replaced by the source sentence closest to the question ("extract").
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Literal, get_args

import numpy as np

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
        try:
            value = Decimal(match.group(0).replace(",", ""))
        except InvalidOperation:
            continue
        values.add(value)
        scale = _SCALE.match(text, match.end())
        if scale:
            values.add(value.scaleb(_SCALES[scale.group(1).lower()]))
    values |= {Decimal(_WORDS[m.group(1).lower()]) for m in _NUMBER_WORD.finditer(text)}
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
    known_values = _plain_values(grounding)
    known_words = {w.lower() for w in re.findall(r"[\w'’&.-]+", grounding)}
    known_lower = grounding.lower()
    per_source = [_plain_values(source) for source in sources]
    claims = []
    for sentence in split_sentences(text):
        cites = tuple(int(n) for group in CITATION.findall(sentence) for n in re.findall(r"\d+", group))
        bare = CITATION.sub(" ", sentence).strip()
        figures = [
            (raw, value, decimals, Decimal(raw.replace(",", "")) if raw[0].isdigit() else value)
            for raw, value, decimals in number_values(bare)
        ]
        missing = [raw for raw, v, d, u in figures if not _value_supported(v, d, known_values, u)]
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
        claims.append(Claim(sentence, tuple(dict.fromkeys(missing)), cites, holders))
    return claims


def recite(text: str, claims: list[Claim]) -> str:
    """`text` with each miscited sentence citing the source that holds its figures instead: a
    grounded number is a source's number, but a small model often cites another source."""
    for claim in claims:
        if claim.supported and claim.miscited and claim.sentence in text:
            fixed = with_citation(re.sub(r"\s*" + CITATION.pattern, "", claim.sentence), claim.holders[0])
            text = text.replace(claim.sentence, fixed, 1)
    return text


def with_citation(sentence: str, n: int, final: str = "") -> str:
    """"It rose." -> "It rose [2]." (`final` ends a sentence that had no end mark)."""
    sentence = sentence.rstrip()
    body = sentence.rstrip(".!?")
    return f"{body} [{n}]{sentence[len(body):] or final}"


def apply_unsupported_policy(
    text: str,
    claims: list[Claim],
    sources: list[str],
    question: str,
    policy: UnsupportedPolicy,
    embed=None,
) -> tuple[str | None, set[int]]:
    """The answer's text under `policy` (`claims` are its sentences): "mark" keeps it as it is;
    "drop" leaves out the unsupported sentences; "extract" puts in the place of each the source
    sentence closest to the question, cited (or drops it when no source sentence is left or
    there is no `embed`). With nothing supported left: None (the caller refuses). Also
    returns the numbers (1-based) of the sources whose sentences were put in."""
    if policy == "mark" or all(c.supported for c in claims):
        return text, set()
    candidates = [
        (n, sentence)
        for n, source in enumerate(sources, 1)
        for sentence in split_sentences(source.replace("\n", " "))
        if 4 <= len(sentence.split()) <= 60
    ]
    order: list[int] = []
    if policy == "extract" and embed is not None and candidates:
        similarity = embed([s for _, s in candidates]) @ embed([question])[0]
        order = [int(i) for i in np.argsort(-similarity)]
    kept, extracted, put_in = [], set(), set()
    for claim in claims:
        if claim.supported:
            kept.append(claim.sentence)
            continue
        while order:
            n, sentence = candidates[order.pop(0)]
            if sentence not in put_in:  # one text in two sources (another edition) goes in once
                put_in.add(sentence)
                kept.append(with_citation(sentence, n, final="."))
                extracted.add(n)
                break
    if not any(c.supported for c in claims) and not extracted:
        return None, set()
    return " ".join(kept), extracted
