"""Synthetic training queries for a user with no labels, made from the indexed chunks.

Two ways to write a query for a chunk:
- `llm`: ask a generator (the embedded model, or any OpenAI-compatible server such as vLLM) for a
  question the chunk answers;
- `crop` (no LLM, seconds for thousands): for prose, the inverse cloze task of Lee et al. (2019):
  one sentence of the chunk is the query, the rest of the chunk the positive; for a table (rows of
  a label and figures, as in financial statements), a templated question about one row label,
  naming the document, so that questions about a figure learn to find the table that holds it.

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


def _readable(text: str, prose: bool) -> bool:
    """Long enough to ask about; with `prose`, mostly words rather than a table of figures (a
    cropped sentence needs words; an LLM can ask about a table)."""
    tokens = text.split()
    return len(tokens) >= 30 and (not prose or len(_WORD.findall(text)) >= 0.4 * len(tokens))


def sample_chunks(chunks: dict[str, str], n: int, seed: int = 0, prose: bool = True) -> list[tuple[str, str]]:
    """Up to `n` (chunk id, text) pairs of readable chunks, drawn at random but repeatably."""
    readable = sorted((cid, text) for cid, text in chunks.items() if _readable(text, prose))
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


_ROW = re.compile(r"^([A-Z][A-Za-z ,&'()/-]{5,80}?)\s+((?:[($]*\s*\(?-?[\d,.]+\)?%?\s*){1,8})$", re.M)
_HEADER = re.compile(r"\b(years?|months?|ended|december|fiscal|quarter|page)\b", re.I)
_YEAR = re.compile(r"(?:19|20)\d\d")
TABLE_QUESTIONS = (
    "What is the {year}{label} for {company}?",
    "How much was {label} for {company}{in_year}?",
    "What were {company}'s {label}{in_year}?",
)


def table_rows(text: str) -> list[str]:
    """Row labels of a table chunk: lines that start with words and continue with figures."""
    labels = [m.group(1).strip(" ,.-") for m in _ROW.finditer(text)]
    return [label for label in labels if len(_WORD.findall(label)) >= 2 and not _HEADER.search(label)]


def document_title(doc: str) -> tuple[str, str]:
    """(company, year) as a file name like `3M_2018_10K.pdf` gives them; year may be empty."""
    parts = re.split(r"[_\s-]+", doc.rsplit(".", 1)[0])
    years = [p for p in parts if _YEAR.fullmatch(p)]
    names = [p for p in parts[: parts.index(years[0])]] if years else parts[:1]
    return " ".join(names).replace("JOHNSON JOHNSON", "Johnson & Johnson").title(), years[0] if years else ""


def table_query(text: str, doc: str, rng: random.Random) -> tuple[str, str] | None:
    rows = table_rows(text)
    if len(rows) < 3:
        return None
    label = rng.choice(rows)
    company, year = document_title(doc)
    question = rng.choice(TABLE_QUESTIONS).format(
        label=label[0].lower() + label[1:], company=company or "the company",
        year=f"FY{year} " if year else "", in_year=f" in FY{year}" if year else "",
    )
    return question, text


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


def llm_queries(
    generator: Generator, items: list[tuple[str, str]], concurrency: int = 1, max_tokens: int = 48
) -> list[str | None]:
    """A question per (document name, chunk text): in padded batches of 8 when the generator
    has `generate_batch` (the embedded one), else `concurrency` requests at a time (a server)."""
    prompts = [[{"role": "user", "content": QUESTION_PROMPT.format(doc=d, text=t)}] for d, t in items]
    batched = getattr(generator, "generate_batch", None)
    if batched is not None:
        replies = [r for i in range(0, len(prompts), 8) for r in batched(prompts[i : i + 8], max_tokens)]
    else:
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            replies = list(pool.map(lambda m: generate(generator, m, max_tokens=max_tokens), prompts))
    return [clean_question(r) for r in replies]


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
    rng = random.Random(seed)
    if style == "crop":
        # tables are a minority of chunks but hold the figures people ask for: half the sample
        tables = {cid for cid, text in chunks.items() if len(table_rows(text)) >= 3}
        sampled = random.Random(seed).sample(sorted(tables), min(n // 2, len(tables)))
        sampled = [(cid, chunks[cid]) for cid in sampled]
        prose = {cid: text for cid, text in chunks.items() if cid not in tables}
        sampled += sample_chunks(prose, n - len(sampled), seed, prose=True)
    else:
        sampled = sample_chunks(chunks, n, seed, prose=False)
    pairs: list[Pair] = []
    if style == "crop":
        for chunk_id, text in sampled:
            made = table_query(text, doc_of(chunk_id), rng) or (
                crop_query(text, rng) if _readable(text, prose=True) else None
            )
            if made:
                pairs.append(Pair(f"syn-{chunk_id}", made[0], chunk_id, made[1]))
    else:
        groups = [sampled[i : i + 64] for i in range(0, len(sampled), 64)]
        for group in track(groups, description="writing queries") if progress else groups:
            questions = llm_queries(generator, [(doc_of(cid), text) for cid, text in group], concurrency)
            for (chunk_id, text), question in zip(group, questions, strict=True):
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
