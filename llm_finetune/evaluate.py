"""Scoring a generator on examples: token F1 and exact match of the answers (citations stripped),
whether the citation format of the replies that answer is valid, and whether it refuses when,
and only when, the sources do not hold the answer."""

from __future__ import annotations

import re

from rich.progress import track

from eval.answer_metrics import best_over_references, exact_match, token_f1
from llm_finetune.examples import Example
from rag.generation import generate

_CITATION = re.compile(r"\[(\d+(?:\s*,\s*\d+)*)\]")
# the taught refusal and its usual paraphrases ("The document does not specify ..."); the same
# pattern counts false refusals on answerable prompts, so widening it cannot flatter a model
REFUSAL = re.compile(
    r"\b(do|does|did)(n't| not) (contain|mention|specify|say|state|provide|include)"
    r"|\bnot (found|mentioned|provided|given|stated) in the (sources|documents)",
    re.I,
)


def citation_valid(reply: str, sources: int) -> bool:
    """At least one [n] citation, and every cited n names a source of the prompt."""
    numbers = [int(n) for group in _CITATION.findall(reply) for n in group.split(",")]
    return bool(numbers) and all(1 <= n <= sources for n in numbers)


def replies(
    generator, examples: list[Example], max_tokens: int, batch_size: int = 8, progress: bool = True
) -> list[str]:
    batched = getattr(generator, "generate_batch", None)
    out: list[str] = []
    starts = range(0, len(examples), batch_size)
    for start in track(starts, description="answering") if progress else starts:
        group = examples[start : start + batch_size]
        if batched is not None:
            out += batched([e.messages for e in group], max_tokens)
        else:
            out += [generate(generator, e.messages, max_tokens) for e in group]
    return out


def score(examples: list[Example], answers: list[str]) -> tuple[dict, list[dict]]:
    """(figures, per-example rows)."""
    rows = []
    for example, reply in zip(examples, answers, strict=True):
        refused = bool(REFUSAL.search(reply))
        row = {"id": example.id, "answerable": example.answerable, "reply": reply, "refused": refused}
        if example.answerable:
            bare = _CITATION.sub("", reply)
            row |= {
                "exact_match": best_over_references(exact_match, bare, example.references),
                "f1": best_over_references(token_f1, bare, example.references),
            }
        if not refused:
            # a refusal cites nothing by design; refusing an answerable prompt is counted as a
            # false refusal (and scores F1 0), not a second time as a citation fault
            row["citation_valid"] = float(citation_valid(reply, example.sources))
        rows.append(row)
    answerable = [r for r in rows if r["answerable"]]
    unanswerable = [r for r in rows if not r["answerable"]]

    def mean(values: list[float]) -> float:
        return sum(values) / len(values) if values else float("nan")

    figures = {
        "answers": {
            "exact_match": mean([r["exact_match"] for r in answerable]),
            "f1": mean([r["f1"] for r in answerable]),
            "citation_valid": mean([r["citation_valid"] for r in rows if "citation_valid" in r]),
            "false_refusals": mean([float(r["refused"]) for r in answerable]),
        },
        "refusals": {"refusal_accuracy": mean([float(r["refused"]) for r in unanswerable])},
    }
    return figures, rows
