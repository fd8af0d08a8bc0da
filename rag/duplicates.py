"""Near-duplicate results collapsed to the best one: another edition of a manual, a boilerplate
page repeated in every report. The others stay listed on it as `also_in`, so nothing is lost,
and an answer's few source slots never go to the same text twice.

A page is one result too: a later chunk of a page already shown (a statement's next rows, the
rest of a paragraph) folds into that page's best chunk, so the first results are that many
different pages; among 30 look-alike filings that finds the evidence page in the top 5 more often
(bench/RESULTS.md).
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import TypeVar

from indexes import Span

NEAR_DUPLICATE = 0.9  # Jaccard of word 3-grams: one edition's page against the other's, reflowed
_WORD = re.compile(r"\w+")

Result = TypeVar("Result", bound=Span)


def shingles(text: str, n: int = 3) -> frozenset[tuple[str, ...]]:
    words = _WORD.findall(text.lower())
    if len(words) < n:
        return frozenset([tuple(words)])
    return frozenset(tuple(words[i : i + n]) for i in range(len(words) - n + 1))


def jaccard(a: frozenset, b: frozenset) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


def same_page(a: Span, b: Span) -> bool:
    return a.doc == b.doc and a.page_start <= b.page_end and b.page_start <= a.page_end


def collapse_duplicates(results: list[Result], threshold: float = NEAR_DUPLICATE) -> list[Result]:
    """`results` (best first) with each near-duplicate, and each chunk of a page already among
    them, folded into the first result it repeats."""
    kept: list[tuple[Result, frozenset, list[Span]]] = []
    for result in results:
        words = shingles(result.text)  # type: ignore[attr-defined]
        twin = next((k for k in kept if same_page(k[0], result) or jaccard(k[1], words) >= threshold), None)
        if twin is None:
            kept.append((result, words, []))
        else:
            twin[2].append(
                Span(doc=result.doc, page_start=result.page_start, page_end=result.page_end,
                     chunk_id=result.chunk_id)
            )
    return [replace(r, also_in=tuple(spans)) if spans else r for r, _, spans in kept]  # type: ignore[call-arg]
