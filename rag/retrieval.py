"""Retrieval over an index: dense (FAISS), BM25 (bm25s) and hybrid (reciprocal rank fusion).

A Retriever follows the index: when a writer publishes a new generation, the next search
uses it, while searches already running finish on the generation they started with.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Literal, get_args

import numpy as np

from indexes import Chunk, IndexStore, Snapshot, Span, contextual_text
from rag.duplicates import collapse_duplicates
from rag.embedders import load_query_embedder
from rag.embedding import Embedder
from rag.language import model_reads
from rag.reranker import RERANK_DEPTH, Reranker, load_reranker
from rag.routing import DocumentRouter, routed_rows

Mode = Literal["dense", "bm25", "hybrid"]
MODES: tuple[Mode, ...] = get_args(Mode)
RRF_K = 60  # the constant of Cormack et al. (2009); ranks past ~100 barely count
CANDIDATES = 100  # per retriever before fusion
FOLD_SLACK = 3  # k x this many results fetched so that k remain once duplicates and pages fold


@dataclass(frozen=True, kw_only=True)
class SearchResult(Chunk):
    """A chunk found for a query, with its score: fused, or the reranker's when one ran."""

    score: float
    similarity: float | None = None  # cosine of query and chunk; None in bm25 mode
    also_in: tuple[Span, ...] = ()  # near-duplicates of this text elsewhere, folded into it


class Retriever:
    """Search one index directory.

    Args:
        index: the index directory.
        embedder: a loaded embedding model; loaded from the index's manifest when omitted.
        route: in hybrid mode, also rank the chunks of the documents a query names
            (rag.routing: BM25 over the document headers).
        reranker: a cross-encoder (or its name) that re-scores the first `RERANK_DEPTH`
            results of any mode; None: no reranking.
        query_backend: what embeds queries when `embedder` is omitted: "auto" (the fastest
            that agrees with the index's vectors, rag.calibration), "torch" or "onnx-int8".

    Example:
        >>> retriever = Retriever("~/.local/share/ragstack/index")
        >>> retriever.search("capital expenditure 2018", k=5, mode="hybrid")
    """

    def __init__(
        self,
        index,
        embedder: Embedder | None = None,
        route: bool = True,
        reranker: Reranker | str | None = None,
        query_backend: str = "auto",
    ):
        self.route = route  # hybrid search adds the chunks of the documents a query names
        self._router: tuple[str | None, DocumentRouter | None] = (None, None)
        self._headers: tuple[str | None, dict[str, str]] = (None, {})
        self.store = IndexStore(index)
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="bm25")
        self._snapshot: Snapshot = self.store.open()
        manifest = self._snapshot.manifest
        self.query_backend = query_backend
        self.embedder = embedder or load_query_embedder(manifest.model, manifest.embed_backend, query_backend)
        if self.embedder.name != self._snapshot.manifest.model:
            raise ValueError(
                f"index was built with {self._snapshot.manifest.model!r}, "
                f"not {self.embedder.name!r}"
            )
        self.reranker = load_reranker(reranker)

    @classmethod
    def from_settings(cls, settings) -> Retriever:
        """The retriever of `settings.index` with its reranker and query backend."""
        return cls(settings.index, reranker=settings.reranker, query_backend=settings.query_backend)

    def snapshot(self) -> Snapshot:
        """The current generation, reopened when a writer has published a newer one."""
        return self._current()[0]

    def _current(self) -> tuple[Snapshot, Embedder]:
        """The current generation and the model its vectors were made with, as one pair: a
        re-index with another model (`rag reindex --model`) swaps both between two searches."""
        with self._lock:
            name = self.store.current_name()
            if name is not None and name != self._snapshot.name:
                snap = self.store.open()
                manifest = snap.manifest
                if (manifest.model, manifest.embed_backend) != (
                    self._snapshot.manifest.model, self._snapshot.manifest.embed_backend
                ):
                    self.embedder = load_query_embedder(
                        manifest.model, manifest.embed_backend, self.query_backend
                    )
                # not closed here: searches that began on the old one may still be reading it,
                # and `snapshot()` hands it out; it closes (SQLite connection included) when
                # the last of them lets go of it, by reference counting
                self._snapshot = snap
            return self._snapshot, self.embedder

    def search(
        self,
        query: str,
        k: int = 10,
        mode: Mode = "hybrid",
        docs: list[str] | None = None,
        collapse: bool = False,
    ) -> list[SearchResult]:
        return self.search_batch([query], k, mode, docs, collapse)[0]

    def search_batch(
        self,
        queries: list[str],
        k: int = 10,
        mode: Mode = "hybrid",
        docs: list[str] | None = None,
        collapse: bool = False,
    ) -> list[list[SearchResult]]:
        """Top-k chunks per query; `docs` restricts results to those document names; with
        `collapse`, near-duplicate chunks fold into the best of them (rag.duplicates). With a
        reranker, the first RERANK_DEPTH are re-scored by it and the best k kept."""
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; choose one of {', '.join(MODES)}")
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        snap, embedder = self._current()
        if snap.n_chunks == 0 or not queries:
            return [[] for _ in queries]
        wanted, k = k, (k * FOLD_SLACK if collapse else k)  # room for folded twins
        if self.reranker is not None:
            k = max(k, RERANK_DEPTH)
        allowed = None
        if docs is not None:
            allowed = np.array(snap.records.rows_of_documents(docs), dtype=np.int64)
            if len(allowed) == 0:
                return [[] for _ in queries]
        depth = max(k, CANDIDATES) if mode == "hybrid" else k
        rankings: list[tuple[np.ndarray, np.ndarray]] = []
        vectors = None
        sparse = None
        if mode in ("bm25", "hybrid"):
            # BM25 runs beside the query embedding: torch releases the GIL while it computes
            sparse = self._pool.submit(snap.search_bm25, queries, depth, allowed)
        if mode in ("dense", "hybrid"):
            prompt = snap.manifest.query_prompt
            vectors = embedder.encode(queries, prompt=embedder.prompts["query"] if prompt is None else prompt)
            rankings.append(self._dense(snap, vectors, depth, allowed))
        if sparse is not None:
            rankings.append(sparse.result())
        if mode == "hybrid" and docs is None and self.route:
            routed = self._routed(snap, queries, vectors, depth)
            if routed is not None:
                rankings.append((None, routed))
        unread = _unread(queries, embedder) if mode == "hybrid" else []
        if mode == "hybrid":
            for position, (_, rows) in enumerate(rankings):
                if position != 1:  # 0: dense, 1: BM25, 2: routed (dense within named documents)
                    rows[unread] = -1
            scores, rows = reciprocal_rank_fusion([r for _, r in rankings], k)
        else:
            scores, rows = rankings[0]
        found = [
            self._results(snap, s, r, k, None if vectors is None or i in unread else vectors[i])
            for i, (s, r) in enumerate(zip(scores, rows, strict=True))
        ]
        if self.reranker is not None:
            found = self._rerank(snap, queries, found)
        return [(collapse_duplicates(f) if collapse else f)[:wanted] for f in found]

    def _rerank(
        self, snap: Snapshot, queries: list[str], found: list[list[SearchResult]]
    ) -> list[list[SearchResult]]:
        """Each query's first RERANK_DEPTH results re-scored by the cross-encoder, best first;
        results past that depth follow in their fused order. All queries' pairs go through the
        model in one call, which batches them."""
        if self._headers[0] != snap.name:
            self._headers = (snap.name, {d.name: d.header for d in snap.documents()})
        headers = self._headers[1]
        heads = [f[:RERANK_DEPTH] for f in found]
        pairs = [
            (q, contextual_text(headers.get(r.doc, ""), r.text))
            for q, head in zip(queries, heads, strict=True)
            for r in head
        ]
        scores = iter(self.reranker.score_pairs(pairs).tolist())
        reranked = [
            sorted((replace(r, score=next(scores)) for r in head), key=lambda r: -r.score) for head in heads
        ]
        return [h + f[RERANK_DEPTH:] for h, f in zip(reranked, found, strict=True)]

    def _routed(
        self, snap: Snapshot, queries: list[str], vectors: np.ndarray, depth: int
    ) -> np.ndarray | None:
        """A ranking of the chunks of the documents each query names (rag.routing), -1 where it
        names none; None when no query names a document."""
        if self._router[0] != snap.name:
            self._router = (snap.name, DocumentRouter(snap.documents()))
        routes = self._router[1].route(queries)
        if not any(routes):
            return None
        ranking = np.full((len(queries), depth), -1, dtype=np.int64)
        for q, names in enumerate(routes):
            if names:
                _, rows = self._dense(snap, vectors[q : q + 1], depth, routed_rows(snap.records, names))
                ranking[q, : rows.shape[1]] = rows[0]
        return ranking

    @staticmethod
    def _dense(snap: Snapshot, vectors: np.ndarray, k: int, allowed: np.ndarray | None):
        if allowed is None:
            return snap.search_dense(vectors, k)
        # exact search over the allowed rows: right for every index type, cheap for a few docs
        scores = vectors @ np.asarray(snap.vectors[allowed]).T
        top = np.argsort(-scores, axis=1)[:, :k]
        return np.take_along_axis(scores, top, axis=1), allowed[top]

    @staticmethod
    def _results(snap: Snapshot, scores: np.ndarray, rows: np.ndarray, k: int, query: np.ndarray | None):
        keep = [(float(s), int(r)) for s, r in zip(scores, rows, strict=True) if r >= 0][:k]
        records = snap.records.chunks([r for _, r in keep])
        similarity = [None] * len(keep)
        if query is not None and keep:
            similarity = (np.asarray(snap.vectors[[r for _, r in keep]]) @ query).tolist()
        return [
            SearchResult(**vars(c), score=s, similarity=sim)
            for (s, _), c, sim in zip(keep, records, similarity, strict=True)
        ]


def reciprocal_rank_fusion(
    rankings: list[np.ndarray], k: int, rrf_k: int = RRF_K
) -> tuple[np.ndarray, np.ndarray]:
    """Fuse row rankings (each of shape (queries, depth), -1 = none) into (scores, rows)."""
    n_queries = rankings[0].shape[0]
    out_scores = np.zeros((n_queries, k), dtype=np.float32)
    out_rows = np.full((n_queries, k), -1, dtype=np.int64)
    for q in range(n_queries):
        fused: dict[int, float] = {}
        for ranking in rankings:
            for rank, row in enumerate(ranking[q]):
                if row >= 0:
                    fused[int(row)] = fused.get(int(row), 0.0) + 1.0 / (rrf_k + rank + 1)
        best = sorted(fused.items(), key=lambda item: -item[1])[:k]
        for i, (row, score) in enumerate(best):
            out_rows[q, i], out_scores[q, i] = row, score
    return out_scores, out_rows



def _unread(queries: list[str], embedder) -> list[int]:
    """The queries in a script the embedding model's card does not declare (a Chinese question
    to an English model). Hybrid search ranks them by BM25 alone, since the model's ranking of
    text it cannot read only pushes the right chunks down, and gives their results no cosine
    (similarity None, as in bm25 mode), which would judge nothing. `--mode dense` still shows
    what the model finds."""
    languages = getattr(embedder, "languages", None)
    return [q for q, text in enumerate(queries) if not model_reads(languages, text)]
