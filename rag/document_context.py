"""A short header that names a document: its title, its file name's words, and the organisation,
period and report type its first pages state, found with plain rules (no LLM).

Look-alike documents (ten years of one company's reports, thirty companies' 10-Ks) share most of
their wording; a chunk from page 60 of a table does not say whose table it is or which year. The
header travels with every chunk into the embedding and the BM25 index (`contextual_text`), so a
question that names the company and the year finds that document's pages.

HEADER_SCHEME names the rules below; an index records the scheme it was built with, and changing
it needs a re-index, as a model change does.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal, get_args

from indexes import contextual_text

__all__ = ["HEADER_SCHEME", "HEADER_SCHEMES", "HeaderScheme", "contextual_text", "document_header"]

HeaderScheme = Literal["none", "title-entities-v1"]
HEADER_SCHEMES: tuple[HeaderScheme, ...] = get_args(HeaderScheme)
HEADER_SCHEME: HeaderScheme = "title-entities-v1"
MAX_HEADER_CHARS = 240  # ~50 MiniLM tokens: a 200-token chunk plus its header fits the 256 window
FIRST_PAGES = 3  # where documents say what they are

_MONTHS = (
    "January|February|March|April|May|June|July|August|September|October|November|December|"
    "Jan\\.?|Feb\\.?|Mar\\.?|Apr\\.?|Jun\\.?|Jul\\.?|Aug\\.?|Sept?\\.?|Oct\\.?|Nov\\.?|Dec\\.?"
)
_DATE = rf"(?:(?:{_MONTHS})\s+\d{{1,2}},?\s+(?:19|20)\d\d)"
_PERIODS = [  # (pattern, how the period is written in the header); the first that matches wins
    (re.compile(rf"fiscal\s+year\s+ended\s+({_DATE})", re.I), "fiscal year ended {0} (FY{year})"),
    (re.compile(rf"(?:quarterly\s+period|quarter|three\s+months)\s+ended\s+({_DATE})", re.I),
     "quarter ended {0} ({year})"),
    (re.compile(rf"year\s+ended\s+({_DATE})", re.I), "year ended {0} (FY{year})"),
    (re.compile(r"\b((?:first|second|third|fourth)\s+quarter\s+(?:of\s+)?(?:fiscal\s+(?:year\s+)?)?(?:19|20)\d\d)",
                re.I), "{0} ({year})"),
    (re.compile(r"\b((?:Q[1-4]|[1-4]Q)\s*(?:FY)?\s*(?:19|20)\d\d)\b"), "{0} ({year})"),
    (re.compile(rf"date\s+of\s+report[^\n]{{0,40}}?({_DATE})", re.I), "dated {0} ({year})"),
    (re.compile(rf"\b({_DATE})", re.I), "{0} ({year})"),
]
_REPORT_TYPES = [  # (pattern, name); every type found is named, in this order
    (re.compile(r"\bform\s+10-?K\b", re.I), "Form 10-K annual report"),
    (re.compile(r"\bform\s+10-?Q\b", re.I), "Form 10-Q quarterly report"),
    (re.compile(r"\bform\s+8-?K\b", re.I), "Form 8-K current report"),
    (re.compile(r"\bform\s+20-?F\b", re.I), "Form 20-F annual report"),
    (re.compile(r"\bannual\s+report\b", re.I), "annual report"),
    (re.compile(r"\bquarterly\s+report\b", re.I), "quarterly report"),
    (re.compile(r"\b(?:earnings|results)\s+(?:release|announcement)|\breports?\s+(?:first|second|third|"
                r"fourth|full)[- ](?:quarter|year)\b|\bannounces\b.{0,60}\bresults\b", re.I),
     "earnings release"),
    (re.compile(r"\b(?:reference\s+manual|user(?:'s)?\s+guide|manual)\b", re.I), "manual"),
]
_ORG_SUFFIX = (
    r"(?:INC|INCORPORATED|CORP|CORPORATION|COMPANY|CO|LTD|LIMITED|PLC|LLC|L\.P|LP|N\.V|S\.A|AG|SE|"
    r"GROUP|HOLDINGS?|BANCORP|TRUST)\.?"
)
_ORG = re.compile(rf"^\W*([A-Z0-9][\w&.,'’ -]{{0,60}}?\b{_ORG_SUFFIX})\W*$", re.I)
_REGISTRANT = re.compile(r"exact\s+name\s+of\s+registrant", re.I)
_BOILERPLATE = re.compile(  # cover-page lines that say nothing about which document this is
    r"^(table\s+of\s+contents|contents|index|united\s+states\b.*|.*securities\s+and\s+exchange\s+commission.*|"
    r"for\s+immediate\s+release|page\s+\d+|exhibit\s+[\d.]+|confidential|draft)$",
    re.I,
)
_ID_LIKE = re.compile(r"^[\d\s._/-]+$")  # EDGAR accession numbers and the like, not titles
_GENERIC_TITLES = re.compile(r"^(untitled|microsoft\s+word\b.*|document\d*|slide\s*\d*|title)$", re.I)


def file_name_words(name: str) -> str:
    """"3M_2018_10K.pdf" -> "3M 2018 10K"; "annualReport-FY22.pdf" -> "annual Report FY22"."""
    stem = Path(name).stem
    if not re.search(r"[A-Za-z]", stem):
        return ""  # an id ("4983") names nothing a question would
    stem = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", stem)
    return " ".join(stem.replace("_", " ").replace("-", " ").replace(".", " ").split())


def metadata_title(title: str | None) -> str:
    """The PDF's Title entry when it reads as a title (not an id, not a word processor's default)."""
    title = " ".join((title or "").split())
    if not title or not re.search(r"[A-Za-z]", title) or any(
        rule.match(title) for rule in (_ID_LIKE, _GENERIC_TITLES, _BOILERPLATE)
    ):
        return ""
    return title


def organisation(pages: list[str]) -> str:
    """The organisation a document is by: the line before "(Exact name of registrant ...)", else
    the first line of the first pages that is a name ending in Inc., Corporation, Company, plc..."""
    lines = [part.strip() for page in pages[:FIRST_PAGES] for line in page.splitlines()
             for part in re.split(r"_{3,}", line)]
    for i, line in enumerate(lines):
        if _REGISTRANT.search(line):
            for before in reversed(lines[max(0, i - 3) : i]):
                name = before.strip(" _-")
                if re.search(r"[A-Za-z]", name):
                    return _tidy_name(name)
    for line in lines:
        match = _ORG.match(line)
        if match and len(match.group(1).split()) <= 8:
            return _tidy_name(match.group(1))
    return ""


def period(pages: list[str]) -> str:
    """The period a document covers, as its first pages state it, with the year spelt "FY2018"."""
    text = " ".join(pages[:FIRST_PAGES])
    for pattern, form in _PERIODS:
        match = pattern.search(text)
        if match:
            date = " ".join(match.group(1).split())
            year = re.search(r"(?:19|20)\d\d", date).group(0)
            return form.format(date, year=year)
    return ""


def report_types(pages: list[str]) -> list[str]:
    """What kind of document this is; of the SEC forms, the one named first (a 10-Q's cover
    mentions the 10-K too)."""
    text = " ".join(pages[:FIRST_PAGES])
    found = sorted(
        (match.start(), name) for pattern, name in _REPORT_TYPES if (match := pattern.search(text))
    )
    forms = [name for _, name in found if name.startswith("Form")]
    if forms:  # "annual report" is part of a 10-K's cover: the form says it already
        return [forms[0], *[name for _, name in found if name == "earnings release"]]
    return [name for _, name in found][:2]


def first_heading(pages: list[str]) -> str:
    """The first line of the first page that reads as a heading: a few words, mostly letters."""
    for line in (pages[0] if pages else "").splitlines()[:15]:
        line = " ".join(line.split())
        words = line.split()
        letters = sum(c.isalpha() for c in line)
        mostly_letters = letters >= 0.8 * len(line.replace(" ", ""))
        if 3 <= len(words) <= 12 and mostly_letters and not _BOILERPLATE.match(line):
            return line
    return ""


def document_header(name: str, pages: list[str], title: str | None = None) -> str:
    """The header of a document: "title · organisation · report type · period · file words".

    Args:
        name: the document's file name.
        pages: its page texts (only the first few are read).
        title: the PDF's metadata title, or a title the user set (`rag docs set-title`).
    """
    by = organisation(pages)
    # a cover page's first lines are an address or a form's boilerplate more often than a title:
    # read one only when nothing else says who the document is by
    title = metadata_title(title) or ("" if by else first_heading(pages))
    parts = [title, by, *report_types(pages), period(pages), file_name_words(name)]
    seen: list[str] = []
    for part in parts:
        if part and not any(part.lower() in s.lower() for s in seen):
            seen = [s for s in seen if s.lower() not in part.lower()] + [part]
    return " · ".join(seen)[:MAX_HEADER_CHARS]


def _tidy_name(name: str) -> str:
    """"ACTIVISION BLIZZARD, INC." -> "Activision Blizzard, Inc." (all-caps names read as shouting
    to BM25 and the embedder alike); mixed-case names are kept as written."""
    name = " ".join(name.split()).strip(" ,")
    if name.isupper():
        name = " ".join(w if any(c.isdigit() for c in w) else w.capitalize() for w in name.split())
    return name
