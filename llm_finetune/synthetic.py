"""Question-answer pairs for a corpus with no labels, written from its indexed chunks.

- `cloze` (no LLM, seconds for thousands): one sentence of a chunk with a span taken out (a
  figure, or a name that does not open the sentence) becomes the question ("Revenue rose to what
  in 2019?") and the span its answer;
- `llm`: a generator (the embedded model, or a stronger one behind an OpenAI-compatible URL)
  writes a question and its short answer for the chunk.

A pair is kept only when its answer stands in the chunk word for word: an answer the model made
up would teach the tuned model to make things up. The evidence is the chunk's document and first
page, so synthetic pairs split by document and become examples exactly as labelled ones do.
"""

from __future__ import annotations

import random
import re

from rich.progress import track

from indexes import Chunk
from rag.generation import Generator, generate

QA_STYLES = ("cloze", "llm")
QA_PROMPT = (
    "Read the passage from {doc}, then write one question it answers and the short answer, "
    "copied from the passage.\n\nPassage:\n{text}\n\nReply in two lines:\nQuestion: ...\nAnswer: ..."
)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")
# a whole figure or name, not the "60%" of "10-60%" or the "Py" of "PyObject"
_FIGURE = re.compile(r"(?<![\w.,-])\$?\d[\d,.]*(?:\s?(?:%|percent|million|billion|thousand))?(?![\w-])")
_NAME = re.compile(r"(?<=[a-z,] )[A-Z][a-z]+(?: (?:of |the |de )?[A-Z][a-z]+)*\b(?![\w-])")
_YEAR = re.compile(r"1[5-9]\d\d|20\d\d")
_COUNTED = re.compile(r"\s+([a-z]{3,}s)\b")
_NOT_COUNTED = {"does", "was", "has", "this", "thus", "its", "his", "plus", "less", "unless", "always"}
_QA_LINES = re.compile(r"question\s*[:.]\s*(?P<q>.+?)\s*\n+\s*answer\s*[:.]\s*(?P<a>.+)", re.I | re.S)


def cloze_pair(text: str, rng: random.Random) -> tuple[str, str] | None:
    """(question, answer) from one sentence of 8-40 words with a figure or a name to take out."""
    # a parenthesised aside ("(Contributed by ... in 5845.)") is not a statement to ask about
    sentences = [
        s.strip() for s in _SENTENCE_END.split(text) if 8 <= len(s.split()) <= 40 and not s.startswith("(")
    ]
    rng.shuffle(sentences)
    for sentence in sentences:
        spans = [m for m in _FIGURE.finditer(sentence) if m.start() > 0] or list(_NAME.finditer(sentence))
        spans = [m for m in spans if len(m.group().strip(" ,.")) >= 2]
        if not spans:
            continue
        span = rng.choice(spans)
        answer = span.group().strip(" ,.")
        start = span.start() + span.group().index(answer)
        before, after = sentence[:start], sentence[start + len(answer) :]
        counted = _COUNTED.match(after)
        if _YEAR.fullmatch(answer) and before.endswith(("in ", "In ")):
            question = before + "what year" + after  # "in what year", as a person asks it
        elif counted and counted[1] not in _NOT_COUNTED and answer.replace(",", "").isdigit():
            question = before + "how many " + counted[1] + after[counted.end() :]
        else:
            question = before + "what" + after
        return question.rstrip(" .;:") + "?", answer
    return None


def parse_qa(reply: str) -> tuple[str, str] | None:
    """(question, answer) from a reply in the "Question: ... / Answer: ..." form."""
    found = _QA_LINES.search(reply)
    if not found:
        return None
    question = found["q"].strip(" \"'*")
    answer = found["a"].strip().splitlines()[0].strip(" \"'*").rstrip(".")
    if not 4 <= len(question.split()) <= 40 or not 1 <= len(answer.split()) <= 20:
        return None
    return question, answer


def grounded(answer: str, text: str) -> bool:
    return " ".join(answer.lower().split()) in " ".join(text.lower().split())


def synthetic_questions(
    chunks: list[Chunk],
    n: int,
    style: str = "cloze",
    generator: Generator | None = None,
    seed: int = 0,
    progress: bool = True,
) -> list[dict]:
    """Up to `n` questions, one per sampled chunk, in the shape the example builder takes."""
    if style not in QA_STYLES:
        raise ValueError(f"unknown question style {style!r}; choose one of {', '.join(QA_STYLES)}")
    if style == "llm" and generator is None:
        raise ValueError("llm questions need a generator")
    rng = random.Random(seed)
    readable = [c for c in chunks if len(c.text.split()) >= 10]
    sampled = rng.sample(readable, min(n, len(readable)))
    if style == "cloze":
        made = [cloze_pair(c.text, rng) for c in sampled]
    else:
        made = _llm_pairs(generator, sampled, progress)
    return [
        {
            "id": f"syn-{chunk.chunk_id}",
            "question": pair[0],
            "references": [pair[1]],
            "evidence": [{"doc": chunk.doc, "page": chunk.page_start}],
        }
        for chunk, pair in zip(sampled, made, strict=True)
        if pair and grounded(pair[1], chunk.text)
    ]


def _llm_pairs(generator: Generator, chunks: list[Chunk], progress: bool) -> list:
    prompts = [[{"role": "user", "content": QA_PROMPT.format(doc=c.doc, text=c.text)}] for c in chunks]
    batches = [prompts[i : i + 8] for i in range(0, len(prompts), 8)]
    batched = getattr(generator, "generate_batch", None)
    replies: list[str] = []
    for batch in track(batches, description="writing questions") if progress else batches:
        if batched is not None:  # the embedded model: a padded batch is ~3.6x faster
            replies += batched(batch, 96)
        else:
            replies += [generate(generator, m, max_tokens=96) for m in batch]
    return [parse_qa(r) for r in replies]
