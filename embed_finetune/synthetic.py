"""Synthetic training queries for a user with no labels, made from the indexed chunks.

Two ways to write a query for a chunk:
- `llm`: ask a generator (the embedded model, or any OpenAI-compatible server such as vLLM) for a
  question the chunk answers;
- `crop` (no LLM, seconds for thousands): the inverse cloze task of Lee et al. (2019): one
  sentence of the chunk is the query, the rest of the chunk the positive.

Then the round-trip filter keeps a query only when the index finds its own chunk in the top k,
and duplicates are dropped.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from rich.progress import track

from embed_finetune.pairs import Pair, PairSet
from rag.generation import Generator, generate

QUERY_STYLES = ("crop", "llm")
_SENTENCE_END = re.compile(r"(?<=[.!?;:])\s+|\n+")
_WORD = re.compile(r"[A-Za-z][A-Za-z'-]+")


def _readable(text: str) -> bool:
    """Mostly words, not a table of figures: both a query and a question need some prose."""
    tokens = text.split()
    return len(tokens) >= 30 and len(_WORD.findall(text)) >= 0.4 * len(tokens)


def sample_chunks(chunks: dict[str, str], n: int, seed: int = 0) -> list[tuple[str, str]]:
    """Up to `n` (chunk id, text) pairs of readable chunks, drawn at random but repeatably."""
    readable = sorted((cid, text) for cid, text in chunks.items() if _readable(text))
    return random.Random(seed).sample(readable, min(n, len(readable)))


def crop_query(text: str, rng: random.Random) -> tuple[str, str] | None:
    """(query, positive): a sentence of 6-30 words taken out of the chunk, and what remains."""
    sentences = [s.strip() for s in _SENTENCE_END.split(text) if s.strip()]
    candidates = [s for s in sentences if 6 <= len(s.split()) <= 30 and len(_WORD.findall(s)) >= 5]
    if not candidates or len(sentences) < 2:
        return None
    query = rng.choice(candidates)
    rest = " ".join(s for s in sentences if s is not query)
    return query, rest


QUESTION_PROMPT = (
    "Here is a passage from the document {doc}:\n\n{text}\n\n"
    "Write one question that a reader of this document could ask and that this passage answers. "
    "Reply with the question only."
)


def clean_question(reply: str) -> str | None:
    """The first line of the reply, if it reads as a question of a sensible length."""
    line = next((ln.strip() for ln in reply.splitlines() if ln.strip()), "")
    line = re.sub(r"^(question|q)\s*[:.]\s*", "", line, flags=re.I).strip(" \"'*")
    if not 4 <= len(line.split()) <= 40:
        return None
    return line


def llm_query(generator: Generator, doc: str, text: str, max_tokens: int = 48) -> str | None:
    messages = [{"role": "user", "content": QUESTION_PROMPT.format(doc=doc, text=text)}]
    return clean_question(generate(generator, messages, max_tokens=max_tokens))


def synthetic_pairs(
    chunks: dict[str, str],
    n: int,
    style: str = "crop",
    generator: Generator | None = None,
    doc_of: Callable[[str], str] = lambda chunk_id: "",
    concurrency: int = 1,
    seed: int = 0,
    progress: bool = True,
) -> PairSet:
    """Queries for up to `n` sampled chunks; a chunk that yields no usable query is skipped."""
    if style not in QUERY_STYLES:
        raise ValueError(f"unknown query style {style!r}; choose one of {', '.join(QUERY_STYLES)}")
    if style == "llm" and generator is None:
        raise ValueError("llm queries need a generator")
    sampled = sample_chunks(chunks, n, seed)
    rng = random.Random(seed)
    pairs: list[Pair] = []
    if style == "crop":
        for chunk_id, text in sampled:
            made = crop_query(text, rng)
            if made:
                pairs.append(Pair(f"syn-{chunk_id}", made[0], chunk_id, made[1]))
    else:

        def ask(item: tuple[str, str]) -> str | None:
            return llm_query(generator, doc_of(item[0]), item[1])

        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            questions = pool.map(ask, sampled)
            if progress:
                questions = track(questions, total=len(sampled), description="writing queries")
            for (chunk_id, text), question in zip(sampled, questions, strict=True):
                if question:
                    pairs.append(Pair(f"syn-{chunk_id}", question, chunk_id, text))
    return PairSet(
        pairs,
        chunks,
        f"synthetic ({style}) queries for {len(sampled)} sampled chunks",
        {"sampled_chunks": len(sampled), "queries_written": len(pairs)},
    )


def normalise(query: str) -> str:
    return " ".join(re.findall(r"\w+", query.lower()))


def drop_duplicates(pair_set: PairSet) -> PairSet:
    """Keep the first pair of each query text (compared without case and punctuation)."""
    seen: set[str] = set()
    kept = []
    for p in pair_set.pairs:
        key = normalise(p.query)
        if key and key not in seen:
            seen.add(key)
            kept.append(p)
    return PairSet(kept, pair_set.corpus, pair_set.source, {**pair_set.extra, "after_dedup": len(kept)})


def round_trip_filter(pair_set: PairSet, retriever, k: int = 10, mode: str = "hybrid") -> PairSet:
    """Keep a pair only when searching its query finds its own chunk in the top `k`: a query the
    index cannot trace back to its chunk is too vague (or wrong) to teach anything."""
    queries = [p.query for p in pair_set.pairs]
    results = retriever.search_batch(queries, k=k, mode=mode) if queries else []
    kept = [
        p
        for p, hits in zip(pair_set.pairs, results, strict=True)
        if p.positive_id in {h.chunk_id for h in hits}
    ]
    return PairSet(
        kept,
        pair_set.corpus,
        pair_set.source,
        {**pair_set.extra, "after_round_trip": len(kept), "round_trip_k": k},
    )
