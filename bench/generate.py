"""Embedded generator throughput: one answer at a time (`stream`, what chat does) against padded
batches (`generate_batch`, what evaluation runs use), on RAG-sized prompts; with --engines, the
embedded engines side by side: time to first token with 3 sources of ~200 tokens, tokens/s of
one stream, and whether their greedy answers are the transformers engine's.

    python bench/generate.py [--prompts 16] [--max-tokens 48]
    python bench/generate.py --engines [--prompts 8] [--max-tokens 96]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rag.calibration import cpu_model  # noqa: E402
from rag.generation import TransformersGenerator, clean, generate  # noqa: E402

PASSAGE = (
    "[{n}] (report_{n}.pdf, page {n})\nThe company's revenue in fiscal {year} was {amount} million dollars, "
    "driven by growth in the services segment, while operating costs rose by {pct} percent because of "
    "new hiring and higher energy prices across the European plants."
)


BODY = PASSAGE.split("\n", 1)[1]  # a source's text, without the number and page the prompt adds


def prompt(i: int) -> list[dict[str, str]]:
    sources = "\n\n".join(
        PASSAGE.format(n=n, year=2015 + i % 8, amount=100 + 7 * i + n, pct=3 + n) for n in (1, 2, 3)
    )
    question = f"What was the revenue in fiscal {2015 + i % 8}?"
    return [
        {"role": "system", "content": "Answer from the numbered sources and cite them as [n]."},
        {"role": "user", "content": f"Sources:\n\n{sources}\n\nQuestion: {question}"},
    ]


def long_prompt(i: int, tokenizer) -> list[dict[str, str]]:
    """The answerer's own prompt (system prompt, fenced sources, question) over 3 sources of 200
    tokens (its default: 3 chunks of 200 tokens). Each prompt's sources are its own, so what a
    prompt shares with the one before is what real questions share: the template and system
    prompt."""
    from rag.answer import build_messages
    from rag.retrieval import SearchResult

    sources = []
    for n in (1, 2, 3):
        lines = [BODY.format(n=n, year=2010 + (i + k) % 12, amount=100 + 7 * i + n + k, pct=3 + n + k)
                 for k in range(6)]
        ids = tokenizer(" ".join(lines), add_special_tokens=False)["input_ids"][:200]
        sources.append(SearchResult(doc=f"report_{i}_{n}.pdf", page_start=n + i, page_end=n + i,
                                    chunk_id=f"{i}-{n}", score=1.0, text=tokenizer.decode(ids)))
    return build_messages(f"What was the revenue in fiscal {2010 + i % 12}?", sources)


def engines(prompts: int, max_tokens: int) -> None:
    from rag.onnx_generation import OnnxGenerator

    candidates = {
        "transformers fp32": TransformersGenerator(),
        "onnx fp32, nothing reused, no drafts": OnnxGenerator(precision="fp32"),
        "onnx fp32, no drafts": OnnxGenerator(precision="fp32"),
        "onnx fp32": OnnxGenerator(precision="fp32"),
        "onnx int4": OnnxGenerator(precision="int4"),
    }
    chats = [long_prompt(i, candidates["transformers fp32"].tokenizer) for i in range(prompts)]
    tokens = candidates["transformers fp32"].count_tokens(
        candidates["transformers fp32"].tokenizer.apply_chat_template(chats[0], tokenize=False))
    title = f"SmolLM2-135M, {prompts} prompts of ~{tokens} tokens, <= {max_tokens} new; {cpu_model()}"
    table = Table("engine", "first token s (p50)", "tokens/s, one stream", "answers as transformers'",
                  "prompt tokens reused (mean)", "drafted tokens kept", title=title)
    reference: list[str] = []
    for name, generator in candidates.items():
        if "no drafts" in name:
            generator.draft_tokens = 0  # the onnx engine before it checked guesses from the prompt
        generate(generator, chats[0], 4)  # warm-up
        firsts, rates, texts, reused = [], [], [], []
        drafted = accepted = 0
        for chat in chats:
            if "nothing reused" in name:
                generator._kept = None  # the onnx engine before it kept its generator
            started = time.perf_counter()
            pieces, first = [], None
            for piece in generator.stream(chat, max_tokens):
                first = first or time.perf_counter() - started
                pieces.append(piece)
            total = time.perf_counter() - started
            n = generator.count_tokens("".join(pieces))
            firsts.append(first)
            rates.append((n - 1) / (total - first) if n > 1 else 0.0)
            texts.append(clean("".join(pieces)))
            reused.append(getattr(generator, "reused_tokens", 0))
            drafted += getattr(generator, "drafted_tokens", 0)
            accepted += getattr(generator, "accepted_tokens", 0)
        reference = reference or texts
        same = sum(a == b for a, b in zip(texts, reference, strict=True))
        firsts.sort()
        table.add_row(name, f"{firsts[len(firsts) // 2]:.2f}", f"{sum(rates) / len(rates):.1f}",
                      f"{same}/{len(texts)}", f"{sum(reused) / len(reused):.0f}",
                      f"{accepted}/{drafted}" if drafted else "-")
    Console().print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("--max-tokens", type=int, default=48)
    parser.add_argument("--engines", action="store_true", help="compare the embedded engines")
    args = parser.parse_args()
    if args.engines:
        return engines(args.prompts, args.max_tokens)
    generator = TransformersGenerator()
    prompts = [prompt(i) for i in range(args.prompts)]
    generate(generator, prompts[0], 8)  # warm-up
    table = Table("mode", "prompts", "seconds", "answers/s", "speed-up", title="SmolLM2-135M, embedded")
    started = time.perf_counter()
    for p in prompts:
        generate(generator, p, args.max_tokens)
    single = time.perf_counter() - started
    table.add_row("one at a time", str(len(prompts)), f"{single:.1f}", f"{len(prompts) / single:.2f}", "1.0x")
    for batch in (4, 8, 16):
        started = time.perf_counter()
        for i in range(0, len(prompts), batch):
            generator.generate_batch(prompts[i : i + batch], args.max_tokens)
        seconds = time.perf_counter() - started
        table.add_row(f"batches of {batch}", str(len(prompts)), f"{seconds:.1f}",
                      f"{len(prompts) / seconds:.2f}", f"{single / seconds:.1f}x")
    Console().print(table)


if __name__ == "__main__":
    main()
