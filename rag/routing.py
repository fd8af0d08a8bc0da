"""Document routing: the documents a question names, found by BM25 over the documents' headers.

"3M's FY2018 capital expenditure" names a company and a year; of thirty filings, the header of
one says "3M Company · Form 10-K annual report · fiscal year ended December 31, 2018 (FY2018)".
Retrieval then adds a ranking of that document's chunks to its fusion (rag.retrieval), so its
pages are not crowded out by other companies' look-alike pages. A question that names no
document (no header term matches, or every header matches alike) is routed nowhere and
searched exactly as before.

Every document can be named: one without a header (a one-chunk document gets none) is known to
the router by its file name's words, or a question about it would be routed to the headed
documents beside it. Question words ("who", "how many") name nothing: "Who scored?" once
routed to a document called "Doctor Who". And a document is named only when the question
shares at least two of its header's terms ("3M" and "FY2018"; "Activision" and "Blizzard"): one
shared word ("company", "number") is a topic, and on encyclopedia paragraphs titled by their
subject, single-word matches routed a tenth of the questions to the wrong article.
"""

from __future__ import annotations

import re

import numpy as np

from indexes import DocumentRecord, bm25
from rag.document_context import file_name_words

ROUTE_SHARE = 0.75  # documents scoring at least this share of the best one are named
MIN_MATCHED_TERMS = 2  # one shared word ("number", "church") is a topic, not a name
MAX_ROUTED_SHARE = 0.34  # a "name" that fits over a third of the documents names none of them
_FISCAL = [  # query forms of a fiscal year, written as the headers write it ("FY2018")
    (re.compile(r"\bFY\s?'?(\d{2})\b", re.I), r"FY20\1"),
    (re.compile(r"\bFY\s?((?:19|20)\d\d)\b", re.I), r"FY\1"),
    (re.compile(r"\bfiscal\s+(?:year\s+)?((?:19|20)\d\d)\b", re.I), r"FY\1"),
]
_QUESTION_WORDS = re.compile(
    r"\b(?:what|which|who|whom|whose|when|where|why|how|many|much|did|does|do|was|were|has|have|had)\b",
    re.I,
)


def router_query(query: str) -> str:
    """The query as the router reads it: periods normalised, question words left out."""
    return _QUESTION_WORDS.sub(" ", normalise_periods(query))


def normalise_periods(query: str) -> str:
    """"fiscal 2018", "FY 2018", "FY18" -> "FY2018", kept beside the words as asked."""
    extra = []
    for pattern, form in _FISCAL:
        extra += [match.expand(form).upper() for match in pattern.finditer(query)]
    return " ".join([query, *dict.fromkeys(extra)])


class DocumentRouter:
    """BM25 over one generation's document headers.

    Example:
        >>> router = DocumentRouter(snapshot.documents())
        >>> router.route(["What was 3M's FY2018 capital expenditure?"])
        [['3M_2018_10K.pdf']]
    """

    def __init__(self, documents: list[DocumentRecord]):
        self.names = [d.name for d in documents]
        headers = [d.header for d in documents]
        named = [header or file_name_words(d.name) for header, d in zip(headers, documents, strict=True)]
        # an index without headers (made without a header scheme) is not routed at all
        self._index = bm25.build(named) if any(headers) else None
        self._terms = [set(tokens) for tokens in bm25.tokenize(named)] if self._index else []

    def route(self, queries: list[str]) -> list[list[str]]:
        """Per query, the names of the documents it names (often none)."""
        if self._index is None:
            return [[] for _ in queries]
        n = len(self.names)
        asked = [router_query(q) for q in queries]
        scores, rows = bm25.search(self._index, asked, n, n)
        routed = []
        for terms, row_scores, row_ids in zip(bm25.tokenize(asked), scores, rows, strict=True):
            valid = row_ids >= 0
            if not valid.any():
                routed.append([])
                continue
            best = float(row_scores[valid].max())
            pairs = zip(row_scores, row_ids, strict=True)
            words = set(terms)
            named = [
                int(r) for s, r in pairs
                if r >= 0 and s >= ROUTE_SHARE * best and len(self._terms[r] & words) >= MIN_MATCHED_TERMS
            ]
            specific = len(named) <= max(1.0, MAX_ROUTED_SHARE * n)
            routed.append([self.names[r] for r in named] if specific else [])
        return routed


def routed_rows(records, names: list[str]) -> np.ndarray:
    """The vector rows of the named documents' chunks."""
    return np.array(records.rows_of_documents(names), dtype=np.int64) if names else np.zeros(0, np.int64)
