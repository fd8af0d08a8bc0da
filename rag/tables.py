"""Table headings: the title and column headings of a page that holds a table, for the chunks
that start below them.

A financial statement is one table a page; its title ("Consolidated Statement of Cash Flows")
and its column headings ("(Millions) 2018 2017 2016") are its first lines, so only the page's
first chunk holds them. A chunk from its middle ("Purchases of property, plant and equipment
(1,577) (1,373) (1,420)") then names neither the statement a question asks about nor the year
of each figure. With TABLE_SCHEME on, every later chunk of such a page starts with those lines.

Plain rules, no layout model: pypdfium2 writes a table one row a line (label, then figures), so
a page is a table where most lines end in a figure; its heading is the lines above the first
row of figures, less the lines that repeat on most pages of the document (running heads such as
"Table of Contents"), cut to HEADING_CHARS.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Literal

TableScheme = Literal["none", "headings-v1"]
TABLE_SCHEME: TableScheme = "none"

HEADING_CHARS = 120  # ~25 tokens: a chunk of 200 with its document header still fits MiniLM's 254
TABLE_SHARE = 0.4  # of a page's lines that end in a figure
# a statement's row ends in figures: 1,577 / (1,577) / $ 2,853 / 12.5% / — ; one plain number
# alone ("Years ended December 31", a page number) is not a row
_FIGURE = r"(?:\(?\$?\s?\d[\d,]*(?:\.\d+)?\)?%?|[—–-])"
_ROW = re.compile(rf"(?:{_FIGURE}\s+{_FIGURE}|\(?\$?\s?\d+[,.]\d+\)?%?|\(\d+\)|\d%)$")
# pdfium splits a word of spaced-out title letters: "Balance Shee t", "Statement of Incom e"
_SPLIT_LETTER = re.compile(r"\b([A-Za-z]{2,}) ([a-z])\b")
_PERIODS = re.compile(r"\b(?:19|20)\d\d\b")


def table_headings(pages: list[str]) -> list[str]:
    """For each page, its table heading, or "" where the page is not a table."""
    lines = [[line.strip() for line in page.splitlines() if line.strip()] for page in pages]
    running = _running_heads(lines)
    return [_heading(page_lines, running) for page_lines in lines]


def _running_heads(lines: list[list[str]]) -> set[str]:
    """Lines found on more than a third of the pages (of a document of 4 pages or more)."""
    if len(lines) < 4:
        return set()
    counts = Counter(line for page in lines for line in set(page))
    return {line for line, n in counts.items() if n > len(lines) / 3}


def _heading(lines: list[str], running: set[str]) -> str:
    rows = [bool(_ROW.search(line)) and not _is_columns(line) for line in lines]
    if len(lines) < 6 or sum(rows) < TABLE_SHARE * len(lines):
        return ""
    above = lines[: rows.index(True)]
    columns = [i for i, line in enumerate(above) if _is_columns(line)]
    if columns:  # what comes between the column headings and the first row is a section label
        above = above[: columns[-1] + 1]
    heading = [_SPLIT_LETTER.sub(r"\1\2", line) for line in above if line not in running]
    heading = [line for i, line in enumerate(heading) if not _repeats(line, heading[:i])]
    # the nearest lines above the figures first: the statement's title and its columns
    while len(heading) > 1 and len(" ".join(heading)) > HEADING_CHARS:
        heading.pop(0)
    text = " ".join(heading)
    return text if len(text) <= HEADING_CHARS else text[:HEADING_CHARS].rsplit(" ", 1)[0]


def _repeats(line: str, before: list[str]) -> bool:
    """Every word of `line` is in the lines before it ("December 31, December 31," under "At
    December 31")."""
    seen = {word for earlier in before for word in re.findall(r"\w+", earlier.lower())}
    return bool(seen) and set(re.findall(r"\w+", line.lower())) <= seen


def _is_columns(line: str) -> bool:
    """A column-heading line: periods ("2018 2017 2016", "(Millions) 2018 2017") and few words."""
    return len(_PERIODS.findall(line)) >= 2 and len(line.split()) <= 12
