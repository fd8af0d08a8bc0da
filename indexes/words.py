"""BM25's words, chosen per script: Snowball-stemmed English words for Latin text, jieba's
search-mode words for Chinese, character bigrams for Japanese and Korean. Chunks and queries go
through the same function; mixed text is cut into runs of one script and each run tokenised its
own way.

Text without a CJK character takes exactly the English path it always took (one bm25s call for
the whole batch), so English indexes and their speed are unchanged.

The scheme is recorded in each generation's manifest (`bm25_tokenizer`): an index built before
this module read its chunks as "english", and its queries are read the same way.
"""

from __future__ import annotations

import logging
import re
from functools import lru_cache

# bm25s (with numba and scipy) is imported where words are made, not here: a command that only
# talks to a server (rag.remote) would otherwise pay 0.6 s for it

ENGLISH = "english"
MULTILINGUAL = "multilingual-1"

# the scripts' character ranges, as regex class bodies; rag.chunking, rag.documents, rag.language
# and eval.answer_metrics use these too
HAN = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
KANA = "\u3040-\u30ff\u31f0-\u31ff"
HANGUL = "\u1100-\u11ff\u3130-\u318f\uac00-\ud7af"
CJK = HAN + KANA + HANGUL
HAS_CJK = re.compile(f"[{CJK}]")
_RUNS = re.compile(
    f"(?P<han>[{HAN}]+)|(?P<kana>[{KANA}]+)|(?P<hangul>[{HANGUL}]+)|(?P<other>[^{HAN}{KANA}{HANGUL}]+)"
)
_LATIN_WORD = re.compile(r"(?u)\b\w\w+\b")  # bm25s's own token pattern
# the commonest Chinese function words: jieba keeps them as words, and they match everything
_STOPWORDS_ZH = frozenset(
    "的 了 是 在 和 与 及 或 也 都 就 而 之 其 这 那 有 为 以 于 被 把 对 从 等".split()
)


@lru_cache(maxsize=1)
def _stemmer():
    import Stemmer

    return Stemmer.Stemmer("english")


@lru_cache(maxsize=1)
def _stopwords() -> frozenset[str]:
    from bm25s.stopwords import STOPWORDS_EN

    return frozenset(STOPWORDS_EN)


def tokenize(texts: list[str], scheme: str = MULTILINGUAL) -> list[list[str]]:
    """Each text's BM25 words under `scheme` (ENGLISH: as indexes built before CJK support)."""
    english = [i for i, t in enumerate(texts) if scheme == ENGLISH or not HAS_CJK.search(t)]
    out: list[list[str]] = [[] for _ in texts]
    if english:
        import bm25s

        words = bm25s.tokenize(
            [texts[i] for i in english], stopwords="en", stemmer=_stemmer(), return_ids=False,
            show_progress=False,
        )
        for i, tokens in zip(english, words, strict=True):
            out[i] = tokens
    if len(english) < len(texts):
        done = set(english)
        for i, text in enumerate(texts):
            if i not in done:
                out[i] = _mixed(text)
    return out


def _mixed(text: str) -> list[str]:
    """Words of a text holding CJK characters, run by run. Japanese is told from Chinese by its
    kana: in a text that has any, Han characters are read as bigrams too, since jieba's
    dictionary is Chinese."""
    japanese = re.search(f"[{KANA}]", text) is not None
    tokens: list[str] = []
    for run in _RUNS.finditer(text):
        kind, span = run.lastgroup, run.group()
        if kind == "other":
            tokens += _latin(span)
        elif kind == "han" and not japanese:
            tokens += [w for w in _jieba().cut_for_search(span) if w not in _STOPWORDS_ZH]
        else:
            tokens += _bigrams(span)
    return tokens


def _latin(text: str) -> list[str]:
    words = [w for w in _LATIN_WORD.findall(text.lower()) if w not in _stopwords()]
    return _stemmer().stemWords(words)


def _bigrams(run: str) -> list[str]:
    """Overlapping character pairs (a lone character stands for itself): words without a
    dictionary, as most CJK search engines fall back to."""
    return [run] if len(run) == 1 else [run[i : i + 2] for i in range(len(run) - 1)]


@lru_cache(maxsize=1)
def _jieba():
    import jieba

    jieba.setLogLevel(logging.WARNING)  # not "Building prefix dict..." on every first use
    jieba.initialize()
    return jieba
