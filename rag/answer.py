"""Cited answers: retrieved chunks become numbered sources, the generator answers citing them as
[n], and the citations are checked and mapped back to document, page and chunk.

Small models cite unreliably, so after generation:
  - a citation [n] with no source n is removed from the text and reported in `invalid_citations`;
  - a sentence with no citation gets the source it is closest to (cosine of sentence and chunk
    embeddings, at least ATTRIBUTION_MIN), marked `attributed` rather than cited by the model.
Sources far from the question (cosine below `min_similarity`, default MIN_SIMILARITY) are left
out; when none is left, the answer says the documents do not contain it and the generator is not
called.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from indexes import Span
from rag.generation import Generator, Message, clean
from rag.retrieval import Mode, Retriever, SearchResult

# all-MiniLM-L6-v2 cosine: unrelated text scores ~0.0-0.2 against a chunk, a question about it 0.35+
MIN_SIMILARITY = 0.25
ANSWER_K = 3  # sources given to the generator: small models do best with few
MAX_TOKENS = 160  # answer length bound: small models ramble
ATTRIBUTION_MIN = 0.3
NOT_FOUND = "The documents do not contain an answer to this question."
SYSTEM_PROMPT = (
    "You answer questions using only the numbered sources given. After each sentence, cite the "
    "source it comes from as [1], [2], ... Answer briefly, in one to three sentences. If the "
    "sources do not contain the answer, say that the documents do not contain it."
)
_CITATION = re.compile(r"\[(\d+(?:\s*,\s*\d+)*)\]")
_SENTENCE = re.compile(r"(?<=[.!?])\s+")


@dataclass(frozen=True, kw_only=True)
class Citation(Span):
    """Source `n` of an answer, cited in its text as [n]."""

    n: int
    attributed: bool = False  # added by matching the sentence to a source, not cited by the model

    def to_dict(self) -> dict:
        # "page" is what clients of the first HTTP API read; it stays as an alias of page_start
        return {**super().to_dict(), "page": self.page_start}


@dataclass
class Answer:
    question: str  # as asked
    query: str  # as searched: the standalone rewrite of a follow-up
    text: str
    citations: list[Citation] = field(default_factory=list)
    sources: list[SearchResult] = field(default_factory=list)
    invalid_citations: list[int] = field(default_factory=list)
    found: bool = True

    def to_dict(self) -> dict:
        return {
            **{k: v for k, v in vars(self).items() if k not in ("citations", "sources")},
            "citations": [c.to_dict() for c in self.citations],
            "sources": [s.to_dict() for s in self.sources],
        }


def build_messages(
    question: str, sources: list[SearchResult], history: list[Message] | None = None
) -> list[Message]:
    """System prompt, earlier turns, then the sources and the question as the last user turn."""
    numbered = "\n\n".join(f"[{n}] ({s.doc}, {s.pages})\n{s.text}" for n, s in enumerate(sources, 1))
    return [
        {"role": "system", "content": SYSTEM_PROMPT},
        *(history or []),
        {"role": "user", "content": f"Sources:\n\n{numbered}\n\nQuestion: {question}"},
    ]


def check_citations(
    text: str, sources: list[SearchResult], embed=None
) -> tuple[str, list[Citation], list[int]]:
    """(text with invalid citations removed and attributions added, citations, invalid numbers).

    `embed` (list of texts -> normalised vectors) enables attribution of uncited sentences.
    """
    invalid: list[int] = []

    def keep_valid(match: re.Match) -> str:
        numbers = [int(x) for x in match.group(1).split(",")]
        valid = [n for n in numbers if 1 <= n <= len(sources)]
        invalid.extend(n for n in numbers if n not in valid)
        return f"[{', '.join(map(str, valid))}]" if valid else ""

    text = re.sub(r"[ \t]+([.,;:])", r"\1", _CITATION.sub(keep_valid, text)).strip()
    cited = {int(x) for group in _CITATION.findall(text) for x in group.split(",")}
    attributed: set[int] = set()
    if embed is not None and sources:
        sentences = [s for s in _SENTENCE.split(text) if s.strip()]
        bare = [i for i, s in enumerate(sentences) if not _CITATION.search(s) and len(s.split()) >= 3]
        if bare:
            sims = embed([sentences[i] for i in bare]) @ embed([s.text for s in sources]).T
            for row, i in enumerate(bare):
                best = int(np.argmax(sims[row]))
                if sims[row, best] >= ATTRIBUTION_MIN:
                    n = best + 1
                    sentence = sentences[i].rstrip()
                    end = len(sentence) - len(sentence.rstrip(".!?"))
                    sentences[i] = f"{sentence[: len(sentence) - end]} [{n}]{sentence[len(sentence) - end :]}"
                    if n not in cited:
                        attributed.add(n)
            text = " ".join(sentences)
    citations = [
        Citation(
            doc=s.doc, page_start=s.page_start, page_end=s.page_end, chunk_id=s.chunk_id, n=n,
            attributed=n in attributed,
        )
        for n, s in enumerate(sources, 1)
        if n in cited or n in attributed
    ]
    return text, citations, sorted(set(invalid))


class Answerer:
    """Retrieve, then answer with checked citations.

    Args:
        retriever: searches the index.
        generator: writes the answer (rag.generation).
        k: sources given to the generator; small models do best with few.
        min_similarity: sources below this cosine to the query are dropped; with none left the
            answer is NOT_FOUND, without generating.
        max_tokens: bound on the answer length (small models ramble).
        collapse: fold near-duplicate sources (rag.duplicates) so that none is given twice.

    Example:
        >>> answerer = Answerer(Retriever(index), TransformersGenerator())
        >>> answerer.answer("What was 3M's capital expenditure in 2018?").text
    """

    def __init__(
        self,
        retriever: Retriever,
        generator: Generator,
        k: int = ANSWER_K,
        mode: Mode = "hybrid",
        min_similarity: float = MIN_SIMILARITY,
        max_tokens: int = MAX_TOKENS,
        collapse: bool = False,
    ):
        self.retriever = retriever
        self.generator = generator
        self.k, self.mode = k, mode
        self.min_similarity = min_similarity
        self.max_tokens = max_tokens
        self.collapse = collapse  # near-duplicates fold, so no two sources are one text

    @classmethod
    def from_settings(cls, retriever: Retriever, generator: Generator, settings) -> Answerer:
        """The answerer rag.settings.Settings describe (answer_k, mode, min_similarity, max_tokens)."""
        return cls(
            retriever,
            generator,
            k=settings.answer_k,
            mode=settings.mode,
            min_similarity=settings.min_similarity,
            max_tokens=settings.max_tokens,
            collapse=settings.collapse_duplicates,
        )

    def retrieve(self, query: str, docs: list[str] | None = None) -> list[SearchResult]:
        """The sources for a query that are relevant enough; possibly none."""
        sources = self.retriever.search(query, k=self.k, mode=self.mode, docs=docs, collapse=self.collapse)
        if any(s.similarity is None for s in sources):
            return sources  # bm25 mode: no similarity to judge by
        # weak sources distract a small model more than they help it
        return [s for s in sources if s.similarity >= self.min_similarity]

    def answer(self, question: str, **options) -> Answer:
        """The whole checked answer; `options` as for `stream`."""
        stream = self.stream(question, **options)
        for _ in stream:
            pass
        return stream.answer

    def answer_batch(self, questions: list[str], batch_size: int = 8) -> list[Answer]:
        """Answers to many independent questions; a generator with `generate_batch` (the
        embedded one) writes `batch_size` of them at a time. For evaluation runs."""
        found = (
            self.retriever.search_batch(questions, k=self.k, mode=self.mode, collapse=self.collapse)
            if questions
            else []
        )
        sources = [
            [s for s in hits if s.similarity is None or s.similarity >= self.min_similarity] for hits in found
        ]
        answers: list[Answer | None] = [None] * len(questions)
        todo = [i for i, s in enumerate(sources) if s]
        for i, s in enumerate(sources):
            if not s:
                answers[i] = Answer(questions[i], questions[i], NOT_FOUND, found=False)
        batched = getattr(self.generator, "generate_batch", None)
        for start in range(0, len(todo), batch_size):
            group = todo[start : start + batch_size]
            prompts = [build_messages(questions[i], sources[i]) for i in group]
            if batched is not None:
                replies = batched(prompts, self.max_tokens)
            else:
                replies = ["".join(self.generator.stream(m, self.max_tokens)) for m in prompts]
            for i, reply in zip(group, replies, strict=True):
                answers[i] = self._checked(questions[i], questions[i], reply, sources[i])
        return answers  # type: ignore[return-value]

    def _checked(self, question: str, query: str, reply: str, sources: list[SearchResult]) -> Answer:
        text, citations, invalid = check_citations(clean(reply), sources, self.retriever.embedder.encode)
        return Answer(question, query, text, citations, sources, invalid)

    def stream(
        self,
        question: str,
        history: list[Message] | None = None,
        query: str | None = None,
        docs: list[str] | None = None,
        max_tokens: int | None = None,
        temperature: float = 0.0,
    ) -> AnswerStream:
        """Answer piece by piece; the checked Answer is on the stream once it is exhausted."""
        return AnswerStream(
            self, question, history or [], query or question, docs, max_tokens or self.max_tokens, temperature
        )


class AnswerStream:
    """Iterate for the raw text pieces as they are generated; `.answer` holds the checked result.

    The streamed pieces are the model's words; the final Answer's text may differ from their
    concatenation by removed invalid citations and added attributions.
    """

    def __init__(
        self,
        answerer: Answerer,
        question: str,
        history: list[Message],
        query: str,
        docs: list[str] | None,
        max_tokens: int,
        temperature: float,
    ):
        self.answerer = answerer
        self.question, self.history, self.query = question, history, query
        self.docs, self.max_tokens, self.temperature = docs, max_tokens, temperature
        self.answer: Answer | None = None

    def __iter__(self) -> Iterator[str]:
        sources = self.answerer.retrieve(self.query, self.docs)
        if not sources:
            self.answer = Answer(self.question, self.query, NOT_FOUND, found=False)
            yield NOT_FOUND
            return
        messages = build_messages(self.query, sources, self.history)
        raw: list[str] = []
        for piece in self.answerer.generator.stream(messages, self.max_tokens, self.temperature):
            raw.append(piece)
            yield piece
        self.answer = self.answerer._checked(self.question, self.query, "".join(raw), sources)
