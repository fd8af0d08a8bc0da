"""A prompt bounded by the generator's context window.

One 2 MB chat message once drove the server to 14 GB: nothing cut the prompt to what the model
can read. Every prompt now fits in the generator's context minus the answer's max_tokens minus
MARGIN (chat-template tokens around the messages, rounding).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from rag.generation import DEFAULT_CONTEXT_LENGTH, Message

Counter = Callable[[str], int]

MARGIN = 32  # the generation prompt and rounding
PER_MESSAGE = 8  # chat-template tokens around one message ("<|im_start|>user\n ... <|im_end|>\n")
# English runs ~4 chars a token; text longer than this many chars a token of its budget is cut
# by characters before it is tokenized: tokenizing a 2 MB string takes seconds
MAX_CHARS_PER_TOKEN = 6


def token_counter(generator) -> Counter:
    """The generator's own tokenizer when it has one; else a conservative ~3 chars a token."""
    return getattr(generator, "count_tokens", None) or (lambda text: -(-len(text) // 3))


def prompt_budget(generator, max_tokens: int) -> int:
    """Tokens the prompt may take: the context window less the answer and a margin."""
    context = getattr(generator, "context_length", None) or DEFAULT_CONTEXT_LENGTH
    return context - max_tokens - MARGIN


def cost(text: str, limit: int, count: Counter) -> int:
    """Tokens of `text`, or `limit + 1` for text too long to be worth tokenizing."""
    return limit + 1 if len(text) > MAX_CHARS_PER_TOKEN * (limit + 1) else count(text)


def truncate(text: str, limit: int, count: Counter) -> str:
    """The start of `text` that fits in `limit` tokens."""
    text = text[: MAX_CHARS_PER_TOKEN * max(limit, 0)]
    while text and (n := count(text)) > limit:
        text = text[: len(text) * limit // n]  # shorter on every pass: converges in 1-3
    return text


def fit_prompt(
    question: str, parts: Sequence[str], history: Sequence[Message], budget: int, count: Counter
) -> tuple[str, int, list[Message]]:
    """(question, how many of `parts` to keep, history kept) fitting in `budget` tokens.

    Cuts, in this order, until the prompt fits: the oldest history message first, then the
    lowest-ranked part (a source: `parts` are in rank order, so the kept ones are a prefix and
    keep their numbers), and last, when the question alone is still too long, the question,
    truncated to its start (a question is read from its start: its subject comes first).
    `budget` is what is left after the fixed text (system prompt, template, margins).
    """
    asked = cost(question, budget, count)
    sizes = [cost(p, budget, count) for p in parts]
    turns = [cost(m["content"], budget, count) + PER_MESSAGE for m in history]
    total = asked + sum(sizes) + sum(turns)
    while turns and total > budget:
        total -= turns.pop(0)
    while sizes and total > budget:
        total -= sizes.pop()
    if total > budget:
        question = truncate(question, budget, count)
    return question, len(sizes), list(history[len(history) - len(turns) :])
