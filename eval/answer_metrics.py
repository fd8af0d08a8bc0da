"""Answer metrics without an LLM judge: exact match and token F1 (SQuAD's normalisation, on the
answer's words: its citation markers "[1]" are not part of what it says; text
with CJK characters scored character by character, punctuation of every script stripped, as
CMRC and XQuAD score Chinese),
ROUGE-L (the `rouge-score` package), citation precision and recall against evidence pages, and
means that count their NaNs instead of hiding them.
"""

from __future__ import annotations

import math
import re
import string
import unicodedata
from collections import Counter
from collections.abc import Iterable

from indexes.words import CJK
from rag.claims import CITATION

_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)


def normalize_answer(text: str) -> str:
    """SQuAD v1.1's normalisation: lower case, no punctuation, no articles, single spaces."""
    text = "".join(ch for ch in text.lower() if ch not in set(string.punctuation))
    return " ".join(_ARTICLES.sub(" ", text).split())


_CJK_PIECES = re.compile(f"[{CJK}]|[^{CJK}]+")


def answer_tokens(text: str) -> list[str]:
    """What EM and F1 compare: SQuAD's words; where CJK characters occur, each is a token of its
    own and punctuation of every script is dropped (CMRC 2018's and MLQA's scoring). Citation
    markers go first: "308 [1]" says 308."""
    text = CITATION.sub(" ", text)
    if not re.search(f"[{CJK}]", text):
        return normalize_answer(text).split()
    text = "".join(ch for ch in text.lower() if not unicodedata.category(ch).startswith("P"))
    return [piece for word in text.split() for piece in _CJK_PIECES.findall(word)]


def exact_match(prediction: str, reference: str) -> float:
    return float(answer_tokens(prediction) == answer_tokens(reference))


def token_f1(prediction: str, reference: str) -> float:
    predicted, expected = answer_tokens(prediction), answer_tokens(reference)
    if not predicted or not expected:
        return float(predicted == expected)
    common = sum((Counter(predicted) & Counter(expected)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(predicted), common / len(expected)
    return 2 * precision * recall / (precision + recall)


def best_over_references(metric, prediction: str, references: Iterable[str]) -> float:
    """SQuAD scores a prediction against the best of several reference answers."""
    return max((metric(prediction, r) for r in references), default=0.0)


def rouge_l(prediction: str, reference: str) -> float:
    """ROUGE-L F-measure (longest common subsequence), with stemming; citation markers dropped."""
    from rouge_score import rouge_scorer

    prediction = CITATION.sub(" ", prediction)
    return (
        rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True).score(reference, prediction)["rougeL"].fmeasure
    )


def citation_precision_recall(
    cited: list[tuple[str, int, int]], evidence: list[tuple[str, int]]
) -> tuple[float, float]:
    """Cited page spans (doc, first, last) against evidence pages (doc, page).

    Precision: the share of citations whose span covers an evidence page of their document.
    Recall: the share of evidence pages covered by some citation. With no citations precision
    is NaN (undefined, counted as such), with no evidence recall is NaN.
    """

    def covers(span: tuple[str, int, int], page: tuple[str, int]) -> bool:
        return span[0] == page[0] and span[1] <= page[1] <= span[2]

    precision = sum(any(covers(c, e) for e in evidence) for c in cited) / len(cited) if cited else math.nan
    recall = sum(any(covers(c, e) for c in cited) for e in evidence) / len(evidence) if evidence else math.nan
    return precision, recall


def mean_and_nans(values: Iterable[float]) -> tuple[float, int]:
    """(mean of the defined values, how many were NaN); the mean is NaN when none is defined."""
    values = list(values)
    defined = [v for v in values if not math.isnan(v)]
    return (sum(defined) / len(defined) if defined else math.nan), len(values) - len(defined)
