"""Training examples in exactly the prompt `rag ask` sends: retrieved sources + question, with the
cited answer as target, or the refusal when the sources do not hold the answer.

A question is {"id", "question", "references": [answers], "evidence": [{"doc", "page"}]}, the
shape the readers of `eval.datasets` give.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from rag.answer import ANSWER_K, NOT_FOUND, build_messages
from rag.generation import Message
from rag.retrieval import Retriever, SearchResult


@dataclass
class Example:
    id: str
    messages: list[Message]  # the prompt, as rag.answer builds it
    target: str  # the reply the model should learn
    answerable: bool
    references: list[str] = field(default_factory=list)
    sources: int = 0  # how many numbered sources the prompt holds


def cited_answer(answer: str, n: int) -> str:
    """The answer format the model should learn: the answer, then its source as [n]."""
    return f"{answer.strip().rstrip('.')} [{n}]."


def _holds(source: SearchResult, question: dict) -> bool:
    """Whether a source holds the answer: it contains a reference answer, or covers an evidence page."""
    text = source.text.lower()
    if any(r and r.lower() in text for r in question.get("references", [])):
        return True
    return any(
        e["doc"] == source.doc and source.page_start <= e["page"] <= source.page_end
        for e in question.get("evidence", [])
    )


def build_examples(
    questions: list[dict],
    retriever: Retriever,
    answer_k: int = ANSWER_K,
    mode: str = "hybrid",
    refusal_fraction: float = 0.2,
    seed: int = 0,
    keep_unanswered: bool = False,
) -> list[Example]:
    """One example per question whose retrieved sources hold its answer, plus refusals.

    For about `refusal_fraction` of the questions, the prompt gets the sources retrieved for
    another question, none of which holds this question's answer, and the target is the refusal
    `rag ask` gives. Questions whose own sources miss the answer are left out (there is no
    citation to teach for them) unless `keep_unanswered`, as an evaluation wants every question.
    """
    if not questions:
        return []
    rng = random.Random(seed)
    found = retriever.search_batch([q["question"] for q in questions], k=answer_k, mode=mode)
    examples = []
    for i, (question, sources) in enumerate(zip(questions, found, strict=True)):
        if rng.random() < refusal_fraction and len(questions) > 1:
            other = found[rng.choice([j for j in range(len(questions)) if j != i])]
            unrelated = [s for s in other if not _holds(s, question)]
            if unrelated:
                messages = build_messages(question["question"], unrelated)
                examples.append(
                    Example(question["id"] + "-refusal", messages, NOT_FOUND, False, [], len(unrelated))
                )
                continue
        holding = [n for n, s in enumerate(sources, 1) if _holds(s, question)]
        references = [r for r in question.get("references", []) if r]
        if references and (holding or keep_unanswered):
            target = cited_answer(references[0], holding[0]) if holding else references[0]
            messages = build_messages(question["question"], sources)
            examples.append(Example(question["id"], messages, target, True, references, len(sources)))
    return examples
