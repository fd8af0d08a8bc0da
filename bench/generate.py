"""Embedded generator throughput: one answer at a time (`stream`, what chat does) against padded
batches (`generate_batch`, what evaluation runs use), on RAG-sized prompts.

    python bench/generate.py [--prompts 16] [--max-tokens 48]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rag.generation import TransformersGenerator, generate  # noqa: E402

PASSAGE = (
    "[{n}] (report_{n}.pdf, page {n})\nThe company's revenue in fiscal {year} was {amount} million dollars, "
    "driven by growth in the services segment, while operating costs rose by {pct} percent because of "
    "new hiring and higher energy prices across the European plants."
)


def prompt(i: int) -> list[dict[str, str]]:
    sources = "\n\n".join(
        PASSAGE.format(n=n, year=2015 + i % 8, amount=100 + 7 * i + n, pct=3 + n) for n in (1, 2, 3)
    )
    question = f"What was the revenue in fiscal {2015 + i % 8}?"
    return [
        {"role": "system", "content": "Answer from the numbered sources and cite them as [n]."},
        {"role": "user", "content": f"Sources:\n\n{sources}\n\nQuestion: {question}"},
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("--max-tokens", type=int, default=48)
    args = parser.parse_args()
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
