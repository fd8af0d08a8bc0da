"""Training pairs (query, positive text) from labelled data: BEIR qrels or a PDF QA file.

A pair knows the ids of its query and of its positive, so that held-out queries can be scored
against the same corpus the negatives are mined from.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from eval.datasets import load_beir, load_questions, page_qrels


@dataclass(frozen=True)
class Pair:
    query_id: str
    query: str
    positive_id: str
    positive: str


@dataclass
class PairSet:
    """Pairs and the corpus they come from (id -> text): negatives are mined from it and
    held-out queries are searched in it."""

    pairs: list[Pair]
    corpus: dict[str, str]
    source: str  # what the pairs were made from, for the report and the model card
    extra: dict = field(default_factory=dict)

    def qrels(self) -> dict[str, dict[str, int]]:
        relevant: dict[str, dict[str, int]] = {}
        for p in self.pairs:
            relevant.setdefault(p.query_id, {})[p.positive_id] = 1
        return relevant

    def queries(self) -> dict[str, str]:
        return {p.query_id: p.query for p in self.pairs}

    def subset(self, query_ids: set[str]) -> PairSet:
        return PairSet(
            [p for p in self.pairs if p.query_id in query_ids], self.corpus, self.source, self.extra
        )


def beir_pairs(directory: Path, split: str) -> PairSet:
    """One pair per relevant (query, document) of the split's qrels."""
    corpus, queries, qrels = load_beir(Path(directory), split)
    pairs = [
        Pair(q, queries[q], doc, corpus[doc])
        for q, docs in qrels.items()
        if q in queries
        for doc in docs
        if doc in corpus
    ]
    if not pairs:
        raise ValueError(f"{directory}: split {split!r} has no query with a relevant document in the corpus")
    return PairSet(pairs, corpus, f"BEIR {Path(directory).name} qrels/{split}.tsv")


def qa_pairs(qa_file: Path, snapshot) -> PairSet:
    """One pair per question and chunk on one of its evidence pages (in an index's generation)."""
    questions = load_questions(Path(qa_file))
    chunks = {c.chunk_id: c.text for c in snapshot.records.all_chunks()}
    relevant = page_qrels(snapshot, questions)
    pairs = [
        Pair(q["id"], q["question"], chunk_id, chunks[chunk_id])
        for q in questions
        for chunk_id in relevant[q["id"]]
        if chunk_id in chunks
    ]
    if not pairs:
        raise ValueError(f"{qa_file}: no question has its evidence pages in the index")
    return PairSet(pairs, chunks, f"QA file {Path(qa_file).name} (evidence pages)")
