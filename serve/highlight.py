"""Where a passage lies in a page's text: the characters a retrieved chunk covers on one page, so
that the viewer can mark them.

A chunk's text was extracted from the same file, but not character for character as the page's
text is read here: line breaks, spaces and hyphenation differ, and a chunk may begin on the page
before or run on to the next. Both texts are compared as lowercase letters and digits only, and
when the whole chunk is not on the page, windows of it are looked for in order: the first and
last found fix where it starts and ends, cut at the page's edges.
"""

from __future__ import annotations

import math
import unicodedata
from dataclasses import dataclass

WINDOW = 60  # normalised characters: long enough to be found once, short enough to miss a break
MAX_WINDOWS = 64  # a 32,000-character passage is looked for in 64 windows, not 500


@dataclass(frozen=True)
class Normalised:
    """`text` lowercased with all but letters and digits dropped; `origin[i]` is the index in the
    original text of `text[i]`."""

    text: str
    origin: list[int]


def normalise(text: str) -> Normalised:
    """Letters and digits only, lowercased; NFKC first, so that a ligature (ﬁ) reads as its letters."""
    chars: list[str] = []
    origin: list[int] = []
    for i, char in enumerate(text):
        for c in unicodedata.normalize("NFKC", char).lower():
            if c.isalnum():
                chars.append(c)
                origin.append(i)
    return Normalised("".join(chars), origin)


def locate(page: str, passage: str) -> tuple[int, int] | None:
    """The first and last index of the characters of `page` that `passage` covers; None when it is
    not on the page.

    The whole passage when it is there; else its windows, looked for in order, each after the
    last one found: the first found, moved back by its place in the passage, is the start (the
    page's start when the passage began on the page before), the last found, moved on by what
    follows it, the end (the page's end when the passage runs on). A passage no longer than one
    window must be found whole.

    Example:
        >>> locate("Zebras migrate\\r\\nevery July.", "zebras mi-\\ngrate every july")
        (0, 25)
    """
    on_page, wanted = normalise(page), normalise(passage).text
    if not wanted or not on_page.text:
        return None
    at = on_page.text.find(wanted)
    if at >= 0:
        return on_page.origin[at], on_page.origin[at + len(wanted) - 1]
    if len(wanted) <= WINDOW:
        return None
    found = _windows_found(on_page.text, wanted)
    if not found:
        return None
    (first_offset, first_at), (last_offset, last_at) = found[0], found[-1]
    start = max(0, first_at - first_offset)
    end = min(len(on_page.text), last_at + len(wanted) - last_offset) - 1
    return on_page.origin[start], on_page.origin[end]


def _windows_found(page: str, passage: str) -> list[tuple[int, int]]:
    """(offset in the passage, index on the page) of each window of `passage` found on `page`,
    in order: a window is looked for after the one found before it."""
    step = max(WINDOW, math.ceil((len(passage) - WINDOW) / (MAX_WINDOWS - 1)))
    offsets = list(range(0, len(passage) - WINDOW, step)) + [len(passage) - WINDOW]
    found, cursor = [], 0
    for offset in offsets:
        at = page.find(passage[offset : offset + WINDOW], cursor)
        if at >= 0:
            found.append((offset, at))
            cursor = at + 1  # not + WINDOW: the last window may overlap the one before
    return found
