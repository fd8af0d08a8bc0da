"""Grounded answers: what grounded decoding and each unsupported-claim policy do to the answers.

Answers a spread of the questions (every n-th, so many articles or filings are in it) twice
with the embedded generator, without and with grounded decoding (rag.grounded_decoding), then
applies each policy of the claim check (rag.claims: mark, drop, extract) to the same replies,
and scores each: EM and token F1 against the references, citation precision against the
evidence pages, the sentences stating a number found in no source (shown unmarked, marked,
dropped, replaced), and for answers with a number the share whose numbers are all in the
sources they cite.

    python bench/grounding.py ../shared/data/xquad/xquad.en.json --limit 200 [--engine onnx]
    python bench/grounding.py ../shared/data/financebench/qa.jsonl --pdfs ../shared/data/financebench/pdfs
    python bench/grounding.py ../shared/data/xquad/xquad.en.json --rescore runs/grounding.json
    RAG_LLM_ADAPTER=adapters/mine python bench/grounding.py ... --plain-only   (a tuned generator)
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from eval.answer_metrics import best_over_references, citation_precision_recall, exact_match, token_f1  # noqa: E402
from eval.cached_index import cache_index  # noqa: E402
from eval.datasets import load_and_index  # noqa: E402
from rag.answer import NOT_FOUND, Answer, Answerer, cite  # noqa: E402
from rag.claims import (  # noqa: E402
    CITATION,
    UNSUPPORTED_POLICIES,
    apply_unsupported_policy,
    check_claims,
    number_values,
    recite,
)
from rag.engines import load_generator  # noqa: E402
from rag.retrieval import Retriever, SearchResult  # noqa: E402
from rag.settings import load_settings  # noqa: E402
from rag.short_answer import extract_from_sources, short_answer, short_from_sources  # noqa: E402

BATCH = 8


def spread(questions: list[dict], limit: int | None, offset: int = 0) -> list[dict]:
    """Every n-th question, from the `offset`-th on: the first `limit` would be one or two
    articles. Offset 0 is the reported set; another offset, fewer than n, a disjoint one to try
    rules on."""
    if not limit or limit >= len(questions):
        return questions
    step = len(questions) / limit
    return [questions[min(len(questions) - 1, int(i * step) + offset)] for i in range(limit)]


def answer_all(answerer: Answerer, questions: list[dict], label: str) -> tuple[list, float]:
    answers, started = [], time.perf_counter()
    for start in tqdm(range(0, len(questions), BATCH), desc=label):
        answers += answerer.answer_batch([q["question"] for q in questions[start : start + BATCH]], BATCH)
    return answers, (time.perf_counter() - started) / max(1, len(questions))


def score(
    answers: list, questions: list[dict], policy: str, embed, style: str = "generated"
) -> dict[str, float]:
    """Figures of one policy applied to the replies (all checked with the "mark" policy), in an
    answer style of rag.answer: "short", answered by the asked figure, date or name alone where
    there is one (the source's, else the reply's); "extractive", else by the source sentence's
    answering words; "auto", extractive where the question is `quotable`, else the reply."""
    em = f1 = precision = 0.0
    unmarked = marked = dropped = replaced = with_number = numbers_cited = 0
    for answer, q in zip(answers, questions, strict=True):
        number_claims = [c for c in answer.claims if c.unsupported_numbers]
        kept = answer.text
        if policy == "none":  # what a user saw before the claim check: every sentence, unflagged
            text, extracted = answer.text, set()
            unmarked += len(number_claims)
        else:
            texts = [s.text for s in answer.sources]
            kept, extracted = apply_unsupported_policy(
                answer.text, answer.claims, texts, q["question"], policy, embed
            )
            text = NOT_FOUND if kept is None else recite(kept, answer.claims, texts)
            if policy == "mark":
                marked += len(number_claims)
            elif policy == "drop":
                dropped += len(number_claims)
            else:
                replaced += len(number_claims)
        if not answer.found:
            text = answer.text
        elif style != "generated":  # as the Answerer does: the sources' words before the reply's
            texts = [s.text for s in answer.sources]
            if style == "short":
                quoted = short_from_sources(q["question"], texts, embed)
            else:
                quoted = extract_from_sources(q["question"], texts, embed, quotable_only=style == "auto")
            shortened = style != "auto" and kept is not None and short_answer(q["question"], text)
            text = quoted or shortened or text
        citations = cite(text, answer.sources, extracted=extracted)
        em += best_over_references(exact_match, text, q["references"])
        f1 += best_over_references(token_f1, text, q["references"])
        cited = [(c.doc, c.page_start, c.page_end) for c in citations]
        p, _ = citation_precision_recall(cited, [(e["doc"], e["page"]) for e in q["evidence"]])
        precision += 0.0 if p != p else p  # no citation: precision 0 here, not NaN
        if number_values(CITATION.sub(" ", text)):
            with_number += 1
            texts = [answer.sources[c.n - 1].text for c in citations]
            claims = check_claims(text, texts)
            numbers_cited += not any(c.unsupported_numbers for c in claims)
    n = len(questions)
    return {
        "EM": em / n, "F1": f1 / n, "citation precision": precision / n,
        # sentences stating a number that no source holds, by what became of them
        "unsupported: unmarked": unmarked, "marked": marked, "dropped": dropped, "replaced": replaced,
        "answers with a number": with_number,
        "numbers on cited source": numbers_cited / with_number if with_number else float("nan"),
    }


def revive(saved: dict) -> Answer:
    """An Answer from its saved dict, its claims checked again by today's rules."""
    sources = [SearchResult(**s) for s in saved["sources"]]
    texts = [s.text for s in sources]
    claims = check_claims(saved["text"], texts, saved["question"]) if saved["found"] else []
    return Answer(
        saved["question"], saved["query"], saved["text"], [], sources, saved["invalid_citations"],
        saved["found"], claims,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path, help="SQuAD JSON, or PDF questions (JSONL) with --pdfs")
    parser.add_argument("--pdfs", type=Path)
    parser.add_argument("--index", type=Path, help="default: the eval cache's index of the data")
    parser.add_argument("--limit", type=int, default=200)
    parser.add_argument("--offset", type=int, default=0,
                        help="every n-th from this one (0: the reported set; 3: one to tune rules on)")
    parser.add_argument("--engine", choices=["transformers", "onnx"], default="transformers",
                        help="embedded engine (same greedy answers; onnx is faster)")
    parser.add_argument("--out", type=Path, help="write the figures and every answer as JSON here")
    parser.add_argument("--rescore", type=Path, help="score the replies an earlier --out saved, not new ones")
    parser.add_argument("--plain-only", action="store_true", help="answer without grounded decoding only")
    args = parser.parse_args()
    # the generator's replies, checked and styled by each policy and style in `score`
    settings = load_settings(unsupported="mark", answer_style="generated")
    settings.index = args.index or cache_index("qa", args.pdfs or args.data, settings)
    questions, _ = load_and_index(args.data, args.pdfs, settings)
    questions = spread(questions, args.limit, args.offset)
    retriever = Retriever(settings.index)
    rows, dump = [], {}
    saved = json.loads(args.rescore.read_text()) if args.rescore else None
    for grounded in (False,) if args.plain_only else (False, True):
        if saved:
            answers = [revive(a) for a in saved["answers"][f"grounded={grounded}"]]
            seconds = next(r["s/answer"] for r in saved["rows"] if r["grounded"] == grounded)
        else:
            # the generator of the settings (RAG_LLM_MODEL, RAG_LLM_ADAPTER), on the embedded engine asked for
            generator = load_generator(
                args.engine, settings.llm_model, adapter=settings.llm_adapter, grounded=grounded
            )
            answerer = Answerer.from_settings(retriever, generator, settings)
            answers, seconds = answer_all(answerer, questions, f"grounded={grounded}")
        dump[f"grounded={grounded}"] = [a.to_dict() for a in answers]
        for policy in ("none", *UNSUPPORTED_POLICIES):
            figures = score(answers, questions, policy, retriever.embedder.encode)
            rows.append({"grounded": grounded, "policy": policy, "s/answer": seconds, **figures})
        for style in ("short", "extractive", "auto"):  # seconds: the generated answers'; these take less
            figures = score(answers, questions, "extract", retriever.embedder.encode, style)
            rows.append({"grounded": grounded, "policy": f"extract, {style}", "s/answer": seconds, **figures})
    table = Table(*rows[0], title=f"{args.data.name}: {len(questions)} questions")
    for row in rows:
        table.add_row(*(f"{v:.3f}" if isinstance(v, float) else str(v) for v in row.values()))
    Console(width=200).print(table)
    if args.out:
        args.out.write_text(json.dumps({"rows": rows, "answers": dump}, indent=1))


if __name__ == "__main__":
    main()
